"""The `sdnctl` command."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sdnctl.errors import SdnctlError

LAB_START_TIMEOUT = 120.0
LAB_STOP_TIMEOUT = 30.0


def _lab_paths(args) -> tuple[Path, Path, Path]:
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


def cmd_lab_up(args) -> int:
    pid_file, log_file, state_file = _lab_paths(args)
    if _serve_pid(pid_file):
        print(f"a lab is already running (pid {_serve_pid(pid_file)}); `sdnctl lab down` first", file=sys.stderr)
        return 1
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "sdnctl.cli", "lab", "serve", "--pools", str(args.pools), "--hosts", str(args.hosts),
           "--octet", str(args.octet), "--root", str(args.root)] + (["--netns"] if args.netns else [])
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


def cmd_lab_serve(args) -> int:
    """Run a lab in the foreground until SIGTERM/SIGINT, then tear it down."""
    from sdnctl.lab.lab import Lab

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    lab = Lab(pools=args.pools, hosts=args.hosts, dataplane=args.netns, octet=args.octet, root=Path(args.root))
    lab.up()
    print(f"lab serving: {lab.state_path}", flush=True)
    try:
        stop.wait()
    finally:
        lab.down()
        print("lab stopped", flush=True)
    return 0


def cmd_lab_down(args) -> int:
    from sdnctl.lab.lab import sweep

    pid_file, _, _ = _lab_paths(args)
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


def cmd_lab_status(args) -> int:
    from sdnctl.lab.lab import read_state

    state = read_state(Path(args.root), args.octet)
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    print(f"config: {state['config']}")
    for pool in state["pools"]:
        print(f"{pool['name']}: {pool['url']} (master {pool['master']})")
        for host in pool["hosts"]:
            where = f" netns {host['netns']}" if host["netns"] else ""
            print(f"  {host['name']:<8} {host['address']:<15} {host['uuid']}  ovsdb {host['ovsdb']}{where}")
    return 0


def cmd_demo(args) -> int:
    """The demo: a lab, then its status."""
    args.pools, args.hosts, args.netns = 2, 3, True
    code = cmd_lab_up(args)
    if code == 0:
        code = cmd_lab_status(args)
        print("\nThe lab keeps running; stop it with `.venv/bin/sdnctl lab down`.")
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdnctl",
        description="Open vSwitch SDN controller for XCP-ng / XenServer pools: private networks "
                    "(GRE/VXLAN tunnels across hosts and pools), traffic rules, certificates.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def lab_options(p):
        p.add_argument("--octet", type=int, default=0,
                       help="second octet of the lab's loopback addresses 127.OCTET.POOL.HOST (default 0); "
                            "labs with different octets can run side by side")
        p.add_argument("--root", default="/run/sdnctl-lab", help="where labs keep their files (default %(default)s)")

    lab = sub.add_parser("lab", help="simulated XCP-ng pools on real Open vSwitch, for tests and the demo",
                         description="Simulated XCP-ng pools: a XAPI simulator per pool (XML-RPC and JSON-RPC on "
                                     "each host's address, ports 80/443) and real ovsdb-server/ovs-vswitchd per host.")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True, metavar="LAB_COMMAND")
    up = lab_sub.add_parser("up", help="start a lab in the background and write a daemon config for it")
    up.add_argument("--pools", type=int, default=1, help="number of pools (default 1)")
    up.add_argument("--hosts", type=int, default=2, help="hosts per pool (default 2)")
    up.add_argument("--netns", action="store_true",
                    help="data-plane mode: each host in its own network namespace on the netdev datapath, "
                         "eth1 on a shared underlay (198.18.POOL.HOST/16), VMs as namespaces")
    lab_options(up)
    up.set_defaults(func=cmd_lab_up)
    serve = lab_sub.add_parser("serve", help="run a lab in the foreground (what `lab up` starts)")
    serve.add_argument("--pools", type=int, default=1)
    serve.add_argument("--hosts", type=int, default=2)
    serve.add_argument("--netns", action="store_true")
    lab_options(serve)
    serve.set_defaults(func=cmd_lab_serve)
    status = lab_sub.add_parser("status", help="show the running lab's pools and hosts")
    status.add_argument("--json", action="store_true",
                        help='stable JSON: {"config", "pools": [{"name", "url", "username", "password", "master", '
                             '"hosts": [{"uuid", "name", "ovsdb", "netns"}]}]}')
    lab_options(status)
    status.set_defaults(func=cmd_lab_status)
    down = lab_sub.add_parser("down", help="stop the lab: every process, namespace and file it made (idempotent)")
    lab_options(down)
    down.set_defaults(func=cmd_lab_down)

    demo = sub.add_parser("demo", help="start a 2-pool x 3-host data-plane lab and show it")
    lab_options(demo)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SdnctlError as exc:
        print(f"sdnctl: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
