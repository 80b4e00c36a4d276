"""`sdnctl lab`: simulated XCP-ng pools on real Open vSwitch, for tests and the demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sdnctl.cli import options, render

LAB_START_TIMEOUT = 120.0
LAB_STOP_TIMEOUT = 30.0
ADMIN_TIMEOUT = 120.0       # bounds a lab verb's call (a join starts OVS); only live hosts are asked
HOST_VERBS = ["join", "eject", "crash", "recover", "designate-new-master", "emergency-transition-to-master"]


def register(subparsers) -> None:
    lab = subparsers.add_parser(
        "lab", help="simulated XCP-ng pools on real Open vSwitch, for tests and the demo",
        description="Simulated XCP-ng pools: a XAPI simulator per pool (XML-RPC and JSON-RPC on "
                    "each host's address, ports 80/443) and real ovsdb-server/ovs-vswitchd per host.")
    sub = lab.add_subparsers(dest="lab_command", required=True, metavar="LAB_COMMAND")

    up = sub.add_parser("up", help="start a lab in the background and write a daemon config for it")
    up.add_argument("--pools", type=int, default=1, help="number of pools (default 1)")
    up.add_argument("--hosts", type=int, default=2, help="hosts per pool (default 2)")
    up.add_argument("--netns", action="store_true",
                    help="data-plane mode: each host in its own network namespace on the netdev datapath, "
                         "eth1 on a shared underlay (198.18.POOL.HOST/16), VMs as namespaces")
    _add_host_options(up)
    options.add_lab(up)
    up.set_defaults(func=cmd_up)

    serve = sub.add_parser("serve", help="run a lab in the foreground (what `lab up` starts)")
    serve.add_argument("--pools", type=int, default=1)
    serve.add_argument("--hosts", type=int, default=2)
    serve.add_argument("--netns", action="store_true")
    _add_host_options(serve)
    options.add_lab(serve)
    serve.set_defaults(func=cmd_serve)

    status = sub.add_parser("status", help="show the running lab's pools and hosts")
    status.add_argument("--json", action="store_true",
                        help='stable JSON: {"config", "pools": [{"name", "url", "username", "password", "master", '
                             '"hosts": [{"uuid", "name", "ovsdb", "netns"}]}]}')
    options.add_lab(status)
    status.set_defaults(func=cmd_status)

    host = sub.add_parser("host", help="scenario verbs: a host joins a pool, is ejected, crashes or recovers, "
                                       "becomes master (planned, or in an emergency on a slave)")
    host.add_argument("verb", choices=HOST_VERBS)
    host.add_argument("target", help="the pool (for join) or the host name (p1h2, ...)")
    host.add_argument("--silent", action="store_true",
                      help="crash: the host's addresses stop answering (no RST: connects and reads hang), "
                           "as a powered-off host; every port is affected")
    options.add_lab(host)
    host.set_defaults(func=cmd_host)

    vm = sub.add_parser("vm", help="start a guest VM with one VIF on a network (a namespace with --netns)")
    vm.add_argument("--name", required=True)
    vm.add_argument("--host", required=True, help="host name, e.g. p1h1")
    vm.add_argument("--network", required=True, help="network name_label in that host's pool")
    vm.add_argument("--ip", help="guest address with prefix, e.g. 192.0.2.10/24 (data-plane labs)")
    vm.add_argument("--mac", help="VIF MAC (default: random)")
    options.add_lab(vm)
    vm.set_defaults(func=cmd_vm)

    down = sub.add_parser("down", help="stop the lab: every process, namespace and file it made (idempotent)")
    options.add_lab(down)
    down.set_defaults(func=cmd_down)


def _add_host_options(parser) -> None:
    """--xcpng, --nics, --ha, --ha-delay: how the lab's hosts and pools behave (up and serve take the same)."""
    from sdnctl.lab.ovshost import XCPNG_TLS

    parser.add_argument("--xcpng", choices=sorted(XCPNG_TLS), default="8.3",
                        help="the XCP-ng release whose OVS TLS settings the hosts run with (default %(default)s: "
                             "static-RSA ciphers, TLS 1.2 only; 8.2: OpenSSL DEFAULT@SECLEVEL=2)")
    parser.add_argument("--nics", type=int, default=1, metavar="N",
                        help="underlay NICs per host besides eth0 (default 1: eth1 with an IP; eth2... have none, "
                             "e.g. to bond with `xe bond-create`)")
    parser.add_argument("--ha", action="store_true",
                        help="XAPI HA: when a master dies, a live slave becomes master after --ha-delay")
    parser.add_argument("--ha-delay", type=float, default=30.0, metavar="S",
                        help="seconds from a master's death to HA's new master (default %(default)s)")
    parser.add_argument("--ipsec", action="store_true",
                        help="with --netns: every host also runs ovs-monitor-ipsec and strongSwan in its namespace, "
                             "as `systemctl start ipsec openvswitch-ipsec` on a real host (see docs/ipsec.md)")
    parser.add_argument("--no-vswitchd", dest="vswitchd", action="store_false",
                        help="hosts run ovsdb-server alone: cheap, for scale benchmarks of 200 hosts "
                             "(tunnel rows but no ofports, no OpenFlow, no data plane)")


def _paths(args) -> tuple[Path, Path, Path]:
    """(pid file, log file, state file) of the lab with this octet."""
    from sdnctl.lab.lab import STATE_FILE

    root = Path(args.root)
    tag = f"sdnlab{args.octet}"
    return root / f"{tag}.pid", root / f"{tag}.log", root / tag / STATE_FILE


def _serve_pid(pid_file: Path) -> int | None:
    """The pid of a live `sdnctl lab serve` for this lab, if any."""
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"serve" in cmdline else None


def cmd_up(args) -> int:
    pid_file, log_file, state_file = _paths(args)
    running = _serve_pid(pid_file)
    if running:
        print(f"a lab is already running (pid {running}); `sdnctl lab down` first", file=sys.stderr)
        return 1
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "sdnctl.cli", "lab", "serve", "--pools", str(args.pools), "--hosts", str(args.hosts),
           "--octet", str(args.octet), "--root", str(args.root), "--ha-delay", str(args.ha_delay),
           "--xcpng", args.xcpng, "--nics", str(args.nics)] + (
        ["--netns"] if args.netns else []) + (["--ha"] if args.ha else []) + (["--ipsec"] if args.ipsec else []) + (
        [] if args.vswitchd else ["--no-vswitchd"])
    started = time.monotonic()
    with open(log_file, "w") as log:
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    pid_file.write_text(f"{child.pid}\n")
    total = args.pools * args.hosts
    print(f"lab up: starting {args.pools} pool(s) x {args.hosts} host(s) "
          f"({'data plane in namespaces' if args.netns else 'dummy datapath'}) ...", flush=True)
    while not state_file.exists():
        if child.poll() is not None:
            print(f"lab up: failed (exit {child.returncode}); log {log_file}:", file=sys.stderr)
            print(log_file.read_text()[-3000:], file=sys.stderr)
            return 1
        if time.monotonic() - started > LAB_START_TIMEOUT:
            print(f"lab up: not ready after {LAB_START_TIMEOUT:.0f}s; see {log_file}", file=sys.stderr)
            os.kill(child.pid, signal.SIGTERM)
            return 1
        time.sleep(0.1)
    state = json.loads(state_file.read_text())
    print(f"lab up: {total} hosts ready in {time.monotonic() - started:.1f}s")
    print(f"daemon config: {state['config']}")
    return 0


def cmd_serve(args) -> int:
    """Run a lab in the foreground until SIGTERM/SIGINT, then tear it down."""
    from sdnctl.lab.lab import Lab

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    lab = Lab(pools=args.pools, hosts=args.hosts, dataplane=args.netns, octet=args.octet, root=Path(args.root),
              ha=args.ha, ha_delay=args.ha_delay, xcpng=args.xcpng, nics=args.nics, ipsec=args.ipsec,
              vswitchd=args.vswitchd)
    lab.up()
    print(f"lab serving: {lab.state_path}", flush=True)
    try:
        stop.wait()
    finally:
        lab.down()
        print("lab stopped", flush=True)
    return 0


def cmd_down(args) -> int:
    from sdnctl.lab.lab import sweep

    pid_file, _, _ = _paths(args)
    pid = _serve_pid(pid_file)
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + LAB_STOP_TIMEOUT
        while _serve_pid(pid_file) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _serve_pid(pid_file):
            os.kill(pid, signal.SIGKILL)
    tag = f"sdnlab{args.octet}"
    leftovers = sweep(Path(args.root) / tag, tag)
    pid_file.unlink(missing_ok=True)
    if pid or leftovers:
        print(f"lab down: stopped{' the lab (pid %d)' % pid if pid else ''}"
              f"{'; swept ' + ', '.join(leftovers) if leftovers else ''}")
    else:
        print("lab down: no lab was running; nothing to do")
    return 0


def cmd_status(args) -> int:
    from sdnctl.lab.lab import read_state

    state = read_state(Path(args.root), args.octet)
    print(render.lab_status_json(state) if args.json else render.lab_status(state))
    return 0


def _pool(args, pool_name: str | None = None, host_name: str | None = None) -> dict:
    """The lab state's entry of the pool named, or of the pool holding `host_name`."""
    from sdnctl.errors import LabError
    from sdnctl.lab.lab import read_state

    for pool in read_state(Path(args.root), args.octet)["pools"]:
        if pool["name"] == pool_name or any(h["name"] == host_name for h in pool["hosts"]):
            return pool
    raise LabError(f"no {'pool ' + pool_name if pool_name else 'host ' + str(host_name)} in the running lab; "
                   "see `sdnctl lab status`")


def _live_addresses(pool: dict, target: str | None = None) -> list[str]:
    """The pool's live hosts' addresses, the master's first and the verb's `target` last (a host being crashed
    would not answer): a dead (maybe silent) host is never asked."""
    live = [h for h in pool["hosts"] if h.get("live", True)]
    order = sorted(live, key=lambda h: (h["name"] == target, h["name"] != pool["master"]))
    return [h["address"] for h in order]


def _admin(pool: dict, verb: str, *params, target: str | None = None):
    """A `lab.<verb>` call; every live host of the pool serves them, whoever is master."""
    import ssl
    import urllib.parse
    import xmlrpc.client

    from sdnctl.errors import LabError

    class Transport(xmlrpc.client.SafeTransport):
        def make_connection(self, host):
            connection = super().make_connection(host)
            connection.timeout = ADMIN_TIMEOUT
            return connection

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE       # the simulator serves the lab's own self-signed certificates
    port = urllib.parse.urlsplit(pool["url"]).port
    errors = []
    for address in _live_addresses(pool, target):
        url = f"https://{address}" + (f":{port}" if port else "")
        try:
            result = getattr(xmlrpc.client.ServerProxy(url, transport=Transport(context=context)).lab, verb)(*params)
        except OSError as exc:
            errors.append(f"{address}: {exc}")
            continue
        if result.get("Status") != "Success":
            raise LabError(f"lab {verb} {' '.join(map(str, params))}: {result.get('ErrorDescription')}")
        return result["Value"]
    raise LabError(f"pool {pool['name']}: no live host answered lab.{verb}: {'; '.join(errors) or 'none is live'}")


def _xapi_client(args, pool: dict):
    """sdnctl's XAPI client for a lab pool, configured as the lab's daemon config says but starting at the
    current master (the configured one may be dead, even silent), then the pool's live hosts."""
    import dataclasses

    from sdnctl.config import load_config
    from sdnctl.lab.lab import read_state
    from sdnctl.xapi.client import XapiClient

    config = load_config(read_state(Path(args.root), args.octet)["config"])
    configured = next(p for p in config.pools if p.name == pool["name"])
    return XapiClient(dataclasses.replace(configured, url=pool["url"]), known_hosts=lambda: _live_addresses(pool))


def cmd_host(args) -> int:
    """Scenario verbs on the running lab: join, eject, crash [--silent], recover, master changes."""
    from sdnctl.errors import LabError

    pool = _pool(args, pool_name=args.target if args.verb == "join" else None,
                 host_name=None if args.verb == "join" else args.target)
    verb = "host_" + args.verb.replace("-", "_")
    if args.verb == "join":
        print(f"host {_admin(pool, verb)}: join done")
        return 0
    if args.silent and not [h for h in pool["hosts"] if h.get("live", True) and h["name"] != args.target]:
        raise LabError(f"{args.target} is the only live host of {pool['name']}: nothing would answer for it")
    _admin(pool, verb, *([args.target, args.silent] if args.verb == "crash" else [args.target]), target=args.target)
    print(f"host {args.target}: {args.verb}{' --silent' if args.silent else ''} done")
    return 0


def cmd_vm(args) -> int:
    """A guest VM on a host, with one VIF on a network, started (its namespace in --netns labs)."""
    from sdnctl.errors import LabError

    pool = _pool(args, host_name=args.host)
    created = _admin(pool, "vm_create", args.name, args.ip or "")
    client = _xapi_client(args, pool)
    try:
        call = client.call
        networks = call("network.get_by_name_label", args.network)
        if not networks:
            raise LabError(f"no network {args.network!r} in {pool['name']}")
        vif = call("VIF.create", {"device": "0", "network": networks[0], "VM": created, "MAC": args.mac or "",
                                  "other_config": {}, "MTU": call("network.get_MTU", networks[0])})
        call("VM.start_on", created, call("host.get_by_name_label", args.host)[0], False, False)
        vm_uuid = call("VM.get_uuid", created)
        print(f"VM {args.name} ({vm_uuid}) running on {args.host}, "
              f"VIF {call('VIF.get_uuid', vif)} MAC {call('VIF.get_MAC', vif)}"
              + (f", namespace sdnlab{args.octet}-vm-{vm_uuid[:8]}" if args.ip else ""))
    finally:
        client.close()
    return 0
