"""BFD tunnel health and the dead-center verdict: pure values in, pure values out."""

from __future__ import annotations

import pytest

from sdnctl.core.health import (
    DOWN, MISSING, UNKNOWN, UP, CenterWatch, TunnelHealth, center_verdict, tunnel_health, tunnels_active,
    watch_centers,
)
from sdnctl.core.model import Endpoint, ObservedPort, PrivateNetwork, TunnelSpec, tunnel_port_name
from sdnctl.core.topology import bfd_settings, desired_tunnels, elect_center, plan_ports
from sdnctl.core.model import ClusterSnapshot

BFD_ON = (("enable", "true"), ("min_rx", "300"), ("min_tx", "300"))


def bfd(state: str, forwarding: str, flaps: int, remote: str = "up") -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"state": state, "forwarding": forwarding, "flap_count": str(flaps), "remote_state": remote,
                         "diagnostic": "No Diagnostic"}.items()))


def port(*, bfd_cfg=BFD_ON, status=(), ofport=3, error=None, carrier=None, remote="h-2", network="net",
         name=None) -> ObservedPort:
    return ObservedPort(name or tunnel_port_name(network, remote), "xapi1", network, remote, "gre",
                        (("key", "1"), ("remote_ip", "10.0.0.2")), ofport=ofport, error=error, bfd=bfd_cfg,
                        bfd_status=status, carrier=carrier)


@pytest.mark.parametrize("observed, state", [
    (None, MISSING),
    (port(status=bfd("up", "true", 1)), UP),
    (port(status=bfd("up", "true", 3)), UP),
    (port(status=bfd("down", "false", 2, remote="down")), DOWN),
    (port(status=bfd("init", "false", 4)), DOWN),
    (port(status=bfd("down", "false", 0, remote="down")), UNKNOWN),     # never up: the lab's dummy datapath
    (port(status=()), UNKNOWN),                                          # BFD has not reported
    (port(bfd_cfg=(), status=()), UNKNOWN),                              # BFD off
    (port(bfd_cfg=(), status=bfd("down", "false", 2)), UNKNOWN),         # off: an old bfd_status says nothing
    (port(bfd_cfg=(("enable", "false"),), status=bfd("up", "true", 1)), UNKNOWN),
    (port(ofport=-1, status=bfd("up", "true", 1)), DOWN),               # the row failed
    (port(ofport=None), DOWN),
    (port(error="could not add network device", status=()), DOWN),
    (port(carrier="down", status=bfd("up", "true", 1)), DOWN),
    (port(carrier="up", status=bfd("up", "true", 1)), UP),
    (port(status=(("state", "up"),)), UP),                               # no forwarding key: the state decides
], ids=["missing", "up", "up-after-flaps", "down", "init-after-up", "never-up", "not-reported", "bfd-off",
        "bfd-off-stale-status", "bfd-disabled", "ofport-failed", "no-ofport", "error", "no-carrier", "carrier-up",
        "state-only"])
def test_tunnel_health(observed, state):
    health = tunnel_health(observed)
    assert health.state == state
    assert health.state != "ok"
    assert (health.reason == "") == (state == UP)


def test_health_carries_the_bfd_figures_and_never_the_psk():
    seen = port(status=bfd("down", "false", 2, remote="down"))
    seen = ObservedPort(**{**seen.__dict__, "options": seen.options + (("psk", "s3cret"),)})
    health = tunnel_health(seen)
    assert health.bfd == {"state": "down", "forwarding": False, "remote_state": "down", "diagnostic": "No Diagnostic"}
    assert health.flap_count == 2
    assert "s3cret" not in repr(health)


UP_H, DOWN_H = TunnelHealth(UP), TunnelHealth(DOWN, "BFD down", bfd_state="down", flap_count=2)
UNKNOWN_H, MISSING_H = TunnelHealth(UNKNOWN, "BFD is off"), TunnelHealth(MISSING, "no port")
FAILED_H = TunnelHealth(DOWN, "no ofport", failed=True)


@pytest.mark.parametrize("healths, active", [
    ([], False),
    ([UP_H, UP_H], True),
    ([UNKNOWN_H, UNKNOWN_H], True),          # BFD cannot tell: today's meaning (rows exist with an ofport)
    ([DOWN_H], False),
    ([DOWN_H, DOWN_H], False),               # every tunnel down by BFD: the host is cut off
    ([DOWN_H, UP_H], True),                  # one peer gone: the host is still on the network
    ([DOWN_H, UNKNOWN_H], True),
    ([UP_H, MISSING_H], False),
    ([UP_H, FAILED_H], False),
], ids=["none", "all-up", "all-unknown", "one-down", "all-down", "partly-down", "down-and-unknown", "missing",
        "failed-row"])
def test_tunnel_status_active(healths, active):
    assert tunnels_active(healths) is active


# --- plan_ports: the bfd map is modified in place ----------------------------------------------

def spec(bfd_map=BFD_ON) -> TunnelSpec:
    return TunnelSpec(tunnel_port_name("net", "h-2"), "xapi1", "net", "h-2", "gre", "10.0.0.2", 1, bfd=bfd_map)


@pytest.mark.parametrize("observed_bfd, wanted", [
    ((), BFD_ON),                                                     # an old port gets BFD
    ((("enable", "true"), ("min_rx", "1000"), ("min_tx", "100")), BFD_ON),   # changed intervals
    (BFD_ON, ()),                                                     # bfd = false in the config
], ids=["enable", "intervals", "disable"])
def test_a_bfd_change_modifies_the_port_in_place(observed_bfd, wanted):
    plan = plan_ports([spec(wanted)], [port(bfd_cfg=observed_bfd)], bridges=["xapi1"])
    assert plan.modify == (spec(wanted),) and not plan.add and not plan.delete


def test_the_same_bfd_map_changes_nothing():
    assert plan_ports([spec()], [port(status=bfd("down", "false", 9))], bridges=["xapi1"]).empty


def test_bfd_settings_and_desired_tunnels_carry_them():
    assert bfd_settings(False, 300, 300) == ()
    assert bfd_settings(True, 250, 400) == (("enable", "true"), ("min_rx", "250"), ("min_tx", "400"))
    net = star(("h-1", "h-2"), center="h-1")
    desired = desired_tunnels(ClusterSnapshot((net,)), bfd=BFD_ON)
    assert {s.bfd for specs in desired.tunnels.values() for s in specs} == {BFD_ON}


# --- dead centers ------------------------------------------------------------------------------

def star(hosts, center, preferred=None, net="net") -> PrivateNetwork:
    return PrivateNetwork(id=net, name=net, encapsulation="gre", vni=1, topology="star", center=center,
                          preferred_center=preferred, endpoints=tuple(
                              Endpoint(h, "pool-a", "xapi1", f"10.0.0.{i}", True) for i, h in enumerate(hosts, 1)))


NET = star(("h-1", "h-2", "h-3", "h-4"), center="h-1")
UP_S, DOWN_S, NEVER_S = bfd("up", "true", 1), bfd("down", "false", 2, remote="down"), bfd("down", "false", 0)


def seen(**by_spoke) -> dict[str, dict[str, ObservedPort]]:
    """The spokes' ports to the center h-1, each with a bfd_status (or None: the host is not connected)."""
    return {host: {p.name: p for p in [port(remote="h-1", status=status)]}
            for host, status in by_spoke.items() if status is not None}


@pytest.mark.parametrize("observed, dead", [
    (seen(**{"h-2": DOWN_S, "h-3": DOWN_S, "h-4": DOWN_S}), True),
    (seen(**{"h-2": DOWN_S, "h-3": DOWN_S, "h-4": UP_S}), False),    # one spoke still reaches it: a link died
    (seen(**{"h-2": DOWN_S, "h-3": DOWN_S, "h-4": NEVER_S}), True),  # never-up says nothing either way
    (seen(**{"h-2": DOWN_S, "h-3": DOWN_S}), True),                  # h-4's switch is not connected
    (seen(**{"h-2": DOWN_S, "h-3": NEVER_S, "h-4": NEVER_S}), False),  # one spoke: cannot tell which end died
    (seen(**{"h-2": NEVER_S, "h-3": NEVER_S, "h-4": NEVER_S}), False),
    (seen(**{"h-2": UP_S, "h-3": UP_S, "h-4": UP_S}), False),
], ids=["all-down", "one-up", "down-and-never-up", "one-unseen", "one-spoke-down", "never-up", "all-up"])
def test_center_verdict(observed, dead):
    assert center_verdict(NET, "h-1", observed).dead is dead


def test_spokes_own_faults_say_nothing_of_the_center():
    """No ofport (the spoke's vswitchd is down or refused the port) or no carrier on its own underlay is the
    spoke's trouble: a star of 200 OVSDB-only hosts must not fail over round and round on it."""
    faulty = {"h-2": port(remote="h-1", ofport=None), "h-3": port(remote="h-1", error="could not open"),
              "h-4": port(remote="h-1", status=DOWN_S, carrier="down")}
    observed = {host: {p.name: p} for host, p in faulty.items()}
    assert all(tunnel_health(p).state == DOWN for p in faulty.values())
    assert center_verdict(NET, "h-1", observed).dead is False


def test_with_one_spoke_the_center_stays_and_it_says_why():
    net = star(("h-1", "h-2"), center="h-1")
    verdict = center_verdict(net, "h-1", seen(**{"h-2": DOWN_S}))
    assert not verdict.dead and "look the same" in verdict.note
    watch = watch_centers([net], {"net": "h-1"}, seen(**{"h-2": DOWN_S}), CenterWatch(), now=0.0, hold=0.0)
    assert watch.dead == frozenset() and watch.notes["net"] == verdict.note


ALL_DOWN = seen(**{"h-2": DOWN_S, "h-3": DOWN_S, "h-4": DOWN_S})
ALL_UP = seen(**{"h-2": UP_S, "h-3": UP_S, "h-4": UP_S})
HOLD = 5.0


def run(looks: list[tuple[float, dict]], hold: float = HOLD) -> list[CenterWatch]:
    watch, history = CenterWatch(), []
    for now, observed in looks:
        watch = watch_centers([NET], {"net": "h-1"}, observed, watch, now, hold)
        history.append(watch)
    return history


def test_a_center_dead_for_the_hold_time_is_dead():
    history = run([(100.0, ALL_DOWN), (102.0, ALL_DOWN), (104.9, ALL_DOWN), (105.0, ALL_DOWN)])
    assert [w.dead for w in history[:3]] == [frozenset()] * 3
    assert history[0].since == {("net", "h-1"): 100.0} and history[0].next_due(HOLD) == 105.0
    assert history[3].dead == {("net", "h-1")} and history[3].avoid() == {"net": frozenset({"h-1"})}
    assert history[3].since == {} and history[3].next_due(HOLD) is None


def test_a_flapping_link_restarts_the_hold_and_never_fails_over():
    looks = []
    for cycle in range(10):   # down 4 s, up for one look, again and again: 40 s of mostly down
        start = 100.0 + cycle * 4.5
        looks += [(start, ALL_DOWN), (start + 2.0, ALL_DOWN), (start + 4.0, ALL_DOWN), (start + 4.2, ALL_UP)]
    assert all(not w.dead for w in run(looks))


def test_one_spoke_seeing_the_center_up_restarts_the_hold():
    one_up = seen(**{"h-2": DOWN_S, "h-3": DOWN_S, "h-4": UP_S})
    history = run([(100.0, ALL_DOWN), (103.0, one_up), (104.0, ALL_DOWN), (108.0, ALL_DOWN), (109.0, ALL_DOWN)])
    assert [bool(w.dead) for w in history] == [False, False, False, False, True]


def test_a_dead_host_is_forgotten_once_a_peer_sees_it_up_or_it_leaves():
    dead = CenterWatch(dead=frozenset({("net", "h-1")}))
    new_center = {"net": "h-2"}
    to_old = {"h-2": {p.name: p for p in [port(remote="h-1", status=NEVER_S)]}}
    assert watch_centers([NET], new_center, to_old, dead, 200.0, HOLD).dead == {("net", "h-1")}
    back = {"h-2": {p.name: p for p in [port(remote="h-1", status=UP_S)]}}
    assert watch_centers([NET], new_center, back, dead, 201.0, HOLD).dead == frozenset()
    gone = star(("h-2", "h-3", "h-4"), center="h-2")
    assert watch_centers([gone], new_center, to_old, dead, 201.0, HOLD).dead == frozenset()


def test_center_election_skips_hosts_dead_by_bfd_unless_none_is_left():
    assert elect_center(NET) == "h-1"
    assert elect_center(NET, frozenset({"h-1"})) == "h-2"
    assert elect_center(star(("h-1", "h-2"), center=None, preferred="h-2"), frozenset({"h-2"})) == "h-1"
    assert elect_center(star(("h-1",), center="h-1"), frozenset({"h-1"})) == "h-1"
    desired = desired_tunnels(ClusterSnapshot((NET,)), avoid={"net": frozenset({"h-1"})})
    assert desired.centers == {"net": "h-2"} and desired.avoided == {"net": frozenset({"h-1"})}


def test_a_mesh_has_no_center_to_judge():
    mesh = PrivateNetwork(id="net", name="net", encapsulation="gre", vni=1, topology="mesh",
                          endpoints=NET.endpoints)
    assert watch_centers([mesh], {"net": None}, ALL_DOWN, CenterWatch(), 0.0, 0.0) == CenterWatch()
