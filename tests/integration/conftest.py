"""Fixtures: a lab (real OVS, XAPI simulator) and the sdnctl daemon as a real process."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import XenAPI

from sdnctl.lab.lab import Lab

ROOT = Path("/run/sdnctl-test")
OCTETS = range(100, 250)
_next = itertools.count(os.getpid())


def _claim_octet() -> tuple[int, Path]:
    """A lab octet no other live test process holds (an O_EXCL claim file naming our pid)."""
    ROOT.mkdir(parents=True, exist_ok=True)
    for _ in range(len(OCTETS)):
        octet = OCTETS[next(_next) % len(OCTETS)]
        claim = ROOT / f"octet-{octet}.claim"
        try:
            fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                holder = int(claim.read_text() or 0)
                os.kill(holder, 0)
                continue  # held by a live process
            except (ValueError, ProcessLookupError, FileNotFoundError):
                claim.unlink(missing_ok=True)  # its holder is gone
                continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return octet, claim
    raise RuntimeError("no free lab octet: too many concurrent test runs")


@pytest.fixture
def make_lab():
    """Start labs on loopback addresses no concurrent run uses; each is torn down, even when the test fails."""
    labs: list[tuple[Lab, Path]] = []

    def start(pools: int = 1, hosts: int = 3, dataplane: bool = False, **options) -> Lab:
        """`options` go to Lab: xcpng, ha, ha_delay."""
        octet, claim = _claim_octet()
        lab = Lab(pools=pools, hosts=hosts, dataplane=dataplane, octet=octet, root=ROOT, **options)
        labs.append((lab, claim))
        lab.up()
        return lab

    yield start
    for lab, claim in labs:
        lab.down()
        claim.unlink(missing_ok=True)


class Daemon:
    """`sdnctl run` as a child process, stopped by pid."""

    def __init__(self, config: Path, log: Path):
        self.config = config
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> None:
        """`env`: extra environment variables (e.g. systemd's NOTIFY_SOCKET); `prefix`: a wrapper command."""
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen([*prefix, sys.executable, "-m", "sdnctl.cli", "run", "--config", str(self.config),
                                          "--log-level", "debug"], stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, **(env or {})})

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def status(self) -> dict:
        path = self.state_dir / "status.json"
        return json.loads(path.read_text()) if path.exists() else {}

    @property
    def state_dir(self) -> Path:
        for line in self.config.read_text().splitlines():
            if line.startswith("state_dir"):
                return Path(line.split("=", 1)[1].strip().strip('"'))
        raise AssertionError("no state_dir in config")

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def make_daemon(tmp_path):
    daemons: list[Daemon] = []

    def start(lab: Lab, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> Daemon:
        daemon = Daemon(lab.config_path, tmp_path / f"daemon{len(daemons)}.log")
        daemons.append(daemon)
        daemon.start(env, prefix)
        return daemon

    yield start
    for daemon in daemons:
        daemon.kill(signal.SIGTERM)


def xapi(lab: Lab, pool: str = "pool1") -> XenAPI.Session:
    """A logged-in XenAPI session to a lab pool (over the wire, like any client)."""
    state = lab.status()
    entry = next(p for p in state["pools"] if p["name"] == pool)
    session = XenAPI.Session(entry["url"], ignore_ssl=True)
    session.login_with_password(entry["username"], entry["password"], "1.0", "sdnctl-tests")
    return session


def xapi_call(lab: Lab, method: str, *args):
    """One XAPI call `Class.method(*args)` on pool1, in a session of its own."""
    session = xapi(lab)
    try:
        target = session.xenapi
        for part in method.split("."):
            target = getattr(target, part)
        return target(*args)
    finally:
        session.xenapi.session.logout()


def tunnel_ports(lab: Lab, host_name: str) -> dict[str, dict]:
    """The sdnctl-owned tunnel ports on a host, read back from its real OVSDB with ovs-vsctl."""
    host = lab.host(host_name)
    out = host.vsctl("--format=json", "--columns=name,type,options,external_ids,ofport", "list", "Interface")
    table = json.loads(out)
    ports = {}
    for row in table["data"]:
        record = {col: _ovs_value(val) for col, val in zip(table["headings"], row)}
        if "sdnctl-network" in record["external_ids"]:
            ports[record["name"]] = record
    return ports


def _ovs_value(value):
    if isinstance(value, list) and value and value[0] == "map":
        return {k: v for k, v in value[1]}
    if isinstance(value, list) and value and value[0] == "set":
        return [_ovs_value(v) for v in value[1]]
    return value


def run_cli(*args: str, config: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "sdnctl.cli", *args, "--config", str(config)],
                            capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"sdnctl {' '.join(args)} failed ({result.returncode}): {result.stderr}{result.stdout}")
    return result
