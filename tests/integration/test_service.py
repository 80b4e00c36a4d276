"""The daemon as a systemd service, against a real NOTIFY_SOCKET datagram socket and a real lab.

- READY=1 comes once every pool has synced and every host has been tried, with a STATUS= line.
- WATCHDOG=1 pings arrive at half WATCHDOG_USEC, and stop while the process is stopped.
- SIGHUP reloads: a pool added is watched without dropping the other pool's OVSDB connections;
  a bad config, or a change that takes a restart, is refused in the log and the old one stays.
- SIGTERM sends STOPPING=1 and exits 0.
- The unit passes `systemd-analyze verify`, scores at most 2.0 exposure, and the daemon builds tunnels
  and flows under MemoryDenyWriteExecute (the kernel's PR_SET_MDWE, which systemd applies too).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import run_cli, tunnel_ports
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "sdnctl.service"

WATCHDOG_USEC = 1_000_000     # pings every 0.5 s


class NotifySocket:
    """systemd's side of sd_notify: a datagram socket that collects what the daemon sends."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages: list[dict[str, str]] = []

    def collect(self) -> list[dict[str, str]]:
        """Everything received so far (reads what is queued, without blocking long)."""
        while True:
            try:
                data = self.sock.recv(4096)
            except (socket.timeout, BlockingIOError):
                return self.messages
            self.messages.append(dict(line.split("=", 1) for line in data.decode().splitlines()))

    def count(self, key: str) -> int:
        return sum(key in m for m in self.collect())

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def service_env(notify: NotifySocket) -> dict[str, str]:
    return {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)}


def test_ready_status_and_watchdog_follow_the_daemon(make_lab, make_daemon, notify):
    lab = make_lab(pools=1, hosts=3)
    daemon = make_daemon(lab, env=service_env(notify))
    ready = wait_for(lambda: next((m for m in notify.collect() if m.get("READY") == "1"), None), timeout=60,
                     what="READY=1")
    # Ready means every host was tried: the status written by then shows each one connected.
    assert all(h["connected"] for h in daemon.status()["hosts"].values())
    assert len(daemon.status()["hosts"]) == 3
    assert ready["STATUS"].startswith("1 pools, 3 hosts, 0 networks")
    assert sum(m.get("READY") == "1" for m in notify.collect()) == 1       # said once
    for uuid, host in daemon.status()["hosts"].items():   # log lines name a host by name and uuid
        assert f"host {host['name']} ({uuid}): OVSDB connected" in daemon.log_text()
    pings = notify.count("WATCHDOG")
    wait_for(lambda: notify.count("WATCHDOG") >= pings + 3, timeout=10, what="three more watchdog pings")

    daemon.proc.send_signal(signal.SIGSTOP)     # a stopped daemon pings no more: systemd would restart it
    try:
        time.sleep(0.3)                          # let a ping already in flight land
        stopped = notify.count("WATCHDOG")
        time.sleep(1.5)                          # three ping intervals with the process stopped
        assert notify.count("WATCHDOG") == stopped
    finally:
        daemon.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: notify.count("WATCHDOG") > stopped, timeout=10, what="pings again after SIGCONT")

    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=30) == 0
    assert any(m.get("STOPPING") == "1" for m in notify.collect())


def _without_pool(config: str, pool: str) -> str:
    """The config text without the [[pool]] table named `pool`."""
    tables = re.split(r"\n(?=\[\[pool\]\])", config)
    return "\n".join(t for t in tables if f'name = "{pool}"' not in t)


def test_sighup_adds_a_pool_without_dropping_the_others_connections(make_lab, make_daemon, notify):
    lab = make_lab(pools=2, hosts=2)
    full = lab.config_path.read_text()
    lab.config_path.write_text(_without_pool(full, "pool2"))
    daemon = make_daemon(lab, env=service_env(notify))
    wait_for(lambda: any(m.get("READY") == "1" for m in notify.collect()), timeout=60, what="READY=1")
    hosts = daemon.status()["hosts"]
    assert [p["name"] for p in daemon.status()["pools"]] == ["pool1"] and len(hosts) == 2
    assert all(h["connects"] == 1 for h in hosts.values())

    lab.config_path.write_text(full)
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(daemon.status()["hosts"]) == 4 and all(h["connected"] for h in daemon.status()["hosts"].values()),
             timeout=60, what="pool2's hosts connected after the reload")
    assert sorted(p["name"] for p in daemon.status()["pools"]) == ["pool1", "pool2"]
    assert {uuid: daemon.status()["hosts"][uuid]["connects"] for uuid in hosts} == {uuid: 1 for uuid in hosts}
    messages = notify.collect()
    reloading = next(i for i, m in enumerate(messages) if m.get("RELOADING") == "1")
    assert "MONOTONIC_USEC" in messages[reloading]
    wait_for(lambda: any(m.get("READY") == "1" for m in notify.collect()[reloading:]), timeout=30,
             what="READY=1 after the reload")
    assert "reloaded" in daemon.log_text() and "pool pool2 added" in daemon.log_text()

    lab.config_path.write_text(_without_pool(full, "pool1"))    # and a pool removed
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: [p["name"] for p in daemon.status()["pools"]] == ["pool2"] and len(daemon.status()["hosts"]) == 2,
             timeout=60, what="pool1 and its hosts gone from the status")


def test_a_bad_reload_is_refused_and_the_running_config_stays(make_lab, make_daemon, notify):
    lab = make_lab(pools=1, hosts=2)
    good = lab.config_path.read_text()
    daemon = make_daemon(lab, env=service_env(notify))
    wait_for(lambda: any(m.get("READY") == "1" for m in notify.collect()), timeout=60, what="READY=1")

    lab.config_path.write_text(good.replace('topology = "star"', 'topology = "ring"'))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in daemon.log_text(), timeout=30, what="the refusal in the log")
    assert re.search(r"reload refused.*sdnctl\.toml:\d+: defaults\.topology", daemon.log_text())

    lab.config_path.write_text(good.replace("[defaults]", "ovsdb_port = 6641\n\n[defaults]"))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "ovsdb_port changed: that takes a restart" in daemon.log_text(), timeout=30,
             what="the restart-only refusal in the log")

    assert daemon.proc.poll() is None
    status = daemon.status()
    assert [p["name"] for p in status["pools"]] == ["pool1"]
    assert all(h["connected"] and h["connects"] == 1 and h["target"].endswith(":6640")
               for h in status["hosts"].values())


def test_the_unit_verifies_and_is_hardened(tmp_path):
    unit = tmp_path / "sdnctl.service"    # as installed: ExecStart names a real sdnctl
    unit.write_text(UNIT.read_text().replace("/opt/sdnctl/.venv/bin/sdnctl", str(Path(sys.executable).parent / "sdnctl")))
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)], capture_output=True,
                              text=True, timeout=60)
    score = float(re.search(r"Overall exposure level for sdnctl.service: ([\d.]+)", security.stdout).group(1))
    assert score <= 2.0, security.stdout      # docs/operations.md quotes it
    for line in ("Type=notify", "WatchdogSec=", "ExecReload=", "Restart=on-failure", "MemoryDenyWriteExecute=yes"):
        assert line in UNIT.read_text()


def test_the_daemon_works_under_memory_deny_write_execute(make_lab, make_daemon, notify):
    lab = make_lab(pools=1, hosts=2)
    daemon = make_daemon(lab, env=service_env(notify), prefix=(sys.executable, str(Path(__file__).parent / "mdwe.py")))
    wait_for(lambda: any(m.get("READY") == "1" for m in notify.collect()) or daemon.proc.poll() is not None,
             timeout=60, what="READY=1 (or an exit)")
    if daemon.proc.poll() == 2:
        pytest.skip("this kernel has no PR_SET_MDWE")
    assert daemon.proc.poll() is None, daemon.log_text()[-2000:]
    run_cli("network", "create", "--name", "mdwe", "--pool", "pool1", "--pif-device", "eth0", config=lab.config_path)
    wait_for(lambda: all(len(tunnel_ports(lab, h)) == 1 for h in lab.pools["pool1"].hosts), timeout=60,
             what="the star's tunnels")
    wait_for(lambda: all(h["flows_added"] >= 1 for h in daemon.status()["hosts"].values()), timeout=60,
             what="flows pushed over OpenFlow (os-ken, TLS) under MDWE")
