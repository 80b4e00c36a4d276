"""A lab of many OVSDB-only hosts with sdnctl running on it, and the two floors sdnctl is measured against.

- `ScaleLab`: `Lab(vswitchd=False)` (one real ovsdb-server per host) plus `sdnctl run` as a child
  process, stopped by pid. Convergence is read from the daemon's status: its hosts' port counters
  and `last_commit_at`, the daemon's own clock at its last OVSDB commit.
- `dump_tunnels`: the tunnel rows sdnctl wrote, per host, as the floors must write them again.
- `script_floor`: the same rows with one `ovs-vsctl` per host, every host in parallel.
- `idl_floor`: the same rows from pre-connected python-ovs IDL clients, one per host, committing at once.
Both floors talk to each ovsdb-server over its unix socket: no TLS, the cheapest path there is.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")   # python-ovs's poller imports it if present

import ovs.db.idl  # noqa: E402
import ovs.poller  # noqa: E402

from sdnctl import networks
from sdnctl.config import load_config
from sdnctl.lab.lab import Lab

ROOT = Path("/run/sdnctl-scale-bench")
SCHEMA = Path(__file__).resolve().parent.parent / "sdnctl" / "lab" / "schemas" / "vswitch-2.5.3.ovsschema"
POLL = 0.1


class BenchError(Exception):
    """The measurement itself broke (a timeout, a daemon that died): not a slow number."""


def wait(probe, timeout: float, what: str, interval: float = POLL):
    """Poll `probe` until truthy; BenchError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Tunnel:
    """One tunnel port as sdnctl wrote it: the rows a floor writes again."""
    bridge: str
    name: str
    type: str
    options: dict[str, str]
    iface_ids: dict[str, str]
    port_ids: dict[str, str]


class ScaleLab:
    """`pools` x `hosts` OVSDB-only lab hosts and a daemon; a context manager that stops everything."""

    def __init__(self, pools: int, hosts: int, *, octet: int, extra_config: str = ""):
        self.lab = Lab(pools=pools, hosts=hosts, octet=octet, root=ROOT, vswitchd=False)
        self.extra_config = extra_config
        self.daemon: subprocess.Popen | None = None
        self.lab_up_s = 0.0
        self.create_s = 0.0      # the last `network create` call alone (XAPI work, before the daemon's)

    def __enter__(self) -> ScaleLab:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # `timeout` too gets the lab torn down
        started = time.monotonic()
        self.lab.up()
        self.lab_up_s = time.monotonic() - started
        if self.extra_config:
            text = self.lab.config_path.read_text()
            self.lab.config_path.write_text(text.replace("[defaults]", "[defaults]\n" + self.extra_config, 1))
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stop_daemon()
        finally:   # a daemon that would not stop must not leave 200 ovsdb-servers behind
            log = self.lab.dir / "daemon.log"
            if log.exists():
                shutil.copy(log, ROOT / f"daemon-{self.lab.tag}.log")   # kept for a look once the lab is gone
            self.lab.down()

    @property
    def host_names(self) -> list[str]:
        return [name for pool in self.lab.pools.values() for name in pool.hosts]

    # --- the daemon ---------------------------------------------------------------------
    def start_daemon(self, *, timeout: float = 120.0) -> float:
        """Start `sdnctl run`; seconds until every host's OVSDB is connected."""
        self.status_path.unlink(missing_ok=True)
        started = time.monotonic()
        self.daemon = subprocess.Popen([sys.executable, "-m", "sdnctl.cli", "run", "--config",
                                        str(self.lab.config_path)],
                                       stdout=subprocess.DEVNULL, stderr=open(self.lab.dir / "daemon.log", "ab"))
        count = len(self.host_names)
        wait(lambda: self._alive() and sum(h["connected"] for h in self.status().get("hosts", {}).values()) == count,
             timeout, "every host connected")
        return time.monotonic() - started

    def stop_daemon(self) -> None:
        if self.daemon is None:
            return
        self.daemon.send_signal(signal.SIGTERM)
        try:
            self.daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait(timeout=10)
        self.daemon = None

    def _alive(self) -> bool:
        if self.daemon is not None and self.daemon.poll() is not None:
            raise BenchError(f"the daemon exited with {self.daemon.returncode}; see {self.lab.dir / 'daemon.log'}")
        return True

    @property
    def status_path(self) -> Path:
        return self.lab.dir / "controller" / "state" / "status.json"

    def status(self) -> dict:
        try:
            return json.loads(self.status_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}     # not written yet, or caught mid-rename

    def counters(self) -> tuple[int, int, int]:
        """(transactions, ports added, ports deleted) summed over the daemon's hosts."""
        hosts = self.status().get("hosts", {}).values()
        return (sum(h["transactions"] for h in hosts), sum(h["ports_added"] for h in hosts),
                sum(h["ports_deleted"] for h in hosts))

    def pid(self) -> int:
        assert self.daemon is not None
        return self.daemon.pid

    # --- scenario -------------------------------------------------------------------------
    def create_network(self, name: str, topology: str, *, encapsulation: str = "gre",
                       center: str | None = None) -> float:
        """`network create` across every pool, as the CLI does it; returns the wall-clock time it started."""
        pools = list(self.lab.pools)
        request = networks.CreateRequest(name=name, pools=tuple(pools), pif_device="eth0", topology=topology,
                                         encapsulation=encapsulation, preferred_center=center)
        with networks.Pools(load_config(self.lab.config_path), pools) as session:
            started = time.time()
            networks.create(session, request, lambda text: None)
            self.create_s = time.time() - started
        return started

    def wait_ports(self, added: int, deleted: int = 0, *, timeout: float = 300.0) -> tuple[int, int, int]:
        """Wait until the daemon counts at least `added`/`deleted` ports, then for quiet (no new commit for 1 s)."""
        wait(lambda: self._alive() and (c := self.counters())[1] >= added and c[2] >= deleted, timeout,
             f"{added} ports added and {deleted} deleted", interval=0.2)
        settled = self.status().get("last_commit_at")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = self.status().get("last_commit_at")
            if now == settled:
                return self.counters()
            settled = now
        raise BenchError("the daemon never went quiet")

    def last_commit_at(self) -> float:
        return self.status()["last_commit_at"]


# --- the floors -------------------------------------------------------------------------
def _transact(sock: str, *ops: dict) -> list:
    out = subprocess.run(["ovsdb-client", "transact", sock, json.dumps(["Open_vSwitch", *ops])],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def dump_tunnels(lab: Lab, network_marker: str = "sdnctl-network") -> dict[str, list[Tunnel]]:
    """host name -> the tunnel ports sdnctl owns there, as rows."""
    result = {}
    for pool in lab.pools.values():
        for name, host in pool.hosts.items():
            bridges, ports, ifaces = _transact(
                host.ovsdb_unix,
                {"op": "select", "table": "Bridge", "where": [], "columns": ["name", "ports"]},
                {"op": "select", "table": "Port", "where": [], "columns": ["_uuid", "name", "external_ids"]},
                {"op": "select", "table": "Interface", "where": [],
                 "columns": ["name", "type", "options", "external_ids"]})
            owner = {}
            for bridge in bridges["rows"]:
                members = bridge["ports"][1] if bridge["ports"][0] == "set" else [bridge["ports"]]
                owner |= {uuid: bridge["name"] for _, uuid in members}
            by_name = {row["name"]: row for row in ifaces["rows"]}
            result[name] = [
                Tunnel(owner[port["_uuid"][1]], port["name"], by_name[port["name"]]["type"],
                       dict(by_name[port["name"]]["options"][1]), dict(by_name[port["name"]]["external_ids"][1]),
                       dict(port["external_ids"][1]))
                for port in ports["rows"] if network_marker in dict(port["external_ids"][1])]
    return result


def delete_tunnels(lab: Lab, tunnels: dict[str, list[Tunnel]]) -> None:
    """Remove the rows again (untimed), one ovs-vsctl per host."""
    procs = [subprocess.Popen(["ovs-vsctl", f"--db={lab.host(name).ovsdb_unix}", "--timeout=30", "--no-wait",
                               *[a for t in rows for a in ("--", "--if-exists", "del-port", t.bridge, t.name)]])
             for name, rows in tunnels.items() if rows]
    for proc in procs:
        if proc.wait(timeout=60) != 0:
            raise BenchError("ovs-vsctl del-port failed")


def _vsctl_args(tunnels: list[Tunnel]) -> list[str]:
    args = []
    for t in tunnels:
        args += ["--", "add-port", t.bridge, t.name, "--", "set", "Interface", t.name, f"type={t.type}",
                 *[f'options:{k}="{v}"' for k, v in t.options.items()],
                 *[f'external_ids:{k}="{v}"' for k, v in t.iface_ids.items()],
                 "--", "set", "Port", t.name, *[f'external_ids:{k}="{v}"' for k, v in t.port_ids.items()]]
    return args


def script_floor(lab: Lab, tunnels: dict[str, list[Tunnel]]) -> float:
    """Seconds for one `ovs-vsctl` per host, all started at once, to write every host's rows."""
    commands = [["ovs-vsctl", f"--db={lab.host(name).ovsdb_unix}", "--timeout=60", "--no-wait", *_vsctl_args(rows)]
                for name, rows in tunnels.items() if rows]
    started = time.monotonic()
    procs = [subprocess.Popen(cmd) for cmd in commands]
    failed = [proc.wait(timeout=120) for proc in procs]
    elapsed = time.monotonic() - started
    if any(failed):
        raise BenchError("an ovs-vsctl of the script floor failed")
    return elapsed


def idl_floor(lab: Lab, tunnels: dict[str, list[Tunnel]], *, timeout: float = 120.0) -> float:
    """Seconds for pre-connected IDL clients (one per host, connected and synced before the clock starts)
    to commit every host's rows, all transactions in flight at once."""
    idls = {name: ovs.db.idl.Idl(lab.host(name).ovsdb_unix, _schema()) for name, rows in tunnels.items() if rows}
    try:
        deadline = time.monotonic() + timeout
        while True:
            for idl in idls.values():
                idl.run()
            if all(idl.change_seqno for idl in idls.values()):   # each has its first full copy
                break
            _block(idls.values(), deadline)
        started = time.monotonic()
        txns = {}
        for name, idl in idls.items():
            txn = ovs.db.idl.Transaction(idl)
            bridges = {row.name: row for row in idl.tables["Bridge"].rows.values()}
            for t in tunnels[name]:
                iface = txn.insert(idl.tables["Interface"])
                iface.name, iface.type, iface.options, iface.external_ids = t.name, t.type, t.options, t.iface_ids
                port = txn.insert(idl.tables["Port"])
                port.name, port.interfaces, port.external_ids = t.name, [iface], t.port_ids
                bridges[t.bridge].addvalue("ports", port.uuid)
            txns[name] = txn
        pending = dict(txns)
        while True:
            for name, txn in list(pending.items()):
                status = txn.commit()        # the first call sends it; the IDL's run() reads the reply
                if status == ovs.db.idl.Transaction.INCOMPLETE:
                    idls[name].run()
                    status = txn.commit()
                if status == ovs.db.idl.Transaction.INCOMPLETE:
                    continue
                if status != ovs.db.idl.Transaction.SUCCESS:
                    raise BenchError(f"IDL floor: {name}: {status} {txn.get_error()}")
                del pending[name]
            if not pending:
                return time.monotonic() - started
            _block([idls[name] for name in pending], deadline)
    finally:
        for idl in idls.values():
            idl.close()


def _schema() -> ovs.db.idl.SchemaHelper:
    """The columns the floor writes (a helper serves one Idl: the Idl consumes it)."""
    helper = ovs.db.idl.SchemaHelper(str(SCHEMA))
    helper.register_columns("Bridge", ["name", "ports"])
    helper.register_columns("Port", ["name", "interfaces", "external_ids"])
    helper.register_columns("Interface", ["name", "type", "options", "external_ids"])
    return helper


def _block(idls, deadline: float) -> None:
    """Sleep until one of the IDLs has something to read (at most 100 ms)."""
    if time.monotonic() > deadline:
        raise BenchError("IDL floor: timed out")
    poller = ovs.poller.Poller()
    for idl in idls:
        idl.wait(poller)
    poller.timer_wait(100)
    poller.block()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for pid {pid}")
