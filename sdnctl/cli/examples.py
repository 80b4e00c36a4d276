"""Every command's `--help` examples, by command path; `apply` adds them below each command's own epilog."""

from __future__ import annotations

import argparse

EXAMPLES: dict[str, list[str]] = {
    "": ["sdnctl lab up && sdnctl run --config \"$(sdnctl lab status --json | jq -r .config)\"",
         "sdnctl network create --name backend --pool pool-a --pool pool-b --pif-device eth1 --topology mesh",
         "sdnctl status                      # exits 3 if a host, pool or tunnel needs a look",
         "sdnctl plan --json                 # what the daemon would change, changing nothing"],
    "lab up": ["sdnctl lab up                                   # 1 pool x 3 hosts",
               "sdnctl lab up --pools 2 --hosts 3 --netns        # real packets between guest namespaces",
               "sdnctl lab up --pools 10 --hosts 20 --no-vswitchd --octet 50   # 200 OVSDB-only hosts"],
    "lab serve": ["sdnctl lab serve --pools 2 --hosts 2            # in the foreground, Ctrl-C stops it"],
    "lab status": ["sdnctl lab status", "sdnctl lab status --json | jq -r .config"],
    "lab host": ["sdnctl lab host join pool1", "sdnctl lab host crash p1h2 --silent",
                 "sdnctl lab host recover p1h2", "sdnctl lab host emergency-transition-to-master p1h3"],
    "lab vm": ["sdnctl lab vm --name web1 --host p1h1 --network backend --ip 192.0.2.11"],
    "lab down": ["sdnctl lab down", "sdnctl lab down --octet 50"],
    "run": ["sdnctl run --config /etc/sdnctl/sdnctl.toml", "sdnctl run --config lab.toml --log-level debug",
            "systemctl reload sdnctl          # after editing /etc/sdnctl/sdnctl.toml"],
    "network create": ["sdnctl network create --name backend --pool pool-a --pool pool-b --pif-device eth1",
                       "sdnctl network create --name dmz --pool pool-a --pif-device eth1 --vlan 55 --encrypt",
                       "sdnctl network create --name mesh1 --pool pool-a --pif-device xcp-a1=bond0 "
                       "--pif-device xcp-a2=eth1 --topology mesh --encapsulation vxlan"],
    "network list": ["sdnctl network list", "sdnctl network list --json | jq '.[] | {name, vni}'"],
    "network show": ["sdnctl network show backend", "sdnctl network show 5c1b...-uuid --json"],
    "network delete": ["sdnctl network delete backend"],
    "network update": ["sdnctl network update net1 --mtu 1400 --dry-run", "sdnctl network update net1 --encrypt",
                       "sdnctl network update net1 --preferred-center p1h2",
                       "sdnctl network update net1 --add-pool pool2 --pif-device eth1",
                       "sdnctl network update net1 --remove-pool pool2"],
    "network export-xo": ["sdnctl network export-xo net1 --dry-run",
                          "sdnctl network export-xo net1             # both controllers can read it; sdnctl manages it",
                          "sdnctl network export-xo net1 --release   # sdnctl lets go; enable XO's plugin next"],
    "network rekey": ["sdnctl network rekey dmz       # both ends of every tunnel get the new PSK"],
    "rule add": ["sdnctl rule add --vif 0b1c0c2e-8d0b-4d5e-9a57-3f2d1c0b0a0f --deny --protocol tcp --port 22",
                 "sdnctl rule add --network backend --allow --protocol tcp --port 443 --ip-range 10.0.0.0/8 "
                 "--direction to"],
    "rule delete": ["sdnctl rule delete --vif 0b1c0c2e-8d0b-4d5e-9a57-3f2d1c0b0a0f --protocol tcp --port 22"],
    "rule list": ["sdnctl rule list --network backend", "sdnctl rule list --vif 0b1c...-uuid --json"],
    "certs init": ["sdnctl certs init"],
    "certs show": ["sdnctl certs show", "sdnctl certs show --pool pool-a --json"],
    "certs install": ["sdnctl certs install", "sdnctl certs install --pool pool-a --override   # replace XO's CA"],
    "certs rotate": ["sudo sdnctl certs rotate      # the daemon reconnects host by host; files stay its user's"],
    "plan": ["sdnctl plan", "sdnctl plan --json | jq '.hosts[] | select(.changes > 0) | .name'"],
    "status": ["sdnctl status", "sdnctl status --json | jq '.networks[] | {name, center_name}'",
               "sdnctl status >/dev/null || echo \"sdnctl needs a look\"     # in a monitoring check"],
    "inventory": ["sdnctl inventory", "sdnctl inventory --network backend --host xcp-a1",
                  "sdnctl inventory --vm web1 --json | jq '.[] | {host, ofport, vif_rules}'"],
    "demo": ["sudo make demo                 # installs what it needs first", "sdnctl demo --octet 60"],
}


def apply(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Give every (sub)command in EXAMPLES its examples, below whatever epilog it has."""
    if path in EXAMPLES:
        lines = "\n".join(f"  {example}" for example in EXAMPLES[path])
        parser.epilog = (parser.epilog + "\n" if parser.epilog else "") + f"examples:\n{lines}"
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for name, sub in getattr(action, "choices", {}).items():
            apply(sub, f"{path} {name}".strip())
