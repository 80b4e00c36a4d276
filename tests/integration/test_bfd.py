"""BFD tunnel health with real packets: an underlay link taken down inside one host's namespace.

The issue's targets: within 3 s the status shows exactly that host's tunnels down (and no other
tunnel ever down meanwhile), within 3 s of bringing the link back they are up; tunnel.status says
active=false for that host in XAPI. In a star, a center whose spokes all see it BFD-down for the
hold time (dead_center_hold, 5 s by default) is failed over; a shorter flap moves nothing.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.integration.conftest import xapi
from tests.integration.test_private_networks import create_network, interface_uuids
from tests.waiting import wait_for

pytestmark = pytest.mark.netns

DETECTION_TARGET = 3.0
# BFD comes up with 1 s intervals (RFC 5880: at most one packet a second while not up), then a poll
# sequence moves both ends to bfd_min_rx_ms/bfd_min_tx_ms; until then a dead path takes up to 3 s to see.
# The steady state, which the 3 s target is about, is reached once every tunnel has been up that long.
SETTLED = 3.0   # the bound, down and up
HOSTS = ["p1h1", "p1h2", "p1h3", "p1h4"]


def set_underlay(lab, host_name: str, state: str) -> None:
    """eth1, the host's underlay NIC (a veth on the lab's segment, under xenbr1), up or down in its namespace."""
    subprocess.run(["ip", "-n", lab.host(host_name).netns, "link", "set", "eth1", state], check=True)


def tunnels(daemon, net_id: str) -> dict[tuple[str, str], str]:
    """(host name, remote name) -> health, for the network's desired tunnels in the daemon's status."""
    status = daemon.status()
    network = next((n for n in status.get("networks", []) if n["id"] == net_id), None)
    if network is None:
        return {}
    return {(h["name"], t["remote_name"]): t["health"] for h in network["hosts"] for t in h["tunnels"]
            if t["desired"]}


def involving(host: str, health: dict[tuple[str, str], str]) -> set[tuple[str, str]]:
    return {pair for pair in health if host in pair}


def tunnel_actives(lab) -> dict[str, str]:
    """host name -> tunnel.status active, read from XAPI over the wire."""
    session = xapi(lab)
    api = session.xenapi
    try:
        result = {}
        for record in api.tunnel.get_all_records().values():
            host = api.PIF.get_host(record["access_PIF"])
            result[api.host.get_name_label(host)] = record["status"].get("active")
        return result
    finally:
        api.session.logout()


def center(daemon, net_id: str) -> str | None:
    return next((n["center_name"] for n in daemon.status().get("networks", []) if n["id"] == net_id), None)


def all_up(daemon, net_id: str, count: int):
    health = tunnels(daemon, net_id)
    return len(health) == count and all(h == "up" for h in health.values()) and health


def settled(daemon, net_id: str, count: int, *, timeout: float = 60) -> None:
    """Every tunnel up by BFD, and still up SETTLED seconds later without a break (BFD's fast intervals apply)."""
    since = None

    def steady():
        nonlocal since
        if not all_up(daemon, net_id, count):
            since = None
            return False
        since = since or time.monotonic()
        return time.monotonic() - since >= SETTLED
    wait_for(steady, timeout=timeout, what=f"all {count} tunnels up by BFD for {SETTLED}s")


def watch(daemon, net_id: str, done, *, timeout: float, forbidden=lambda pair, state: False) -> float:
    """Poll status.json until done(health); fail at once if `forbidden(pair, state)` holds for any tunnel.
    Returns the seconds it took."""
    started = time.monotonic()
    last: dict = {}
    first: dict = {}
    while time.monotonic() - started < timeout:
        last = tunnels(daemon, net_id)
        for pair, state in last.items():
            first.setdefault((pair, state), round(time.monotonic() - started, 2))
        bad = {pair: state for pair, state in last.items() if forbidden(pair, state)}
        assert not bad, f"tunnels shown in a state they must not be in: {bad}"
        if last and done(last):
            print("first seen (s):", {f"{h}->{r} {state}": t for ((h, r), state), t in sorted(
                first.items(), key=lambda kv: kv[1]) if t})
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s; last seen: {last}")


def test_an_underlay_down_shows_exactly_that_hosts_tunnels_down_and_back_up(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=4, dataplane=True)
    daemon = make_daemon(lab)
    net_id = create_network(lab, "bfd", device="eth1", topology="mesh")
    settled(daemon, net_id, 12)
    wait_for(lambda: set(tunnel_actives(lab).values()) == {"true"}, what="tunnel.status active everywhere")
    victim = "p1h3"
    cut = involving(victim, tunnels(daemon, net_id))
    assert len(cut) == 6

    set_underlay(lab, victim, "down")
    try:
        down = watch(daemon, net_id, lambda h: all(h[p] == "down" for p in cut), timeout=2 * DETECTION_TARGET,
                     forbidden=lambda pair, state: pair not in cut and state != "up")
        health = tunnels(daemon, net_id)
        assert {p for p, s in health.items() if s == "down"} == cut
        wait_for(lambda: tunnel_actives(lab) == {"p1h1": "true", "p1h2": "true", "p1h3": "false", "p1h4": "true"}
                 and True, what="tunnel.status active=false for the cut host only")
    finally:
        set_underlay(lab, victim, "up")
    up = watch(daemon, net_id, lambda h: all(s == "up" for s in h.values()), timeout=2 * DETECTION_TARGET,
               forbidden=lambda pair, state: pair not in cut and state != "up")
    wait_for(lambda: set(tunnel_actives(lab).values()) == {"true"}, what="tunnel.status active again")
    print(f"\nBFD detection: down shown in status after {down:.2f}s, up again after {up:.2f}s")
    assert down < DETECTION_TARGET, f"down took {down:.2f}s"
    assert up < DETECTION_TARGET, f"up took {up:.2f}s"


def port_stats(daemon) -> tuple[int, int]:
    hosts = daemon.status()["hosts"].values()
    return sum(h["ports_added"] for h in hosts), sum(h["ports_deleted"] for h in hosts)


def test_a_dead_center_by_bfd_fails_over_and_a_short_flap_moves_nothing(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=4, dataplane=True)
    daemon = make_daemon(lab)
    net_id = create_network(lab, "star", device="eth1", topology="star", center="p1h2")
    wait_for(lambda: center(daemon, net_id) == "p1h2", what="p1h2 the star's center")
    settled(daemon, net_id, 6)
    before = port_stats(daemon)

    # A flap shorter than the hold time: the spokes see the center down, then up; nothing moves.
    set_underlay(lab, "p1h2", "down")
    try:
        watch(daemon, net_id, lambda h: all(s == "down" for s in h.values()), timeout=2 * DETECTION_TARGET)
    finally:
        set_underlay(lab, "p1h2", "up")
    watch(daemon, net_id, lambda h: all(s == "up" for s in h.values()), timeout=2 * DETECTION_TARGET)
    assert center(daemon, net_id) == "p1h2"
    assert port_stats(daemon) == before, "a flap shorter than the hold time changed ports"

    # Down for good (while XAPI still calls p1h2 live): a failover to a spoke, as for a crash.
    uuids = interface_uuids(lab, HOSTS)
    set_underlay(lab, "p1h2", "down")
    try:
        new = wait_for(lambda: center(daemon, net_id) not in (None, "p1h2") and center(daemon, net_id),
                       timeout=30, what="a new center after the hold time")
        assert new in ("p1h1", "p1h3", "p1h4")
        net = next(n for n in daemon.status()["networks"] if n["id"] == net_id)
        assert net["dead_by_bfd"] == ["p1h2"]
        # Only the tunnels of the dead center change: 2 of its own and the 2 other spokes' ones to it go,
        # the new center gets 2 to those spokes and they 2 to it; the new center <-> old center pair stays.
        # The center is shown as soon as it is decided; the hosts' counters follow their commits.
        wait_for(lambda: all(now - then >= 4 for now, then in zip(port_stats(daemon), before)),
                 what="the failover's ports added and deleted")
        added, deleted = port_stats(daemon)
        assert (added - before[0], deleted - before[1]) == (4, 4)
        after = interface_uuids(lab, HOSTS)
        kept = {key for key in uuids if key in after and after[key] == uuids[key]}
        assert {host for host, _ in kept} == {"p1h2", new} and len(kept) == 2
    finally:
        set_underlay(lab, "p1h2", "up")
    wait_for(lambda: all_up(daemon, net_id, 6) and not next(
        n for n in daemon.status()["networks"] if n["id"] == net_id)["dead_by_bfd"], timeout=30,
        what="every tunnel up and p1h2 no longer dead once its link is back")
    assert center(daemon, net_id) == new, "the center is sticky: it does not move back"
