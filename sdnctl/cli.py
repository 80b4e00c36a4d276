"""The `sdnctl` command."""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

from sdnctl.errors import SdnctlError

# python-ovs imports eventlet only to check whether it is in use (it is not); silence its notice.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

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


def _lab_pool(args, pool_name: str | None = None, host_name: str | None = None) -> dict:
    """The lab state's entry of the pool named, or of the pool holding `host_name`."""
    from sdnctl.errors import LabError
    from sdnctl.lab.lab import read_state

    for pool in read_state(Path(args.root), args.octet)["pools"]:
        if pool["name"] == pool_name or any(h["name"] == host_name for h in pool["hosts"]):
            return pool
    raise LabError(f"no {'pool ' + pool_name if pool_name else 'host ' + str(host_name)} in the running lab; "
                   "see `sdnctl lab status`")


def _xapi_session(pool: dict):
    import XenAPI

    session = XenAPI.Session(pool["url"], ignore_ssl=True)  # the lab's own self-signed hosts
    session.login_with_password(pool["username"], pool["password"], "1.0", "sdnctl-lab")
    return session


def cmd_lab_host(args) -> int:
    """Scenario verbs on the running lab: join, eject, crash, recover."""
    import ssl
    import xmlrpc.client

    from sdnctl.errors import LabError

    pool = _lab_pool(args, pool_name=args.target if args.verb == "join" else None,
                     host_name=None if args.verb == "join" else args.target)
    proxy = xmlrpc.client.ServerProxy(pool["url"], context=ssl._create_unverified_context())
    method = getattr(proxy.lab, f"host_{args.verb}")
    result = method() if args.verb == "join" else method(args.target)
    if result.get("Status") != "Success":
        raise LabError(f"lab host {args.verb} {args.target}: {result.get('ErrorDescription')}")
    print(f"host {result['Value'] if args.verb == 'join' else args.target}: {args.verb} done")
    return 0


def cmd_lab_vm(args) -> int:
    """A guest VM on a host, with one VIF on a network, started (its namespace in --netns labs)."""
    import ssl
    import xmlrpc.client

    from sdnctl.errors import LabError

    pool = _lab_pool(args, host_name=args.host)
    proxy = xmlrpc.client.ServerProxy(pool["url"], context=ssl._create_unverified_context())
    created = proxy.lab.vm_create(args.name, args.ip or "")
    if created.get("Status") != "Success":
        raise LabError(f"lab vm: {created.get('ErrorDescription')}")
    session = _xapi_session(pool)
    try:
        api = session.xenapi
        networks = api.network.get_by_name_label(args.network)
        if not networks:
            raise LabError(f"no network {args.network!r} in {pool['name']}")
        vif = api.VIF.create({"device": "0", "network": networks[0], "VM": created["Value"], "MAC": args.mac or "",
                              "other_config": {}, "MTU": api.network.get_MTU(networks[0])})
        api.VM.start_on(created["Value"], api.host.get_by_name_label(args.host)[0], False, False)
        print(f"VM {args.name} ({api.VM.get_uuid(created['Value'])}) running on {args.host}, "
              f"VIF {api.VIF.get_uuid(vif)} MAC {api.VIF.get_MAC(vif)}"
              + (f", namespace sdnlab{args.octet}-vm-{api.VM.get_uuid(created['Value'])[:8]}" if args.ip else ""))
    finally:
        session.xenapi.session.logout()
    return 0


def cmd_demo(args) -> int:
    """The demo: a data-plane lab, the controller, a cross-pool network, failures; all torn down after."""
    from sdnctl.demo import run_demo

    return run_demo(args.octet, Path(args.root))


def _config(args):
    from sdnctl.config import load_config

    return load_config(args.config)


def cmd_run(args) -> int:
    """The daemon: runs until SIGTERM/SIGINT."""
    import asyncio

    from sdnctl.ipsec import REDACTOR
    from sdnctl.reconcile import Controller

    config = _config(args)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack to stderr
    logging.basicConfig(level=(args.log_level or config.log_level).upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(REDACTOR)
    logging.getLogger("sdnctl").info("sdnctl starting: %d pool(s) from %s", len(config.pools), config.path)

    async def main():
        task = asyncio.create_task(Controller(config).run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            logging.getLogger("sdnctl").info("sdnctl stopped")

    asyncio.run(main())
    return 0


def _network_request(args, config):
    from sdnctl.errors import ConfigError
    from sdnctl.networks import CreateRequest

    if args.ipsec == "cert":
        raise ConfigError("--ipsec cert is not supported: it needs a private key placed on every host's file "
                          "system, which XAPI offers no call for; use --ipsec psk (the default)")
    return CreateRequest(name=args.name, pools=tuple(args.pool), pif_device=args.pif_device,
                         encapsulation=args.encapsulation or config.encapsulation,
                         topology=args.topology or config.topology, vlan=args.vlan,
                         preferred_center=args.preferred_center, vni=args.vni, mtu=args.mtu,
                         encrypted=args.encrypt)


def cmd_network(args) -> int:
    from sdnctl import networks
    from sdnctl.ipsec import PskStore

    config = _config(args)
    if args.network_command == "create":
        request = _network_request(args, config)
        networks.validate(request)
        with networks.Pools(config, list(request.pools)) as pools:
            networks.create(pools, request, print)
        return 0
    with networks.Pools(config) as pools:
        if args.network_command == "delete":
            networks.delete(pools, args.name, print)
            return 0
        if args.network_command == "rekey":
            networks.rekey(pools, args.name, PskStore(config.state_dir), print)
            return 0
        described = networks.describe(pools)
        if args.network_command == "show":
            net_id, _ = networks.find_network(pools, args.name)
            described = [n for n in described if n["id"] == net_id]
            print(json.dumps(described[0], indent=2))
            return 0
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    if not described:
        print("no private networks; create one with `sdnctl network create`")
    for n in described:
        pools_text = ", ".join(f"{p['pool']}:{p['bridge']}" for p in n["pools"])
        print(f"{n['name']:<16} {n['id']}  {n['encapsulation']:<5} vni {n['vni']:<6} {n['topology']:<4} "
              f"mtu {n['mtu']:<5} {n['origin']:<6} {pools_text}")
    return 0


def cmd_rule(args) -> int:
    """rule add | delete | list."""
    from sdnctl import networks, rules
    from sdnctl.core.flows import describe_rule, parse_rule

    config = _config(args)
    rule = None
    if args.rule_command != "list":
        rule = parse_rule({"allow": args.allow, "protocol": args.protocol, "port": args.port,
                           "ipRange": args.ip_range, "direction": args.direction})
    with networks.Pools(config) as pools:
        if args.rule_command == "add":
            rules.add(pools, rule, vif=args.vif, network=args.network, say=print)
        elif args.rule_command == "delete":
            rules.delete(pools, rule, vif=args.vif, network=args.network, say=print)
        else:
            found = rules.listing(pools, vif=args.vif, network=args.network)
            for pool, cls, item in found:
                print(f"{pool} {cls}: {describe_rule(item)}")
            if not found:
                print("no rules")
    return 0


def cmd_certs(args) -> int:
    """certs init | show | install | rotate."""
    import asyncio
    import datetime

    from sdnctl import certs
    from sdnctl.xapi.trust import ensure_trust, installed_fingerprint
    from sdnctl.xapi.watcher import PoolWatcher

    config = _config(args)
    now = datetime.datetime.now(datetime.timezone.utc)
    if args.certs_command == "init":
        paths, created = certs.ensure_controller_certs(config.cert_dir, now)
        print(f"{'created' if created else 'kept the existing'} CA and client certificate in {paths.dir}")
        for path in (paths.ca_cert, paths.client_cert):
            info = certs.cert_info(path, now)
            print(f"  {path.name}: {info.subject}, SHA-256 {info.fingerprint}, expires {info.not_after}")
        return 0
    paths = certs.ControllerCerts(config.cert_dir)
    if not paths.ca_cert.exists():
        print(f"no CA in {config.cert_dir}: run `sdnctl certs init` first", file=sys.stderr)
        return 1
    if args.certs_command == "rotate":
        old = certs.cert_info(paths.client_cert, now).fingerprint
        certs.rotate_client(paths, now)
        new = certs.cert_info(paths.client_cert, now)
        print(f"new client certificate SHA-256 {new.fingerprint} (was {old}), expires {new.not_after}; "
              "a running daemon reconnects host by host within seconds, tunnels stay")
        return 0
    pools = [p for p in config.pools if not args.pool or p.name in args.pool]
    ca_pem = paths.ca_cert.read_text()

    async def per_pool(pool):
        call = PoolWatcher(pool, lambda _: None).call
        if args.certs_command == "install":
            return await ensure_trust(call, pool.name, ca_pem, override=args.override, config_path=str(config.path),
                                      replace_unverifiable=args.override)
        return await installed_fingerprint(call)

    async def all_pools():
        return await asyncio.gather(*(per_pool(p) for p in pools), return_exceptions=True)

    results = asyncio.run(all_pools())
    if args.certs_command == "show":
        for path, role in ((paths.ca_cert, "CA"), (paths.client_cert, "client")):
            info = certs.cert_info(path, now)
            warn = "  WARNING: expires soon, run `sdnctl certs rotate`" if info.expiring else ""
            print(f"{role:<6} {info.subject}  SHA-256 {info.fingerprint}  expires {info.not_after} "
                  f"({info.days_left} days){warn}")
    failed = False
    ours = certs.fingerprint(ca_pem)
    for pool, result in zip(pools, results):
        if isinstance(result, Exception):
            print(f"pool {pool.name}: unreachable: {result}")
            failed = True
        elif args.certs_command == "install":
            print(f"pool {pool.name}: {result.state}" + (f": {result.message}" if result.message else ""))
            failed |= not result.usable
        else:
            present, theirs = result
            state = ("not installed" if not present else "trusts sdnctl's CA" if certs.same_fingerprint(theirs, ours)
                     else f"holds ANOTHER {certs.POOL_CA_NAME} (SHA-256 {theirs or 'unknown'})")
            print(f"pool {pool.name}: {state}")
    return 1 if failed else 0


def cmd_plan(args) -> int:
    """What the daemon would change now, per host, without changing anything."""
    import asyncio

    from sdnctl.reconcile import Controller

    config = _config(args)

    async def main():
        controller = Controller(config, dry_run=True)
        task = asyncio.create_task(controller.run())
        deadline = asyncio.get_running_loop().time() + args.timeout
        while asyncio.get_running_loop().time() < deadline and not task.done():
            ready = controller.pools_synced_once and controller.switches and all(
                uuid in controller.plans or sw.status_error() for uuid, sw in controller.switches.items())
            if ready:
                break
            await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if task.done() and not task.cancelled() and task.exception():
            raise task.exception()
        return controller

    controller = asyncio.run(main())
    unsynced = [w.name for w in controller.watchers.values() if not w.resyncs]
    if unsynced:
        print(f"cannot plan: pool(s) {', '.join(unsynced)} did not answer within {args.timeout:.0f}s; "
              "a plan without them would be wrong", file=sys.stderr)
        return 1
    changes = 0
    for uuid, switch in sorted(controller.switches.items(), key=lambda kv: kv[1].host_name):
        plan = controller.plans.get(uuid)
        if plan is None:
            print(f"{switch.host_name}: unknown ({switch.status_error() or 'not connected'})")
            continue
        if plan.empty:
            print(f"{switch.host_name}: no change")
        for spec in plan.add:
            print(f"{switch.host_name}: + {spec.name} {spec.type} remote_ip={spec.remote_ip} key={spec.key} on {spec.bridge}")
        for spec in plan.modify:
            print(f"{switch.host_name}: ~ {spec.name} {spec.type} remote_ip={spec.remote_ip} key={spec.key}")
        for port in plan.delete:
            print(f"{switch.host_name}: - {port.name} (network {port.network_id})")
        changes += len(plan.add) + len(plan.modify) + len(plan.delete)
    print(f"{changes} change(s) pending")
    return 0


def cmd_status(args) -> int:
    config = _config(args)
    path = config.state_dir / "status.json"
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        print(f"no status at {path}: is the daemon running (`sdnctl run --config {config.path}`)?", file=sys.stderr)
        return 1
    age = time.time() - state["generated_at"]
    if args.json:
        state["age_seconds"] = round(age, 1)
        print(json.dumps(state, indent=2))
        return 0
    if age > 15:
        print(f"warning: status is {age:.0f}s old; the daemon may be stopped")
    for pool in state["pools"]:
        print(f"pool {pool['name']}: {'synced' if pool['synced'] else 'NOT SYNCED'} ({pool['master_url']})"
              + (f" error: {pool['error']}" if pool["error"] else ""))
    certificate = state.get("client_certificate")
    if certificate:
        print(f"client certificate: SHA-256 {certificate['fingerprint']}, expires {certificate['not_after']}"
              + (f"  WARNING: {certificate['warning']}" if certificate["warning"] else ""))
    for host in sorted(state["hosts"].values(), key=lambda h: h["name"]):
        openflow = ", ".join(f"{bridge} {'up' if of['connected'] else 'DOWN'}" for bridge, of in
                             sorted(host.get("openflow", {}).items()))
        print(f"host {host['name']}: ovsdb {'connected' if host['connected'] else 'DISCONNECTED'} {host['target']}"
              + (f"; openflow {openflow}" if openflow else "") + (f" error: {host['error']}" if host["error"] else ""))
    for where, error in sorted(state.get("rule_errors", {}).items()):
        print(f"rules IGNORED on {where}: {error}")
    for n in state["networks"]:
        print(f"\nnetwork {n['name']} ({n['id']}) {n['encapsulation']} vni {n['vni']} {n['topology']}"
              + (f" center {n['center_name']}" if n["center"] else "") + (f"\n  ERROR: {n['error']}" if n["error"] else ""))
        for h in sorted(n["hosts"], key=lambda h: h["name"]):
            print(f"  {h['name']:<10} {h['bridge']:<8} {h['transport_ip'] or '-':<15} "
                  f"{'eligible' if h['eligible'] else 'INELIGIBLE'}")
            for t in h["tunnels"]:
                state_text = ("ok" if t["desired"] and t["observed"] else "MISSING" if t["desired"] else "STALE")
                print(f"    {t['name']} -> {t['remote_name']:<10} {t['remote_ip'] or '-':<15} ofport "
                      f"{t['ofport'] if t['ofport'] is not None else '-':<4} {state_text}"
                      + (f" error: {t['error']}" if t["error"] else ""))
    return 0


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
    host = lab_sub.add_parser("host", help="scenario verbs: a host joins a pool, is ejected, crashes or recovers")
    host.add_argument("verb", choices=["join", "eject", "crash", "recover"])
    host.add_argument("target", help="the pool (for join) or the host name (p1h2, ...)")
    lab_options(host)
    host.set_defaults(func=cmd_lab_host)
    vm = lab_sub.add_parser("vm", help="start a guest VM with one VIF on a network (a namespace with --netns)")
    vm.add_argument("--name", required=True)
    vm.add_argument("--host", required=True, help="host name, e.g. p1h1")
    vm.add_argument("--network", required=True, help="network name_label in that host's pool")
    vm.add_argument("--ip", help="guest address with prefix, e.g. 192.0.2.10/24 (data-plane labs)")
    vm.add_argument("--mac", help="VIF MAC (default: random)")
    lab_options(vm)
    vm.set_defaults(func=cmd_lab_vm)
    down = lab_sub.add_parser("down", help="stop the lab: every process, namespace and file it made (idempotent)")
    lab_options(down)
    down.set_defaults(func=cmd_lab_down)

    def config_option(p):
        from sdnctl.config import default_config_path

        p.add_argument("--config", default=str(default_config_path()),
                       help="config file (default: $SDNCTL_CONFIG or /etc/sdnctl/sdnctl.toml; now %(default)s)")

    run = sub.add_parser("run", help="run the controller daemon (foreground; systemd runs this)")
    config_option(run)
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                     help="override the config's log_level")
    run.set_defaults(func=cmd_run)

    network = sub.add_parser("network", help="private networks: create, list, show, delete",
                             description="Private networks span hosts and pools; their intent is stored in XAPI "
                                         "(network other_config, sdnctl: keys) and the daemon builds the tunnels.")
    net_sub = network.add_subparsers(dest="network_command", required=True, metavar="NETWORK_COMMAND")
    create = net_sub.add_parser("create", help="create a private network in one or more pools")
    create.add_argument("--name", required=True, help="the network's name (name_label in every pool)")
    create.add_argument("--pool", action="append", default=[], required=True,
                        help="a pool (from the config) the network spans; repeat for cross-pool networks")
    create.add_argument("--pif-device", required=True,
                        help="the NIC tunnels leave from on every host, e.g. eth1; its PIF needs an IP")
    create.add_argument("--vlan", type=int, help="use the VLAN PIF with this tag on that device")
    create.add_argument("--encapsulation", choices=["gre", "vxlan"],
                        help="default: the config's [defaults] encapsulation (gre unless set)")
    create.add_argument("--topology", choices=["star", "mesh"],
                        help="star: every host tunnels to one center (XO-compatible); mesh: every pair "
                             "(default: the config's [defaults] topology, star unless set)")
    create.add_argument("--preferred-center", help="host name or uuid to be the star's center while eligible")
    create.add_argument("--vni", type=int, help="the tunnel key; default: the lowest unused")
    create.add_argument("--mtu", default="auto",
                        help="inner MTU in bytes, or 'auto': transport MTU minus the encapsulation's overhead "
                             "(GRE 44, VXLAN 50)")
    create.add_argument("--encrypt", action="store_true",
                        help="encrypt every tunnel with IPsec (ovs-monitor-ipsec on the hosts); sdnctl keeps a "
                             "random pre-shared key per network in its state dir, never in XAPI")
    create.add_argument("--ipsec", choices=["psk", "cert"], default="psk",
                        help="IPsec authentication with --encrypt (default %(default)s; cert is not supported)")
    for sp in (create,):
        config_option(sp)
    listing = net_sub.add_parser("list", help="list private networks across the configured pools")
    listing.add_argument("--json", action="store_true")
    show = net_sub.add_parser("show", help="show one private network")
    show.add_argument("name", help="name or private-network uuid")
    delete = net_sub.add_parser("delete", help="delete a private network from every pool (tunnels go too)")
    delete.add_argument("name", help="name or private-network uuid")
    rekey = net_sub.add_parser("rekey", help="replace an encrypted network's IPsec pre-shared key on every tunnel")
    rekey.add_argument("name", help="name or private-network uuid")
    for sp in (listing, show, delete, rekey):
        config_option(sp)
    network.set_defaults(func=cmd_network)

    rule_parser = sub.add_parser(
        "rule", help="OpenFlow traffic rules per VIF or per network (Xen Orchestra's model)",
        description="Rules are stored in XAPI other_config (sdnctl:of-rules, Xen Orchestra's format; "
                    "xo:sdn-controller:of-rules is read too) and enforced by the daemon over OpenFlow. "
                    "Direction is seen from the VM: from = what it sends, to = what it receives. "
                    "See docs/rules.md for matching and priorities.")
    rule_sub = rule_parser.add_subparsers(dest="rule_command", required=True, metavar="RULE_COMMAND")
    for verb, text in (("add", "add a rule (replaces one with the same protocol, port, range, direction)"),
                       ("delete", "delete the rule with this protocol, port, range and direction"),
                       ("list", "list the rules of a VIF or network")):
        sp = rule_sub.add_parser(verb, help=text)
        target = sp.add_mutually_exclusive_group(required=True)
        target.add_argument("--vif", help="VIF uuid")
        target.add_argument("--network", help="network name (every pool's network of that name)")
        if verb != "list":
            action = sp.add_mutually_exclusive_group(required=verb == "add")
            action.add_argument("--allow", dest="allow", action="store_true", default=True, help="forward (NORMAL)")
            action.add_argument("--deny", dest="allow", action="store_false", help="drop")
            sp.add_argument("--protocol", required=True, help="ip, icmp, tcp, udp or arp")
            sp.add_argument("--port", type=int, help="tcp/udp destination port")
            sp.add_argument("--ip-range", help="the other side's CIDR, e.g. 10.0.0.0/8 (default: any)")
            sp.add_argument("--direction", default="both", help="from, to or both (default %(default)s)")
        config_option(sp)
    rule_parser.set_defaults(func=cmd_rule)

    certs_parser = sub.add_parser(
        "certs", help="the controller's CA and client certificate, and the pools' trust in it",
        description="sdnctl's CA signs its client certificate; each pool must trust that CA as "
                    "sdn-controller-ca.pem for its hosts' OVSDB to accept sdnctl. Files: see certs/README.md.")
    certs_sub = certs_parser.add_subparsers(dest="certs_command", required=True, metavar="CERTS_COMMAND")
    init = certs_sub.add_parser("init", help="create the CA and client certificate (keeps valid existing ones)")
    show_certs = certs_sub.add_parser("show", help="subjects, fingerprints, expiry, and where each pool stands")
    install = certs_sub.add_parser("install", help="install the CA into the pools (compared by content)")
    install.add_argument("--override", action="store_true",
                         help="replace a different sdn-controller-ca.pem (e.g. Xen Orchestra's)")
    rotate = certs_sub.add_parser("rotate", help="issue a new client certificate under the same CA")
    for sp in (show_certs, install):
        sp.add_argument("--pool", action="append", default=[], help="only this pool (repeatable)")
    for sp in (init, show_certs, install, rotate):
        config_option(sp)
    certs_parser.set_defaults(func=cmd_certs)

    plan = sub.add_parser("plan", help="print what the daemon would change on each host, changing nothing")
    config_option(plan)
    plan.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for pools and hosts")
    plan.set_defaults(func=cmd_plan)

    status = sub.add_parser("status", help="show pools, hosts and each network's tunnels (desired vs observed)")
    config_option(status)
    status.add_argument("--json", action="store_true", help="the daemon's full status as JSON")
    status.set_defaults(func=cmd_status)

    demo = sub.add_parser("demo", help="the demo: 2 pools x 3 hosts with real packets, the controller, a "
                                       "cross-pool network, a center crash, a host join, a hitless restart")
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
