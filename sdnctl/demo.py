"""The demo: two simulated pools with a real data plane, the controller, and a private network under stress."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sdnctl.config import load_config
from sdnctl.errors import SdnctlError
from sdnctl.lab.lab import Lab
from sdnctl.xapi.client import XapiClient

STEP_TIMEOUT = 60.0
GUESTS = {"p1h1": "192.0.2.11", "p1h2": "192.0.2.12", "p2h1": "192.0.2.21", "p2h2": "192.0.2.22"}


def say(text: str) -> None:
    print(text, flush=True)


def until(probe: Callable[[], object], what: str, timeout: float = STEP_TIMEOUT) -> float:
    """Wait for `probe` to hold; return the seconds it took."""
    started = time.monotonic()
    while not probe():
        if time.monotonic() - started > timeout:
            raise SdnctlError(f"demo: gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def sdnctl(*args: str, config: Path, ok: tuple[int, ...] = (0,)) -> str:
    """The command's output; an exit code outside `ok` is an error (`status` exits 3 on a problem it shows)."""
    result = subprocess.run([sys.executable, "-m", "sdnctl.cli", *args, "--config", str(config)],
                            capture_output=True, text=True, timeout=120)
    if result.returncode not in ok:
        raise SdnctlError(f"sdnctl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout + result.stderr


def ping(vm_ns: str, address: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", vm_ns, "ping", "-c1", "-W1", address],
                          capture_output=True).returncode == 0


class Demo:
    """One run of the demo; everything it starts is stopped in `close`."""

    def __init__(self, octet: int, root: Path):
        self.lab = Lab(pools=2, hosts=3, dataplane=True, octet=octet, root=root)
        self.daemon: subprocess.Popen | None = None
        self.vms: dict[str, str] = {}

    @property
    def config(self) -> Path:
        return self.lab.config_path

    def status(self) -> dict:
        path = self.lab.dir / "controller" / "state" / "status.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def start_daemon(self) -> None:
        with open(self.lab.dir / "sdnctl.log", "a") as log:
            self.daemon = subprocess.Popen([sys.executable, "-m", "sdnctl.cli", "run", "--config", str(self.config)],
                                           stdout=log, stderr=subprocess.STDOUT)

    def stop_daemon(self, sig: int) -> None:
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(sig)
            self.daemon.wait(timeout=15)

    def xapi(self, pool: str) -> XapiClient:
        """sdnctl's XAPI client for a lab pool (the caller closes it)."""
        return XapiClient(next(p for p in load_config(self.config).pools if p.name == pool))

    def boot_guests(self, network_name: str) -> None:
        for host_name, ip in GUESTS.items():
            pool = f"pool{host_name[1]}"
            client = self.xapi(pool)
            try:
                vm = self.lab.pools[pool].sim.create_vm(f"guest-{host_name}", f"{ip}/24")
                network = client.call("network.get_by_name_label", network_name)[0]
                client.call("VIF.create", {"device": "0", "network": network, "VM": vm, "other_config": {},
                                           "MTU": "1400",
                                           "MAC": "02:00:00:00:%02x:%02x" % (int(host_name[1]), int(host_name[3]))})
                client.call("VM.start_on", vm, client.call("host.get_by_name_label", host_name)[0], False, False)
                self.vms[host_name] = self.lab.host(host_name).vm_netns(client.call("VM.get_uuid", vm))
            finally:
                client.close()

    def vif_of(self, host_name: str) -> str:
        client = self.xapi(f"pool{host_name[1]}")
        try:
            vm = client.call("VM.get_by_name_label", f"guest-{host_name}")[0]
            return client.call("VIF.get_uuid", client.call("VM.get_VIFs", vm)[0])
        finally:
            client.close()

    def all_ping(self) -> bool:
        return all(ping(self.vms[a], GUESTS[b]) for a, b in itertools.permutations(self.vms, 2))

    def network(self, name: str) -> dict:
        return next((n for n in self.status().get("networks", []) if n["name"] == name), {})

    def converged(self, name: str) -> bool:
        network = self.network(name)
        tunnels = [t for h in network.get("hosts", []) if h["eligible"] for t in h["tunnels"]]
        return bool(tunnels) and all(t["desired"] and t["observed"] and (t["ofport"] or 0) > 0 for t in tunnels)

    def run(self) -> None:
        started = time.monotonic()
        self.lab.up()
        say(f"1. lab: 2 pools x 3 hosts, each host a real ovsdb-server + ovs-vswitchd in its own network "
            f"namespace ({time.monotonic() - started:.1f}s)")
        for pool in self.lab.status()["pools"]:
            say(f"   {pool['name']}: XAPI {pool['url']}, hosts {', '.join(h['name'] for h in pool['hosts'])}")
        self.start_daemon()
        until(lambda: self.status().get("pools") and all(p["synced"] for p in self.status()["pools"]),
              "the controller to sync both pools")
        say("2. controller running: it installed its CA into both pools and pinned every host's certificate")
        t0 = time.monotonic()
        say("3. " + sdnctl("network", "create", "--name", "demo", "--pool", "pool1", "--pool", "pool2",
                           "--pif-device", "eth1", "--encapsulation", "gre", "--topology", "star",
                           "--preferred-center", "p2h3", config=self.config).strip().splitlines()[-1])
        until(lambda: self.converged("demo"), "the tunnels")
        say(f"   every tunnel up {time.monotonic() - t0:.2f}s after `network create` (star, center p2h3)")
        self.boot_guests("demo")
        took = until(self.all_ping, "guests to ping each other")
        say(f"4. guests on p1h1, p1h2, p2h1, p2h2 ping each other across pools ({took:.1f}s after boot)")
        vif = self.vif_of("p2h2")
        sdnctl("rule", "add", "--vif", vif, "--deny", "--protocol", "icmp", "--direction", "to", config=self.config)
        took = until(lambda: not ping(self.vms["p1h1"], GUESTS["p2h2"]), "the rule to apply")
        say(f"   rule `deny icmp to` on p2h2's guest: p1h1's pings to it stop after {took:.2f}s "
            f"(others still ping: {ping(self.vms['p1h1'], GUESTS['p2h1'])})")
        sdnctl("rule", "delete", "--vif", vif, "--protocol", "icmp", "--direction", "to", config=self.config)
        took = until(lambda: ping(self.vms["p1h1"], GUESTS["p2h2"]), "the rule to go")
        say(f"   rule deleted: pings are back after {took:.2f}s")
        self.lab.host_crash("p2h3")
        took = until(lambda: self.network("demo").get("center_name") not in (None, "p2h3") and self.all_ping(),
                     "failover")
        say(f"5. center p2h3 crashed: new center {self.network('demo')['center_name']}, "
            f"guests ping again after {took:.1f}s; only the center's tunnels changed")
        joined = self.lab.host_join("pool1")
        took = until(lambda: self.converged("demo") and any(
            h["name"] == joined and h["tunnels"] for h in self.network("demo").get("hosts", [])), "the joined host")
        say(f"6. host {joined} joined pool1: its tunnel is up after {took:.2f}s")
        self.stop_daemon(signal.SIGKILL)
        (self.lab.dir / "controller" / "state" / "status.json").unlink(missing_ok=True)
        self.start_daemon()
        until(lambda: self.status().get("hosts") and all(h["connected"] for h in self.status()["hosts"].values()
                                                         if h["name"] != "p2h3") and self.converged("demo"),
              "the restarted controller")
        hosts = self.status()["hosts"].values()
        changes = sum(h["transactions"] for h in hosts)
        flow_changes = sum(h["flows_added"] + h["flows_deleted"] for h in hosts)
        say(f"7. controller killed with SIGKILL and restarted: {changes} OVSDB transactions, {flow_changes} flow "
            f"changes (hitless restart); guests still ping: {self.all_ping()}")
        say("\n$ sdnctl status\n" + sdnctl("status", config=self.config, ok=(0, 3)))

    def close(self) -> None:
        self.stop_daemon(signal.SIGTERM)
        self.lab.down()


def run_demo(octet: int, root: Path) -> int:
    demo = Demo(octet, root)
    try:
        demo.run()
        say("demo finished: everything it started is stopped and removed.")
        return 0
    finally:
        demo.close()
