"""FlowChannel against a real ovs-vswitchd: flows as the switch holds them, reconnects, TLS refusals.

Each test gets its own lab host (ovsdb-server + ovs-vswitchd) on a fresh loopback address with a
dummy bridge whose controller is `pssl:` as XAPI-managed hosts have it, and reads the flows back
with `ovs-ofctl`, never trusting what the channel says it did.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from os_ken.base import app_manager

from sdnctl import certs
from sdnctl.lab.ovshost import OvsHost
from sdnctl.core.model import SDNCTL_COOKIE, FlowSpec
from sdnctl.openflow import FlowChannel, OpenFlowError, runtime
from sdnctl.openflow.runtime import APP_NAME
from tests.waiting import wait_until

ROOT = Path("/run/sdnctl-ofc-test")
OF_PORT = 16653
BRIDGE = "br-of"
KEY = f"host-1/{BRIDGE}"
_hosts = itertools.count(1 + os.getpid() % 60 * 4)

TCP, UDP, ARP = (("eth_type", 0x0800), ("ip_proto", 6)), (("eth_type", 0x0800), ("ip_proto", 17)), (("eth_type", 0x0806),)
SSH_DROP = FlowSpec(200, (*TCP, ("in_port", 1), ("tcp_dst", 22)), "drop")
NET_NORMAL = FlowSpec(100, (("eth_type", 0x0800), ("ipv4_dst", ("10.0.0.0", "255.0.0.0"))), "normal")
ARP_NORMAL = FlowSpec(150, (*ARP, ("in_port", 2)), "normal")
DNS_DROP = FlowSpec(210, (*UDP, ("in_port", 3), ("udp_dst", 53)), "drop")

# The same flows as `ovs-ofctl -O OpenFlow13 dump-flows --no-stats` prints them, written by hand.
SHOWN = {
    SSH_DROP: "cookie=0x5dc1000000000000, priority=200,tcp,in_port=1,tp_dst=22 actions=drop",
    NET_NORMAL: "cookie=0x5dc1000000000000, priority=100,ip,nw_dst=10.0.0.0/8 actions=NORMAL",
    ARP_NORMAL: "cookie=0x5dc1000000000000, priority=150,arp,in_port=2 actions=NORMAL",
    DNS_DROP: "cookie=0x5dc1000000000000, priority=210,udp,in_port=3,tp_dst=53 actions=drop",
}
FOREIGN = "cookie=0x1234, priority=300,udp,in_port=7,tp_dst=67 actions=drop"


@dataclass(frozen=True)
class Pki:
    ca: Path
    client_cert: str
    client_key: str
    foreign_cert: str          # a client certificate from a CA the switches don't trust
    foreign_key: str


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    now = datetime.datetime.now(datetime.timezone.utc)
    d = tmp_path_factory.mktemp("pki")
    ca = certs.make_ca("sdnctl test CA", now)
    client = certs.issue_leaf(ca, "sdnctl", now, client=True, server=False)
    other_ca = certs.make_ca("someone else's CA", now)
    foreign = certs.issue_leaf(other_ca, "intruder", now, client=True, server=False)
    certs.write_public(d / "ca.pem", ca.cert_pem)
    for name, pair in (("client", client), ("foreign", foreign)):
        certs.write_public(d / f"{name}.crt", pair.cert_pem)
        certs.write_private(d / f"{name}.key", pair.key_pem)
    return Pki(d / "ca.pem", str(d / "client.crt"), str(d / "client.key"),
               str(d / "foreign.crt"), str(d / "foreign.key"))


@pytest.fixture
def host(pki):
    """A host whose bridge listens for a controller on pssl:, trusting the test CA; stopped by pid."""
    n = next(_hosts)
    address = f"127.77.9.{n % 250 + 1}"
    workdir = ROOT / f"h{os.getpid()}-{n}"
    shutil.rmtree(workdir, ignore_errors=True)
    ovs = OvsHost("of1", address, workdir, tag=f"ofc{n}", dataplane=False, pif_ips={})
    try:
        ovs.start()
        ovs.vsctl("set-ssl", str(ovs.key_path), str(ovs.cert_path), str(pki.ca))
        ovs.vsctl("add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=dummy",
                  "protocols=OpenFlow13", "fail_mode=standalone")
        ovs.vsctl("set-controller", BRIDGE, f"pssl:{OF_PORT}:{address}")
        yield ovs
    finally:
        ovs.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def make_channel(pki):
    """FlowChannels (one at a time: os-ken is a process singleton), always stopped."""
    channels: list[FlowChannel] = []

    def make(cert: str = pki.client_cert, key: str = pki.client_key) -> FlowChannel:
        channel = FlowChannel(cert, key)
        channels.append(channel)
        channel.start()
        return channel

    try:
        yield make
    finally:
        for channel in channels:
            channel.stop()


def sdnctl_flows(ovs: OvsHost) -> set[str]:
    """The flows the switch holds that carry sdnctl's cookie prefix, as ovs-ofctl prints them."""
    return {f for f in dump_flows(ovs) if f.startswith(f"cookie={SDNCTL_COOKIE:#x},")}


def dump_flows(ovs: OvsHost) -> set[str]:
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "--no-stats", "--no-names",
                          ovs.mgmt(BRIDGE)], capture_output=True, text=True, timeout=10, check=True).stdout
    return {line.strip() for line in out.splitlines() if line.startswith(" ")}


async def connect(channel: FlowChannel, ovs: OvsHost, key: str = KEY) -> None:
    await channel.ensure(key, ovs.address, OF_PORT, ovs.cert_pem)
    await wait_until(lambda: channel.connected(key), timeout=15,
                     what=lambda: f"{key} connected (error: {channel.error(key)})")


async def test_sync_installs_exactly_the_desired_flows_and_a_second_sync_sends_nothing(make_channel, host):
    channel = make_channel()
    await connect(channel, host)
    desired = frozenset({SSH_DROP, NET_NORMAL, ARP_NORMAL})

    assert await channel.sync(KEY, desired) == (3, 0)
    assert sdnctl_flows(host) == {SHOWN[f] for f in desired}

    assert await channel.sync(KEY, desired) == (0, 0)
    assert sdnctl_flows(host) == {SHOWN[f] for f in desired}


async def test_sync_sends_only_the_difference_and_spares_foreign_flows(make_channel, host):
    channel = make_channel()
    await connect(channel, host)
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flow", host.mgmt(BRIDGE),
                    "cookie=0x1234,priority=300,udp,in_port=7,tp_dst=67,actions=drop"], check=True, timeout=10)
    assert await channel.sync(KEY, frozenset({SSH_DROP, NET_NORMAL})) == (2, 0)

    assert await channel.sync(KEY, frozenset({NET_NORMAL, ARP_NORMAL, DNS_DROP})) == (2, 1)
    assert sdnctl_flows(host) == {SHOWN[NET_NORMAL], SHOWN[ARP_NORMAL], SHOWN[DNS_DROP]}
    assert FOREIGN in dump_flows(host)

    # Same priority and match, new action: overwritten in place (one ADD), reported as added + deleted.
    net_drop = FlowSpec(NET_NORMAL.priority, NET_NORMAL.match, "drop")
    assert await channel.sync(KEY, frozenset({net_drop, ARP_NORMAL, DNS_DROP})) == (1, 1)
    assert sdnctl_flows(host) == {SHOWN[NET_NORMAL].replace("NORMAL", "drop"), SHOWN[ARP_NORMAL], SHOWN[DNS_DROP]}

    assert await channel.sync(KEY, frozenset()) == (0, 3)
    assert sdnctl_flows(host) == set()
    assert FOREIGN in dump_flows(host)


async def test_a_flow_the_switch_refuses_fails_the_sync_with_its_error(make_channel, host):
    channel = make_channel()
    await connect(channel, host)
    no_prerequisite = FlowSpec(220, (("in_port", 1), ("tcp_dst", 22)), "drop")   # tcp_dst without ip_proto
    with pytest.raises(OpenFlowError, match="BAD_PREREQ"):
        await channel.sync(KEY, frozenset({SSH_DROP, no_prerequisite}))
    assert await channel.sync(KEY, frozenset({SSH_DROP})) == (0, 0)   # the valid one went in
    assert sdnctl_flows(host) == {SHOWN[SSH_DROP]}


async def test_after_vswitchd_restarts_the_channel_reconnects_and_on_connect_reapplies(make_channel, host):
    channel = make_channel()
    desired = frozenset({SSH_DROP, NET_NORMAL, ARP_NORMAL})
    connects: list[str] = []
    resyncs: list[asyncio.Task] = []

    def reapply(key: str) -> None:       # what the daemon does: reconnect => re-apply
        connects.append(key)
        resyncs.append(asyncio.get_running_loop().create_task(channel.sync(key, desired)))

    channel.on_connect = reapply
    await connect(channel, host)
    await wait_until(lambda: sdnctl_flows(host) == {SHOWN[f] for f in desired}, timeout=10, what="flows applied")

    host.crash()
    await wait_until(lambda: not channel.connected(KEY), timeout=10, what="the channel noticing the crash")
    assert channel.error(KEY)
    host.recover()   # the Controller row and SSL settings are in OVSDB; vswitchd lost its flows

    await wait_until(lambda: len(connects) == 2, timeout=20, what=lambda: f"a second on_connect (error: {channel.error(KEY)})")
    await wait_until(lambda: sdnctl_flows(host) == {SHOWN[f] for f in desired}, timeout=10,
                     what="flows re-applied after the restart")
    assert [await task for task in resyncs] == [(3, 0), (3, 0)]


async def test_a_switch_presenting_another_certificate_is_refused(make_channel, host):
    channel = make_channel()
    impostor = certs.make_self_signed_server("of1", [host.address], datetime.datetime.now(datetime.timezone.utc))
    connects: list[str] = []
    channel.on_connect = connects.append
    await channel.ensure(KEY, host.address, OF_PORT, impostor.cert_pem)

    error = await wait_until(lambda: channel.error(KEY), timeout=15, what="a pin error")
    assert "switch certificate does not match the pinned host certificate" in error
    assert not channel.connected(KEY) and connects == []
    with pytest.raises(OpenFlowError, match="not connected"):
        await channel.sync(KEY, frozenset({SSH_DROP}))
    assert sdnctl_flows(host) == set()

    # Re-ensuring with the right pin reconnects at once.
    await channel.ensure(KEY, host.address, OF_PORT, host.cert_pem)
    await wait_until(lambda: channel.connected(KEY), timeout=15, what=lambda: f"connected (error: {channel.error(KEY)})")
    assert connects == [KEY]


def datapath_id(ovs: OvsHost, bridge: str = BRIDGE) -> int:
    return int(ovs.vsctl("get", "Bridge", bridge, "datapath_id").strip().strip('"'), 16)


async def test_a_listener_of_another_bridge_is_refused_by_its_datapath_id(make_channel, host):
    """The port answers, the pin matches, but FEATURES_REPLY names another datapath: never programmed."""
    channel = make_channel()
    ours = datapath_id(host)
    connects: list[str] = []
    channel.on_connect = connects.append
    await channel.ensure(KEY, host.address, OF_PORT, host.cert_pem, datapath_id=ours ^ 1)

    error = await wait_until(lambda: channel.error(KEY), timeout=15, what="a datapath mismatch")
    assert f"answers as datapath {ours:016x}, not this bridge's {ours ^ 1:016x}" in error
    assert not channel.connected(KEY) and connects == []
    with pytest.raises(OpenFlowError, match="not connected"):
        await channel.sync(KEY, frozenset({SSH_DROP}))
    assert sdnctl_flows(host) == set()

    await channel.ensure(KEY, host.address, OF_PORT, host.cert_pem, datapath_id=ours)
    await wait_until(lambda: channel.connected(KEY), timeout=15, what=lambda: f"connected (error: {channel.error(KEY)})")
    assert connects == [KEY]


async def test_a_client_certificate_from_an_untrusted_ca_is_refused_by_the_switch(make_channel, host, pki):
    channel = make_channel(pki.foreign_cert, pki.foreign_key)
    connects: list[str] = []
    channel.on_connect = connects.append
    await channel.ensure(KEY, host.address, OF_PORT, host.cert_pem)

    error = await wait_until(lambda: channel.error(KEY), timeout=15, what="a refusal")
    assert "rejected our client certificate" in error
    # It stays refused through several reconnect attempts and never counts as connected.
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert not channel.connected(KEY)
        await asyncio.sleep(0.05)
    assert connects == [] and "rejected our client certificate" in channel.error(KEY)


async def test_a_closed_listener_reads_connection_refused_and_forget_stops_dialling(make_channel, host):
    channel = make_channel()
    await channel.ensure(KEY, host.address, OF_PORT + 1, host.cert_pem)
    error = await wait_until(lambda: channel.error(KEY), timeout=15, what="an error")
    assert "connection refused" in error

    await channel.forget(KEY)
    assert not channel.connected(KEY) and channel.error(KEY) is None
    with pytest.raises(OpenFlowError, match="unknown switch"):
        await channel.sync(KEY, frozenset())


async def test_when_os_ken_dies_supervision_restarts_it_and_reconnects(make_channel, host):
    channel = make_channel()
    connects: list[str] = []
    channel.on_connect = connects.append
    await connect(channel, host)
    assert await channel.sync(KEY, frozenset({SSH_DROP})) == (1, 0)

    # Stop sdnctl's os-ken app the way os-ken itself would: its event thread ends, events are lost.
    await asyncio.to_thread(app_manager.AppManager.get_instance().uninstantiate, APP_NAME)

    await wait_until(lambda: len(connects) == 2, timeout=15,
                     what=lambda: f"on_connect after the restart (error: {channel.error(KEY)})")
    assert channel.restarts == 1 and channel.connected(KEY)
    assert await channel.sync(KEY, frozenset({SSH_DROP, DNS_DROP})) == (1, 0)
    assert sdnctl_flows(host) == {SHOWN[SSH_DROP], SHOWN[DNS_DROP]}


async def test_a_switch_that_stops_answering_is_dropped_and_every_wait_is_bounded(make_channel, host, monkeypatch):
    monkeypatch.setattr(runtime, "ECHO_INTERVAL", 0.3)
    monkeypatch.setattr(runtime, "ECHO_DEADLINE", 1.5)
    channel = make_channel()
    connects: list[str] = []
    channel.on_connect = connects.append
    await connect(channel, host)
    vswitchd = host.pid("ovs-vswitchd")
    os.kill(vswitchd, signal.SIGSTOP)     # frozen: the TCP connection stays up, nothing answers
    try:
        started = time.monotonic()
        with pytest.raises(OpenFlowError, match="did not finish within 1.0s"):
            await channel.sync(KEY, frozenset({SSH_DROP}), timeout=1.0)
        assert time.monotonic() - started < 2.0
        await wait_until(lambda: not channel.connected(KEY), timeout=10, what="the silent switch dropped")
        assert "stopped answering" in channel.error(KEY)
    finally:
        os.kill(vswitchd, signal.SIGCONT)
    await wait_until(lambda: len(connects) == 2, timeout=20,
                     what=lambda: f"a reconnect once the switch answers again (error: {channel.error(KEY)})")
    assert await channel.sync(KEY, frozenset({SSH_DROP})) == (1, 0)


# --- flow drift: the switch's flow monitor reports what others change, never what sdnctl does ---------

def ofctl(ovs: OvsHost, command: str, *args: str) -> None:
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", command, ovs.mgmt(BRIDGE), *args], check=True, timeout=10)


@pytest.fixture
async def drifting(make_channel, host):
    """A connected channel whose on_drift re-syncs `desired` (what the daemon does), counting every sync."""
    channel = make_channel()
    desired = frozenset({SSH_DROP, NET_NORMAL, ARP_NORMAL})
    drifts: list[str] = []
    repairs: list[asyncio.Task] = []

    def repair(key: str) -> None:
        drifts.append(key)
        repairs.append(asyncio.get_running_loop().create_task(channel.sync(key, desired)))

    channel.on_drift = repair
    await connect(channel, host)
    assert await channel.sync(KEY, desired) == (3, 0)
    yield channel, host, desired, drifts, repairs
    for task in repairs:
        task.cancel()


async def settled(repairs: list[asyncio.Task]) -> list[tuple[int, int]]:
    return [await task for task in repairs]


async def test_sdnctl_own_syncs_are_not_drift(drifting):
    channel, host, desired, drifts, repairs = drifting
    assert await channel.sync(KEY, desired | {DNS_DROP}) == (1, 0)
    assert await channel.sync(KEY, desired) == (0, 1)
    net_drop = FlowSpec(NET_NORMAL.priority, NET_NORMAL.match, "drop")
    assert await channel.sync(KEY, (desired - {NET_NORMAL}) | {net_drop}) == (1, 1)
    assert await channel.sync(KEY, desired) == (1, 1)
    # A marker: a change by hand is reported after anything the switch said about the syncs above.
    ofctl(host, "del-flows", "--strict", "cookie=0x5dc1000000000000/-1,priority=150,arp,in_port=2")
    await wait_until(lambda: channel.drift_reports[KEY] >= 1, timeout=10, what="the marker's drift report")
    await wait_until(lambda: len(drifts) == 1 and repairs[0].done(), timeout=10, what="the marker repaired")
    assert channel.drift_reports[KEY] == 1 and drifts == [KEY]
    assert await settled(repairs) == [(1, 0)]
    assert sdnctl_flows(host) == {SHOWN[f] for f in desired}


@pytest.mark.parametrize("change,repair", [
    (("del-flows", "cookie=0x5dc1000000000000/-1,tcp,in_port=1,tp_dst=22"), (1, 0)),
    (("del-flows",), (3, 0)),
    (("mod-flows", "ip,nw_dst=10.0.0.0/8,actions=drop"), (1, 1)),
    (("add-flow", "cookie=0x5dc1000000000000,priority=123,udp,tp_dst=9,actions=drop"), (0, 1)),
    (("add-flow", "cookie=0x99,priority=200,tcp,in_port=1,tp_dst=22,actions=NORMAL"), (1, 0)),
], ids=["del-one", "del-all", "mod-action", "add-with-our-cookie", "foreign-add-replacing-ours"])
async def test_a_change_by_hand_fires_on_drift_once_and_the_repair_sends_only_the_difference(drifting, change, repair):
    channel, host, desired, drifts, repairs = drifting
    ofctl(host, *change)
    await wait_until(lambda: repairs and repairs[0].done(), timeout=10, what="on_drift and its repair")
    assert await settled(repairs) == [repair]
    assert sdnctl_flows(host) == {SHOWN[f] for f in desired}
    # Bounded: the repair's own flow-mods are not drift. A second change is the marker.
    ofctl(host, "del-flows", "--strict", "cookie=0x5dc1000000000000/-1,priority=150,arp,in_port=2")
    await wait_until(lambda: len(repairs) == 2 and repairs[1].done(), timeout=10, what="the marker repaired")
    assert len(drifts) == 2 and await settled(repairs) == [repair, (1, 0)]
    assert sdnctl_flows(host) == {SHOWN[f] for f in desired}


async def test_foreign_changes_elsewhere_are_not_drift(drifting):
    channel, host, desired, drifts, repairs = drifting
    ofctl(host, "add-flow", "table=5,cookie=0x77,priority=5,actions=drop")       # not a table sdnctl writes
    ofctl(host, "del-flows", "table=5")
    ofctl(host, "add-flow", "cookie=0x1234,priority=300,udp,in_port=7,tp_dst=67,actions=drop")
    ofctl(host, "del-flows", "cookie=0x1234/-1")    # a foreign flow deleted: not ours, not drift
    # The foreign ADD in table 0 might have replaced one of ours: one report, nothing to repair.
    await wait_until(lambda: repairs and repairs[0].done(), timeout=10, what="the foreign add's check")
    assert channel.drift_reports[KEY] == 1 and await settled(repairs) == [(0, 0)]
    ofctl(host, "del-flows", "--strict", "cookie=0x5dc1000000000000/-1,priority=150,arp,in_port=2")
    await wait_until(lambda: len(repairs) == 2 and repairs[1].done(), timeout=10, what="the marker repaired")
    assert channel.drift_reports[KEY] == 2 and await settled(repairs) == [(0, 0), (1, 0)]


async def test_the_monitor_is_asked_for_again_after_a_reconnect(drifting):
    channel, host, desired, drifts, repairs = drifting
    host.crash()
    await wait_until(lambda: not channel.connected(KEY), timeout=10, what="the channel noticing the crash")
    host.recover()
    await connect(channel, host)
    assert await channel.sync(KEY, desired) == (3, 0)     # what on_connect does in the daemon
    ofctl(host, "del-flows")
    await wait_until(lambda: repairs and repairs[0].done(), timeout=10, what="drift on the new connection")
    assert await settled(repairs) == [(3, 0)] and sdnctl_flows(host) == {SHOWN[f] for f in desired}


async def test_a_switch_refusing_the_monitor_is_polled_instead(make_channel, host, monkeypatch):
    monkeypatch.setattr(runtime.codec, "MONITOR_FLAGS", 0)    # OVS refuses a monitor with no event flags
    monkeypatch.setattr(runtime, "POLL_INTERVAL", 0.5)
    channel = make_channel()
    drifts: list[str] = []
    channel.on_drift = drifts.append
    await connect(channel, host)
    await wait_until(lambda: len(drifts) >= 2, timeout=10, what="periodic drift checks")
    assert set(drifts) == {KEY}
