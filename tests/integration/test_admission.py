"""Rules never fail open, with real packets: a port forwards nothing until sdnctl has admitted it
(reboot, replug, migration), and rules keep holding while sdnctl is stopped (fail_mode=secure).

Counted from the receiver's side: the kernel's ICMP counters of the receiving VM's namespace.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import run_cli, xapi_call
from tests.integration.test_dataplane import boot_guest, nc_connects, ping
from tests.waiting import wait_for

pytestmark = pytest.mark.netns

A_IP, B_IP = "192.0.2.1", "192.0.2.2"
SERVICE = 7   # a TCP port on A that B's rules allow


def icmp_counter(vm_ns: str, name: str) -> int:
    """One of the namespace's ICMP counters (`InEchos`, `OutEchos`) from /proc/net/snmp."""
    lines = [line.split() for line in subprocess.run(["ip", "netns", "exec", vm_ns, "cat", "/proc/net/snmp"],
                                                     capture_output=True, text=True, check=True).stdout.splitlines()
             if line.startswith("Icmp:")]
    header, values = lines[0], lines[1]
    return int(values[header.index(name)])


def hold(seconds: float, probe, what: str) -> int:
    """Check `probe` again and again for `seconds`; fail at the first time it is false. Returns the checks made."""
    deadline, checks = time.monotonic() + seconds, 0
    while True:
        assert probe(), f"{what} stopped holding after {checks} checks"
        checks += 1
        if time.monotonic() >= deadline:
            return checks


@pytest.fixture
def two_guests(make_lab, make_daemon):
    """A on p1h1, B on p1h2 on a private network; B's rules deny the ICMP it sends; A serves TCP 7."""
    lab = make_lab(pools=1, hosts=2, dataplane=True)
    daemon = make_daemon(lab)
    run_cli("network", "create", "--name", "dp", "--pool", "pool1", "--pif-device", "eth1", "--topology", "star",
            config=lab.config_path)
    ns_a, _ = boot_guest(lab, "dp", "p1h1", A_IP)
    ns_b, vif_b = boot_guest(lab, "dp", "p1h2", B_IP)
    wait_for(lambda: ping(ns_b, A_IP), timeout=30, what="B pings A before any rule")
    server = subprocess.Popen(["ip", "netns", "exec", ns_a, "nc", "-l", "-k", str(SERVICE)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run_cli("rule", "add", "--vif", vif_b, "--deny", "--protocol", "icmp", "--direction", "from",
                config=lab.config_path)
        wait_for(lambda: not ping(ns_b, A_IP), what="deny icmp from B stops its pings")
        wait_for(lambda: nc_connects(ns_b, A_IP, SERVICE), what="B still reaches A's TCP service")
        yield lab, daemon, ns_a, ns_b, vif_b
    finally:
        server.kill()
        server.wait(timeout=5)


def _replug(lab, vif: str) -> None:
    ref = xapi_call(lab, "VIF.get_by_uuid", vif)
    xapi_call(lab, "VIF.unplug", ref)
    xapi_call(lab, "VIF.plug", ref)


def _reboot(lab, vif: str) -> None:
    vm = xapi_call(lab, "VIF.get_VM", xapi_call(lab, "VIF.get_by_uuid", vif))
    host = xapi_call(lab, "VM.get_resident_on", vm)
    xapi_call(lab, "VM.clean_shutdown", vm)
    xapi_call(lab, "VM.start_on", vm, host, False, False)


def _migrate(lab, vif: str) -> None:
    vm = xapi_call(lab, "VIF.get_VM", xapi_call(lab, "VIF.get_by_uuid", vif))
    here = xapi_call(lab, "host.get_name_label", xapi_call(lab, "VM.get_resident_on", vm))
    there = "p1h1" if here == "p1h2" else "p1h2"
    xapi_call(lab, "VM.pool_migrate", vm, xapi_call(lab, "host.get_by_name_label", there)[0], {})


def mac_of(vm_ns: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", vm_ns, "cat", "/sys/class/net/eth0/address"], capture_output=True, text=True,
        check=True).stdout.strip()


def start_flood(vm_ns: str, dst_mac: str, dst_ip: str, src_ip: str, count_file: Path) -> subprocess.Popen:
    """Raw echo requests every 2 ms from the VM (tests/integration/rawflood.py): no ARP to wait for."""
    return subprocess.Popen(["ip", "netns", "exec", vm_ns, sys.executable, "-m", "tests.integration.rawflood",
                             dst_mac, dst_ip, src_ip, str(count_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sent_so_far(count_file: Path) -> int:
    return int(count_file.read_text() or 0) if count_file.exists() else 0


def test_a_denied_flood_gets_nothing_through_a_reboot_a_replug_or_a_migration(two_guests, tmp_path):
    lab, daemon, ns_a, ns_b, vif_b = two_guests
    count_file = tmp_path / "sent"
    flood = start_flood(ns_b, mac_of(ns_a), A_IP, B_IP, count_file)
    try:
        wait_for(lambda: sent_so_far(count_file) >= 50, what="the flood is sending")
        received = icmp_counter(ns_a, "InEchos")
        for event in (_replug, _reboot, _migrate):
            sent = sent_so_far(count_file)
            event(lab, vif_b)
            # B is admitted again (its allowed traffic flows) and flooded all through the plug.
            wait_for(lambda: nc_connects(ns_b, A_IP, SERVICE), timeout=30, what=f"B reaches A after {event.__name__}")
            wait_for(lambda: sent_so_far(count_file) - sent >= 100, what=f"B flooding after {event.__name__}")
            assert flood.poll() is None, "the flood stopped"
            assert icmp_counter(ns_a, "InEchos") == received, f"denied echo requests reached A during {event.__name__}"
    finally:
        flood.kill()
        flood.wait(timeout=5)
    assert daemon.proc.poll() is None


def test_the_flood_reaches_a_receiver_without_rules(two_guests, tmp_path):
    """The probe itself works: the same raw flood, not denied (A to B, B's rules deny only what B sends)."""
    lab, daemon, ns_a, ns_b, vif_b = two_guests
    received = icmp_counter(ns_b, "InEchos")
    flood = start_flood(ns_a, mac_of(ns_b), B_IP, A_IP, tmp_path / "sent")
    try:
        wait_for(lambda: icmp_counter(ns_b, "InEchos") - received >= 20, what="raw echo requests counted at B")
    finally:
        flood.kill()
        flood.wait(timeout=5)


def _rules_hold_while_sdnctl_is_away(two_guests, seconds: float) -> None:
    lab, daemon, ns_a, ns_b, vif_b = two_guests
    bridge = xapi_call(lab, "network.get_bridge", xapi_call(lab, "network.get_by_name_label", "dp")[0])
    for host in ("p1h1", "p1h2"):
        assert lab.host(host).vsctl("get", "Bridge", bridge, "fail_mode").strip() == "secure"
    received = icmp_counter(ns_a, "InEchos")
    daemon.kill(signal.SIGKILL)
    checks = hold(seconds, lambda: not ping(ns_b, A_IP) and nc_connects(ns_b, A_IP, SERVICE),
                  "deny icmp from B, and B's TCP to A, with sdnctl stopped")
    assert checks >= 2 and icmp_counter(ns_a, "InEchos") == received
    assert ping(ns_a, B_IP) is False   # A's echo requests reach B, but B's replies are ICMP it sends: denied


def test_rules_hold_and_traffic_flows_while_sdnctl_is_stopped(two_guests):
    _rules_hold_while_sdnctl_is_away(two_guests, seconds=8)


@pytest.mark.slow
def test_rules_hold_for_a_minute_while_sdnctl_is_stopped(two_guests):
    _rules_hold_while_sdnctl_is_away(two_guests, seconds=60)


def received_by(lab, vm_uuid: str) -> int:
    """Echo requests the VM's namespaces (one per host it has run on) have received."""
    total = 0
    for host in ("p1h1", "p1h2"):
        vm_ns = lab.host(host).vm_netns(vm_uuid)
        if subprocess.run(["ip", "netns", "pids", vm_ns], capture_output=True).returncode == 0:
            total += icmp_counter(vm_ns, "InEchos")
    return total


def _boot(lab, vif: str) -> None:
    vm = xapi_call(lab, "VIF.get_VM", xapi_call(lab, "VIF.get_by_uuid", vif))
    xapi_call(lab, "VM.start_on", vm, xapi_call(lab, "host.get_by_name_label", "p1h2")[0], False, False)


def test_a_denied_flood_to_a_vm_gets_nothing_through_its_boot_a_replug_a_reboot_or_a_migration(two_guests,
                                                                                               tmp_path):
    """Issue 10: frames TO a new VIF meet its `to` rules before its port appears. B denies ICMP to itself;
    A floods B's MAC with raw echo requests while B boots, is replugged, rebooted and migrated."""
    lab, daemon, ns_a, ns_b, vif_b = two_guests
    vm_b = xapi_call(lab, "VM.get_uuid", xapi_call(lab, "VIF.get_VM", xapi_call(lab, "VIF.get_by_uuid", vif_b)))
    run_cli("rule", "add", "--vif", vif_b, "--deny", "--protocol", "icmp", "--direction", "to",
            config=lab.config_path)
    count_file = tmp_path / "sent"
    flood = start_flood(ns_a, mac_of(ns_b), B_IP, A_IP, count_file)
    try:
        def quiet() -> bool:   # B's `to` rule is in force: 100 frames sent, none received
            before, sent = received_by(lab, vm_b), sent_so_far(count_file)
            wait_for(lambda: sent_so_far(count_file) - sent >= 100, what="A flooding")
            return received_by(lab, vm_b) == before
        wait_for(quiet, timeout=30, what="deny icmp to B stops A's flood")
        received = received_by(lab, vm_b)
        xapi_call(lab, "VM.clean_shutdown", xapi_call(lab, "VM.get_by_uuid", vm_b))
        for event in (_boot, _replug, _reboot, _migrate):
            sent = sent_so_far(count_file)
            event(lab, vif_b)
            wait_for(lambda: nc_connects(ns_of(lab, vm_b), A_IP, SERVICE), timeout=30,
                     what=f"B reaches A after {event.__name__}")
            wait_for(lambda: sent_so_far(count_file) - sent >= 100, what=f"A flooding after {event.__name__}")
            assert flood.poll() is None, "the flood stopped"
            got = received_by(lab, vm_b) - received
            assert got == 0, f"{got} denied echo requests reached B during {event.__name__}"
    finally:
        flood.kill()
        flood.wait(timeout=5)
    assert daemon.proc.poll() is None


def ns_of(lab, vm_uuid: str) -> str:
    """The namespace of the VM on the host it runs on now."""
    vm = xapi_call(lab, "VM.get_by_uuid", vm_uuid)
    return lab.host(xapi_call(lab, "host.get_name_label", xapi_call(lab, "VM.get_resident_on", vm))).vm_netns(vm_uuid)
