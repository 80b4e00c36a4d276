"""The lab as a whole: the CLI contract, teardown, and real packets between namespaced hosts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdnctl.errors import LabError
from sdnctl.lab import netns
from sdnctl.lab.lab import Lab
from tests.waiting import wait_for

ROOT = Path("/run/sdnctl-test-lab")


def sdnctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sdnctl.cli", *args], capture_output=True, text=True, timeout=180)


def lab_processes(tag: str) -> list[str]:
    """Command lines of live OVS daemons whose files live under this lab's directory."""
    out = subprocess.run(["pgrep", "-a", "-f", f"{ROOT}/{tag}/"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "ovsdb-server" in line or "ovs-vswitchd" in line]


def test_lab_cli_up_status_down_leaves_nothing():
    octet = 61
    tag = f"sdnlab{octet}"
    common = ["--octet", str(octet), "--root", str(ROOT)]
    try:
        started = time.monotonic()
        up = sdnctl("lab", "up", "--pools", "2", "--hosts", "3", "--netns", *common)
        elapsed = time.monotonic() - started
        assert up.returncode == 0, up.stderr
        assert "6 hosts ready" in up.stdout
        print(f"lab up 2x3 --netns: {elapsed:.1f}s")
        again = sdnctl("lab", "up", *common)
        assert again.returncode == 1 and "already running" in again.stderr
        status = json.loads(sdnctl("lab", "status", "--json", *common).stdout)
        assert Path(status["config"]).exists()
        assert [p["name"] for p in status["pools"]] == ["pool1", "pool2"]
        for pool in status["pools"]:
            assert set(pool) >= {"name", "url", "username", "password", "master", "hosts"}
            assert pool["master"] == pool["hosts"][0]["name"]
            for host in pool["hosts"]:
                assert set(host) >= {"uuid", "name", "ovsdb", "netns"}
                assert host["ovsdb"].startswith("unix:") and host["netns"] == f"{tag}-{host['name']}"
        assert len(lab_processes(tag)) == 12
        assert sum(ns.startswith(f"{tag}-") for ns in netns.list_namespaces()) == 7  # 6 hosts + the segment
    finally:
        down = sdnctl("lab", "down", *common)
    assert down.returncode == 0, down.stderr
    assert lab_processes(tag) == []
    assert not any(ns.startswith(f"{tag}-") for ns in netns.list_namespaces())
    assert not (ROOT / tag).exists()
    repeat = sdnctl("lab", "down", *common)
    assert repeat.returncode == 0 and "nothing to do" in repeat.stdout
    missing = sdnctl("lab", "status", *common)
    assert missing.returncode == 1 and "no lab is running" in missing.stderr


def test_failed_lab_start_is_torn_down():
    """A lab that cannot start (port taken) removes everything it had started."""
    import socket

    octet = 62
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((f"127.{octet}.1.2", 443))
    blocker.listen()
    try:
        lab = Lab(pools=1, hosts=2, octet=octet, root=ROOT)
        with pytest.raises(LabError, match="cannot listen on 127.62.1.2"):
            lab.up()
    finally:
        blocker.close()
    assert lab_processes(f"sdnlab{octet}") == []
    assert not (ROOT / f"sdnlab{octet}").exists()


def _ping(vm_ns: str, address: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", vm_ns, "ping", "-c1", "-W1", address],
                          capture_output=True).returncode == 0


@pytest.mark.netns
def test_vms_ping_only_once_gre_ports_join_their_hosts():
    lab = Lab(pools=1, hosts=2, dataplane=True, octet=63, root=ROOT)
    lab.up()
    try:
        sim = lab.pools["pool1"].sim
        import XenAPI

        state = lab.status()["pools"][0]
        session = XenAPI.Session(state["url"], ignore_ssl=True)
        session.login_with_password("root", state["password"], "1.0", "test")
        api = session.xenapi
        network = api.network.create({"name_label": "priv", "name_description": "", "MTU": "1400",
                                      "other_config": {}, "tags": []})
        hosts = {api.host.get_name_label(h): h for h in api.host.get_all()}
        vms = {}
        for index, host_name in enumerate(["p1h1", "p1h2"], start=1):
            vm = sim.create_vm(f"vm{index}", f"192.0.2.{index}/24")
            api.VIF.create({"device": "0", "network": network, "VM": vm, "MAC": f"02:00:00:00:00:0{index}",
                            "other_config": {}, "MTU": "1400"})
            api.VM.start_on(vm, hosts[host_name], False, False)
            vms[host_name] = lab.host(host_name).vm_netns(api.VM.get_uuid(vm))
        bridge = api.network.get_bridge(network)
        session.xenapi.session.logout()
        assert not _ping(vms["p1h1"], "192.0.2.2")
        for local, remote in (("p1h1", "p1h2"), ("p1h2", "p1h1")):
            lab.host(local).vsctl("add-port", bridge, "gre0", "--", "set", "Interface", "gre0", "type=gre",
                                  f"options:remote_ip={lab.host(remote).pif_ips['eth1']}", "options:key=77")
        wait_for(lambda: _ping(vms["p1h1"], "192.0.2.2"), timeout=15, what="ping over hand-made GRE")
    finally:
        lab.down()
    assert not any(ns.startswith("sdnlab63-") for ns in netns.list_namespaces())


def test_lab_cli_scenario_verbs():
    common = ["--octet", "64", "--root", str(ROOT)]
    try:
        assert sdnctl("lab", "up", "--pools", "1", "--hosts", "2", *common).returncode == 0
        assert "p1h3: join done" in sdnctl("lab", "host", "join", "pool1", *common).stdout
        assert len(lab_processes("sdnlab64")) == 6
        assert sdnctl("lab", "host", "crash", "p1h2", *common).returncode == 0
        assert len(lab_processes("sdnlab64")) == 4
        assert sdnctl("lab", "host", "recover", "p1h2", *common).returncode == 0
        assert len(lab_processes("sdnlab64")) == 6
        created = sdnctl("lab", "vm", "--name", "g1", "--host", "p1h1", "--network",
                         "Pool-wide network associated with eth0", "--mac", "02:00:00:00:00:42", *common)
        assert created.returncode == 0, created.stderr
        ports = subprocess.run(["ovs-vsctl", f"--db=unix:{ROOT}/sdnlab64/p1h1/db.sock", "--columns=name,external_ids",
                                "list", "Interface"], capture_output=True, text=True).stdout
        assert 'attached-mac="02:00:00:00:00:42"' in ports
        missing = sdnctl("lab", "host", "crash", "p9h9", *common)
        assert missing.returncode == 1 and "no host p9h9" in missing.stderr
    finally:
        sdnctl("lab", "down", *common)
    assert lab_processes("sdnlab64") == []


def test_lab_cli_verbs_follow_the_master():
    """A silently crashed master, an emergency master change, then `vm` and `recover` through the CLI."""
    common = ["--octet", "66", "--root", str(ROOT)]

    def status() -> dict:
        return json.loads(sdnctl("lab", "status", "--json", *common).stdout)["pools"][0]

    try:
        assert sdnctl("lab", "up", "--pools", "1", "--hosts", "3", *common).returncode == 0
        crashed = sdnctl("lab", "host", "crash", "--silent", "p1h1", *common)
        assert crashed.returncode == 0 and "crash --silent done" in crashed.stdout, crashed.stderr
        assert [h["live"] for h in status()["hosts"]] == [False, True, True]
        moved = sdnctl("lab", "host", "emergency-transition-to-master", "p1h2", *common)
        assert moved.returncode == 0, moved.stderr
        assert status()["master"] == "p1h2" and status()["url"].startswith("https://127.66.1.2")
        created = sdnctl("lab", "vm", "--name", "g1", "--host", "p1h3", "--network",
                         "Pool-wide network associated with eth0", *common)
        assert created.returncode == 0 and "running on p1h3" in created.stdout, created.stderr
        recovered = sdnctl("lab", "host", "recover", "p1h1", *common)
        assert recovered.returncode == 0, recovered.stderr
        assert status()["master"] == "p1h2" and all(h["live"] for h in status()["hosts"])
    finally:
        sdnctl("lab", "down", *common)
    assert lab_processes("sdnlab66") == []
