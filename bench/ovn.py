"""OVN as a performance peer: how long a new chassis takes to be tunnelled to by every other chassis.

One OVN central (NB and SB ovsdb-servers, ovn-northd) and K chassis, each its own ovsdb-server,
`ovs-vswitchd --enable-dummy=override` and ovn-controller, with br-int, one VIF port bound to a
logical switch port, and a geneve encap on its own loopback address 127.230.0.<i>.
Chassis 1..K-1 are meshed first; the K-th chassis' OVS is started before the clock (timed apart),
then join time runs from the moment its ovn-controller is spawned until every other chassis' OVSDB
holds a geneve Interface with options:remote_ip = its encap IP. Each round is a fresh join: the
K-th chassis is stopped, its Chassis/Encap rows deleted (`ovn-sbctl chassis-del`), its OVS rebuilt.

Needs Debian 12's ovn-central and ovn-host (OVN 23.03) beside openvswitch-switch; stop the services
they start, only this script's own daemons run (every one under /run/sdnctl-ovn-bench, stopped by pid).
Run as root: .venv/bin/python bench/ovn.py [--rounds N] [--k 4 8 16]
"""

from __future__ import annotations

import argparse
import errno
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# python-ovs imports eventlet only to check whether it is in use (it is not); silence its notice.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
import ovs.jsonrpc  # noqa: E402
import ovs.stream  # noqa: E402

import report  # noqa: E402
from sdnctl.errors import LabError  # noqa: E402
from sdnctl.lab.netns import run  # noqa: E402

ROOT = Path("/run/sdnctl-ovn-bench")
SUBNET = "127.230.0."                  # this bench's loopback octet: chassis i is SUBNET + i
CENTRAL_ADDRESS = SUBNET + "254"
NB_PORT = 26641
SB_PORT = 26642
LOGICAL_SWITCH = "ls0"
VSWITCH_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
OVN_SCHEMAS = Path("/usr/share/ovn")
POLL_INTERVAL = 0.02                   # the longest the watch loop sleeps between looks at its sockets
CONNECT_TIMEOUT = 5.0
MESH_TIMEOUT = 60.0
JOIN_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
SYNC_TIMEOUT = 30


def daemon_env(workdir: Path) -> dict[str, str]:
    """The environment that keeps an OVS or OVN program's sockets, logs and databases in `workdir`."""
    return {**os.environ, **{f"{project}_{kind}DIR": str(workdir)
                             for project in ("OVS", "OVN") for kind in ("RUN", "LOG", "DB", "SYSCONF")}}


def daemon_command(workdir: Path, program: str, name: str, *args: str) -> list[str]:
    return [program, "--detach", "--no-chdir", f"--pidfile={workdir / name}.pid", f"--log-file={workdir / name}.log",
            *args]


def live_pid(pidfile: Path) -> int | None:
    """The pid in `pidfile` if that process is alive and was started with this pid file."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if f"--pidfile={pidfile}".encode() in cmdline else None


def signal_all(pidfiles: Sequence[Path], sig: int) -> None:
    for pidfile in pidfiles:
        pid = live_pid(pidfile)
        if pid:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def wait_gone(pidfiles: Sequence[Path]) -> bool:
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(live_pid(p) for p in pidfiles):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def stop_daemons(pidfiles: Sequence[Path]) -> None:
    """TERM every daemon of these pid files at once, then KILL whatever outlives a bounded wait."""
    signal_all(pidfiles, signal.SIGTERM)
    if not wait_gone(pidfiles):
        signal_all(pidfiles, signal.SIGKILL)
        wait_gone(pidfiles)


def require_free(address: str, port: int) -> None:
    with socket.socket() as probe:
        # As ovsdb-server binds: connections of an earlier run in TIME_WAIT do not make the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise LabError(f"{address}:{port} is in use ({exc.strerror}): another OVN or lab listens there; "
                           f"stop it, or change NB_PORT/SB_PORT in bench/ovn.py") from exc


class TunnelWatch:
    """A JSON-RPC monitor on one chassis' OVSDB: the remote_ip of each geneve Interface, kept as updates arrive."""

    def __init__(self, db_sock: Path):
        self.name = str(db_sock)
        error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(f"unix:{db_sock}"),
                                                     timeout=int(CONNECT_TIMEOUT * 1000))
        if error:
            raise LabError(f"{db_sock}: cannot connect: {os.strerror(error)}; is its ovsdb-server running?")
        self.connection = ovs.jsonrpc.Connection(stream)
        self.remote_ips: dict[str, str] = {}   # Interface uuid -> options:remote_ip, geneve rows only
        self.ready = False                      # the monitor's reply (the table's current rows) has arrived
        self.connection.send(ovs.jsonrpc.Message.create_request(
            "monitor", ["Open_vSwitch", None, {"Interface": {"columns": ["type", "options"]}}]))
        wait_for([self], lambda: self.ready, CONNECT_TIMEOUT, lambda: f"{self.name}: the monitor's first reply")

    @property
    def socket(self) -> socket.socket:
        return self.connection.stream.socket

    def tunnel_ips(self) -> set[str]:
        return set(self.remote_ips.values())

    def drain(self) -> None:
        """Apply every message received so far, without blocking."""
        while True:
            error, message = self.connection.recv()
            if error == errno.EAGAIN:
                return
            if error:
                raise LabError(f"{self.name}: monitor connection lost: {os.strerror(error) if error > 0 else 'EOF'}")
            if message.type == ovs.jsonrpc.Message.T_REPLY:
                self._apply(message.result)
                self.ready = True
            elif message.type == ovs.jsonrpc.Message.T_NOTIFY and message.method == "update":
                self._apply(message.params[1])
            elif message.type == ovs.jsonrpc.Message.T_REQUEST and message.method == "echo":
                self.connection.send(ovs.jsonrpc.Message.create_reply(message.params, message.id))
            elif message.type == ovs.jsonrpc.Message.T_ERROR:
                raise LabError(f"{self.name}: monitor refused: {message.error}")

    def _apply(self, table_updates: dict) -> None:
        # A monitor (v1) update's "new" holds every monitored column; no "new" means the row was deleted.
        for uuid, change in table_updates.get("Interface", {}).items():
            new = change.get("new")
            if new and new.get("type") == "geneve" and "remote_ip" in dict(new["options"][1]):
                self.remote_ips[uuid] = dict(new["options"][1])["remote_ip"]
            else:
                self.remote_ips.pop(uuid, None)

    def close(self) -> None:
        self.connection.close()


def wait_for(watches: Sequence[TunnelWatch], done: Callable[[], bool], timeout: float,
             what: Callable[[], str]) -> None:
    """Until `done()`, apply what the watches receive, sleeping in select() at most POLL_INTERVAL at a time.

    `done()` runs right after each drain, so a caller that reads the clock in it timestamps an update
    within a drain of its arrival, not within a poll interval.
    """
    deadline = time.perf_counter() + timeout
    while True:
        for watch in watches:
            watch.drain()
        if done():
            return
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise LabError(f"timed out after {timeout:g} s waiting for {what()}")
        select.select([w.socket for w in watches], [], [], min(POLL_INTERVAL, remaining))


class Central:
    """OVN central: the NB and SB databases, each its own ovsdb-server, and ovn-northd, in one directory."""

    def __init__(self, workdir: Path):
        self.dir = workdir / "central"
        self.nb = f"unix:{self.dir / 'nb.sock'}"
        self.sb = f"unix:{self.dir / 'sb.sock'}"
        self.sb_remote = f"tcp:{CENTRAL_ADDRESS}:{SB_PORT}"   # what the chassis connect to
        self.pidfiles = [self.dir / f"{name}.pid" for name in ("ovn-northd", "ovsdb-server-sb", "ovsdb-server-nb")]

    def start(self) -> None:
        for port in (NB_PORT, SB_PORT):
            require_free(CENTRAL_ADDRESS, port)
        self.dir.mkdir(parents=True)
        env = daemon_env(self.dir)
        for db, port in (("nb", NB_PORT), ("sb", SB_PORT)):
            run(["ovsdb-tool", "create", str(self.dir / f"{db}.db"), str(OVN_SCHEMAS / f"ovn-{db}.ovsschema")])
            run(daemon_command(self.dir, "ovsdb-server", f"ovsdb-server-{db}", f"--remote=punix:{self.dir}/{db}.sock",
                               f"--remote=ptcp:{port}:{CENTRAL_ADDRESS}", f"--unixctl={self.dir}/{db}.ctl",
                               str(self.dir / f"{db}.db")), env=env)
        self.nbctl("init")
        self.sbctl("init")
        run(daemon_command(self.dir, "ovn-northd", "ovn-northd", f"--ovnnb-db={self.nb}", f"--ovnsb-db={self.sb}"),
            env=env)
        self.nbctl("ls-add", LOGICAL_SWITCH)

    def nbctl(self, *args: str) -> None:
        run(["ovn-nbctl", f"--db={self.nb}", f"--timeout={SYNC_TIMEOUT}", *args], env=daemon_env(self.dir))

    def sbctl(self, *args: str) -> None:
        run(["ovn-sbctl", f"--db={self.sb}", f"--timeout={SYNC_TIMEOUT}", *args], env=daemon_env(self.dir))

    def sync(self) -> None:
        """Return once northd and every chassis' ovn-controller have processed all changes made so far."""
        self.nbctl("--wait=hv", "sync")


class Chassis:
    """One hypervisor: its own ovsdb-server, dummy ovs-vswitchd and ovn-controller, in its own directory."""

    def __init__(self, index: int, workdir: Path, sb_remote: str):
        self.name = f"hv{index}"
        self.port = f"lsp{index}"
        self.encap_ip = f"{SUBNET}{index}"
        self.dir = workdir / self.name
        self.sb_remote = sb_remote
        self.ovsdb = f"unix:{self.dir / 'db.sock'}"
        self.pidfiles = [self.dir / f"{name}.pid" for name in ("ovn-controller", "ovs-vswitchd", "ovsdb-server")]
        self._watch: TunnelWatch | None = None

    def vsctl(self, *args: str) -> None:
        run(["ovs-vsctl", f"--db={self.ovsdb}", f"--timeout={SYNC_TIMEOUT}", *args], env=daemon_env(self.dir))

    def start_ovs(self) -> None:
        """Everything but ovn-controller: the database configured for OVN, ovs-vswitchd, br-int and its VIF."""
        self.dir.mkdir(parents=True)
        env = daemon_env(self.dir)
        db = self.dir / "conf.db"
        run(["ovsdb-tool", "create", str(db), str(VSWITCH_SCHEMA)])
        run(daemon_command(self.dir, "ovsdb-server", "ovsdb-server", f"--remote=punix:{self.dir}/db.sock", str(db)),
            env=env)
        self.vsctl("--no-wait", "init", "--", "set", "Open_vSwitch", ".", f"external-ids:system-id={self.name}",
                   f"external-ids:ovn-remote={self.sb_remote}", "external-ids:ovn-encap-type=geneve",
                   f"external-ids:ovn-encap-ip={self.encap_ip}")
        run(daemon_command(self.dir, "ovs-vswitchd", "ovs-vswitchd", "--enable-dummy=override", self.ovsdb), env=env)
        # Without --no-wait: returns once ovs-vswitchd has created the bridge (and its br-int.mgmt socket).
        self.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "fail-mode=secure",
                   "other-config:disable-in-band=true", "--", "add-port", "br-int", f"vif-{self.name}", "--",
                   "set", "Interface", f"vif-{self.name}", f"external-ids:iface-id={self.port}")

    def controller_command(self) -> list[str]:
        return daemon_command(self.dir, "ovn-controller", "ovn-controller", self.ovsdb)

    def start_controller(self) -> None:
        run(self.controller_command(), env=daemon_env(self.dir))

    def open_watch(self) -> None:
        self._watch = TunnelWatch(self.dir / "db.sock")

    @property
    def watch(self) -> TunnelWatch:
        if self._watch is None:
            raise LabError(f"{self.name}: its OVSDB is not watched; call open_watch() once start_ovs() is done")
        return self._watch

    def close_watch(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def stop(self) -> None:
        self.close_watch()
        stop_daemons(self.pidfiles)
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass(frozen=True)
class Join:
    """One fresh join of one chassis to K-1 meshed ones."""
    seconds: float      # ovn-controller spawned -> the last other chassis' OVSDB holds its tunnel
    ovs_start: float    # the joiner's own ovsdb-server, ovs-vswitchd and br-int, before the clock starts


class OvnLab:
    """One OVN central and the chassis of the current round, all stopped by pid when the `with` block ends."""

    def __init__(self, root: Path = ROOT):
        self.dir = root / str(os.getpid())
        self.central = Central(self.dir)
        self.chassis: dict[int, Chassis] = {}   # running chassis by index

    def __enter__(self) -> OvnLab:
        try:
            self.central.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for chassis in self.chassis.values():
            chassis.close_watch()
        stop_daemons([p for c in self.chassis.values() for p in c.pidfiles] + self.central.pidfiles)
        self.chassis.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def join(self, k: int) -> Join:
        """Mesh chassis 1..k-1 (kept from the last round when they match), then time chassis k joining them."""
        if not 2 <= k <= 253:
            raise LabError(f"k={k}: a join needs a chassis to join, and chassis take 127.230.0.1-253; "
                           f"give 2 <= k <= 253")
        self._mesh(k - 1)
        base = [self.chassis[i] for i in range(1, k)]
        joiner = self._add(k)
        started = time.perf_counter()
        joiner.start_ovs()
        ovs_start = time.perf_counter() - started
        self.central.nbctl("--may-exist", "lsp-add", LOGICAL_SWITCH, joiner.port)
        self.central.sync()

        tunnelled_at: dict[str, float] = {}

        def all_tunnelled() -> bool:
            now = time.perf_counter()
            for chassis in base:
                if chassis.name not in tunnelled_at and joiner.encap_ip in chassis.watch.tunnel_ips():
                    tunnelled_at[chassis.name] = now
            if launcher.poll():
                raise LabError(f"{joiner.name}: ovn-controller failed to start (exit {launcher.returncode}); "
                               f"see {joiner.dir}/ovn-controller.log")
            return len(tunnelled_at) == len(base)

        # Zero point: just before the spawn, so the join includes ovn-controller's exec and start-up, its
        # Chassis/Encap registration in the SB, and every other ovn-controller's reaction to it.
        zero = time.perf_counter()
        launcher = subprocess.Popen(joiner.controller_command(), env=daemon_env(joiner.dir),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for([c.watch for c in base], all_tunnelled, JOIN_TIMEOUT,
                     lambda: f"a tunnel to {joiner.encap_ip} on " + ", ".join(
                         c.name for c in base if c.name not in tunnelled_at))
        finally:
            launcher.wait(timeout=STOP_TIMEOUT)   # --detach: the launcher exits once the daemon is up
        seconds = max(tunnelled_at.values()) - zero
        self._remove(k)
        self._wait_meshed()
        return Join(seconds, ovs_start)

    def _add(self, index: int) -> Chassis:
        chassis = Chassis(index, self.dir, self.central.sb_remote)
        self.chassis[index] = chassis
        return chassis

    def _remove(self, index: int) -> None:
        """Stop a chassis, and delete its Chassis and Encap rows as a decommissioned hypervisor's are."""
        self.chassis.pop(index).stop()
        self.central.sbctl("--if-exists", "chassis-del", f"hv{index}")

    def _mesh(self, n: int) -> None:
        """Exactly chassis 1..n running, each with a tunnel to every other."""
        for index in [i for i in self.chassis if i > n]:
            self._remove(index)
        for index in range(1, n + 1):
            if index not in self.chassis:
                chassis = self._add(index)
                chassis.start_ovs()
                chassis.open_watch()
                self.central.nbctl("--may-exist", "lsp-add", LOGICAL_SWITCH, chassis.port)
                chassis.start_controller()
        self._wait_meshed()

    def _wait_meshed(self) -> None:
        running = list(self.chassis.values())

        def missing_or_extra(chassis: Chassis) -> set[str]:
            return chassis.watch.tunnel_ips() ^ {c.encap_ip for c in running if c is not chassis}

        wait_for([c.watch for c in running], lambda: not any(missing_or_extra(c) for c in running), MESH_TIMEOUT,
                 lambda: "the full mesh; wrong tunnels: " + "; ".join(
                     f"{c.name} {sorted(missing_or_extra(c))}" for c in running if missing_or_extra(c)))


def measure_joins(ks: Iterable[int], rounds: int) -> dict[int, list[Join]]:
    """`rounds` fresh joins for each K, on one central."""
    joins: dict[int, list[Join]] = {}
    with OvnLab() as lab:
        for k in ks:
            joins[k] = []
            for round_ in range(1, rounds + 1):
                joins[k].append(lab.join(k))
                print(f"  K={k} round {round_}: join {joins[k][-1].seconds * 1000:.1f} ms", flush=True)
    return joins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    # A TERM (a CI runner ending us) unwinds like Ctrl-C, so the lab still stops its daemons.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    started = time.monotonic()
    joins = measure_joins(args.k, args.rounds)
    report.table(f"OVN chassis join, ms: median (min-max, n) -- {report.machine()}",
                 ("K", "join", "joiner's OVS start (not in join)"),
                 [(k, report.spread(j.seconds * 1000 for j in js), report.spread(j.ovs_start * 1000 for j in js))
                  for k, js in joins.items()])
    report.save_csv("ovn_join", ("k", "round", "join_ms", "ovs_start_ms"),
                    [(k, i, f"{j.seconds * 1000:.1f}", f"{j.ovs_start * 1000:.1f}")
                     for k, js in joins.items() for i, j in enumerate(js, 1)])
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
