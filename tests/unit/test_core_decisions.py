"""The decisions the daemon used to make in its shell, now pure: inventory, host plans, XAPI write-backs, status."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace

import pytest

from sdnctl.core.hostplan import (
    ObservedHost, World, bridge_fail_modes, controlled_bridges, frozen_networks, plan_host,
)
from sdnctl.core.inventory import build_inventory, host_live
from sdnctl.core.model import ObservedPort, VifPort
from sdnctl.core.status import Facts, HostView, PoolView, mqtt_states, network_section, network_states, status_document
from sdnctl.core.topology import desired_tunnels
from sdnctl.core.writeback import (
    PlugPif, RecordCenter, SetTunnelStatus, SyncCertificates, center_records, certificate_syncs, pif_plugs,
    tunnel_statuses,
)
from tests.unit.test_topology import H1, H2, H3, NET, PoolBuilder, config

OTHER_NET = "6f1c0c2e-8d0b-4d5e-9a57-3f2d1c0b0aff"


def world(records: dict, *, complete: bool = True, psks=None) -> World:
    inventory = build_inventory(records)
    return World(inventory=inventory, desired=desired_tunnels(inventory.snapshot, psks), complete=complete)


def pool(*hosts: str, attached: bool = True, live=True, **settings) -> dict:
    b = PoolBuilder("pool-a")
    net = b.network(config(**settings), bridge="xapi1")
    for uuid in hosts:
        b.join(net, b.host(uuid, live=live), attached=attached)
    return {"pool-a": b.records}


def observed(*ports: ObservedPort, controllers=None, vifs=(), bridges=("xapi1", "xenbr1")) -> ObservedHost:
    return ObservedHost(address="10.0.0.1", bridges=frozenset(bridges), ports=tuple(ports),
                        controllers=dict(controllers or {}), rstp_bridges=frozenset(), vif_ports=tuple(vifs))


def port_to(remote: str, network: str = NET, ofport: int | None = 1) -> ObservedPort:
    return ObservedPort(name=f"sdn-{remote[-4:]}", bridge="xapi1", network_id=network, remote_host=remote, type="gre",
                        options=(("key", "100"), ("remote_ip", "10.0.0.9")), ofport=ofport)


# --- inventory ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("live", "expected"), [(True, True), ("true", True), (False, False), ("false", False),
                                                (None, False)], ids=["bool", "xmlrpc-string", "dead", "dead-string",
                                                                     "no-metrics"])
def test_liveness_is_decided_once_for_hosts_and_endpoints(live, expected):
    records = pool(H1, live=live)["pool-a"]
    host = next(iter(records["host"].values()))
    inventory = build_inventory({"pool-a": records})
    assert host_live(records, host) is expected
    assert inventory.hosts[H1].live is expected
    assert inventory.networks[0].endpoints[0].eligible is expected


def test_inventory_types_tunnels_access_pifs_and_network_objects():
    inventory = build_inventory(pool(H1, H2, attached=False))
    assert {t.host_uuid for t in inventory.tunnels} == {H1, H2}
    assert all(t.network_id == NET and t.pool == "pool-a" for t in inventory.tunnels)
    assert {(p.host_uuid, p.plugged, p.pluggable) for p in inventory.access_pifs} == {(H1, False, True),
                                                                                     (H2, False, True)}
    assert [o.network_id for o in inventory.network_objects] == [NET]
    assert inventory.host_name(H1) == "host-1" and inventory.host_name("gone") == "gone"


def test_a_malformed_rule_set_is_an_error_of_its_object_only():
    records = pool(H1)["pool-a"]
    records["vif"] = {"r1": {"uuid": "vif-1", "other_config": {"sdnctl:of-rules": "not json"}},
                      "r2": {"uuid": "vif-2", "other_config": {"sdnctl:of-rules": json.dumps(
                          [json.dumps({"allow": False, "protocol": "icmp", "direction": "both"})])}}}
    inventory = build_inventory({"pool-a": records})
    assert set(inventory.rule_errors) == {"vif-1"} and "VIF vif-1" in inventory.rule_errors["vif-1"]
    assert set(inventory.vif_rules) == {"vif-2"}


# --- host plans -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("complete", "expected"), [(True, set()), (False, {OTHER_NET})],
                         ids=["complete", "partial-picture"])
def test_while_a_pool_is_unknown_every_network_a_host_carries_is_frozen(complete, expected):
    w = world(pool(H1, H2), complete=complete)
    seen = observed(port_to(H3, network=OTHER_NET))
    assert frozen_networks(w, H1, seen) == expected
    plan = plan_host(H1, w, seen, openflow_port=6653)
    assert [p.network_id for p in plan.ports.delete] == ([] if expected else [OTHER_NET])


def test_a_mangled_private_network_uuid_freezes_the_ports_on_its_bridge_instead_of_deleting_them():
    w = world(pool(H1, H2, private_network_uuid="not-a-uuid"))       # the ports still carry the old, good uuid
    seen = observed(port_to(H2, network=NET))
    assert w.inventory.networks[0].error and "is not a uuid" in w.inventory.networks[0].error
    assert NET in frozen_networks(w, H1, seen)
    assert plan_host(H1, w, seen, openflow_port=6653).ports.delete == ()
    elsewhere = observed(dataclasses.replace(port_to(H2, network=NET), bridge="xenbr1"))
    assert NET not in frozen_networks(w, H1, elsewhere)          # a port of it on another bridge is not shielded


def test_controlled_bridges_are_private_ruled_and_already_controlled_ones_present_here():
    records = pool(H1)["pool-a"]
    records["vif"] = {"r": {"uuid": "vif-1", "other_config": {"sdnctl:of-rules": json.dumps(
        [json.dumps({"allow": False, "protocol": "tcp", "port": 22, "direction": "to"})])}}}
    vifs = [VifPort("vif-1", "n", "xenbr1", 4, "aa:bb:cc:00:00:01"), VifPort("vif-2", "n", "xenbr2", 5, "aa:bb:cc:00:00:02")]
    seen = observed(controllers={"xenbr0": "pssl:6654:10.0.0.1", "gone": "pssl:6655:10.0.0.1"}, vifs=vifs,
                    bridges=("xapi1", "xenbr0", "xenbr1", "xenbr2"))
    w = world({"pool-a": records})
    assert controlled_bridges(H1, w, seen) == {"xapi1", "xenbr0", "xenbr1"}
    plan = plan_host(H1, w, seen, openflow_port=6653)
    assert dict(plan.ports.set_controllers) == {"xapi1": "pssl:6653:10.0.0.1", "xenbr1": "pssl:6655:10.0.0.1"}
    assert set(plan.flows) == {"xenbr0", "gone"}   # flows go to bridges that have a controller row now


# --- XAPI write-backs -----------------------------------------------------------------------------

@pytest.mark.parametrize(("complete", "live", "plugs"), [(True, True, 1), (False, True, 0), (True, False, 0)],
                         ids=["plug", "partial-picture", "dead-host"])
def test_access_pifs_are_plugged_on_live_hosts_once_the_picture_is_complete(complete, live, plugs):
    w = world(pool(H1, attached=False, live=live), complete=complete)
    actions = pif_plugs(w)
    assert len(actions) == plugs and all(isinstance(a, PlugPif) and a.host_name == "host-1" for a in actions)


@pytest.mark.parametrize(("up", "active"), [((H2, H3), True), ((H2,), False), ((), False)],
                         ids=["all-up", "one-missing", "none"])
def test_tunnel_status_is_active_when_every_desired_port_is_up(up, active):
    w = world(pool(H1, H2, H3, topology="mesh"))
    names = {s.remote_host: s.name for s in w.desired.tunnels[H1]}
    ports = [ObservedPort(names[r], "xapi1", NET, r, "gre", (), ofport=3) for r in up]
    (action,) = tunnel_statuses(w, H1, ports)
    assert isinstance(action, SetTunnelStatus) and action.status == {"active": str(active).lower(), "key": "100"}


def test_a_tunnel_status_already_in_xapi_is_not_written_again():
    records = pool(H1, topology="mesh")
    for tunnel in records["pool-a"]["tunnel"].values():
        tunnel["status"] = {"active": "false", "key": "100"}
    assert tunnel_statuses(world(records), H1, []) == []


def test_a_new_star_center_is_recorded_in_every_pool_object_and_a_recorded_one_is_kept():
    w = world(pool(H1, H2))
    (record,) = center_records(w)
    assert isinstance(record, RecordCenter) and record.center == H1 and record.previous is None
    assert [pool for pool, _ in record.targets] == ["pool-a"]
    assert center_records(world(pool(H1, H2, center=H1))) == []
    assert center_records(world(pool(H1, H2, topology="mesh"))) == []


def _two_pools(center_a: str | None, center_b: str | None, *, live_b: bool = True, preferred=None) -> dict:
    """One star over two pools (H1, H2 in pool-a; H3 in pool-b), each object with its own recorded center."""
    records = {}
    for name, hosts, center, live in (("pool-a", (H1, H2), center_a, True), ("pool-b", (H3,), center_b, live_b)):
        b = PoolBuilder(name)
        net = b.network(config(center=center, preferred_center=preferred), bridge="xapi1")
        for uuid in hosts:
            b.join(net, b.host(uuid, live=live))
        records[name] = b.records
    return records


@pytest.mark.parametrize(("center_a", "center_b", "live_b", "preferred", "center", "targets"), [
    (H1, H3, True, None, H1, ["pool-b"]),
    (H3, H1, True, None, H1, ["pool-a"]),
    (H2, H3, False, None, H2, ["pool-b"]),
    (H2, H1, True, H2, H2, ["pool-b"]),
    (H2, H2, True, None, H2, []),
    (None, H2, True, None, H2, ["pool-a"]),
], ids=["lowest-eligible-wins", "either-pool", "the-dead-ones-record-loses", "the-preferred-one-wins", "agreed",
        "one-pool-unrecorded"])
def test_pools_that_disagree_on_the_center_are_brought_to_one(center_a, center_b, live_b, preferred, center, targets):
    w = world(_two_pools(center_a, center_b, live_b=live_b, preferred=preferred))
    assert w.desired.centers[NET] == center
    records = center_records(w)
    assert [pool for r in records for pool, _ in r.targets] == targets
    assert all(r.center == center for r in records)


@pytest.mark.parametrize(("before", "now", "trusted", "expected"), [
    ({"p": {H1}}, {"p": {H1, H2}}, {"p"}, ["p"]),
    ({"p": {H1, H2}}, {"p": {H1}}, {"p"}, []),
    ({}, {"p": {H1}}, {"p"}, []),
    ({"p": {H1}}, {"p": {H1, H2}}, set(), []),
], ids=["join", "eject", "first-sight", "untrusted"])
def test_certificates_are_synced_when_a_trusted_pool_gains_a_host(before, now, trusted, expected):
    actions = certificate_syncs({k: frozenset(v) for k, v in before.items()},
                                {k: frozenset(v) for k, v in now.items()}, trusted)
    assert actions == [SyncCertificates(p) for p in expected]


# --- status ---------------------------------------------------------------------------------------

def test_status_and_mqtt_states_never_carry_a_psk():
    w = world(pool(H1, H2, encrypted="true"), psks={NET: "s3cret-psk"})
    spec = next(iter(w.desired.tunnels[H1]))
    port = ObservedPort(spec.name, "xapi1", NET, spec.remote_host, "gre", tuple(sorted(spec.options.items())), 2,
                        bfd=(("enable", "true"),), bfd_status=(("flap_count", "1"), ("forwarding", "true"),
                                                               ("state", "up")))
    view = HostView(name="host-1", target="10.0.0.1:6640", connected=True, error=None, openflow={},
                    openflow_synced=True, stats={"transactions": 1}, ports=(port,))
    networks = network_section(w, {H1: view.ports, H2: ()})     # H2 connected, without the port
    document = status_document(w, Facts(hosts={H1: view}, pools=(PoolView("pool-a", True, "u", 1, None),)), 1.0,
                               networks)
    text = json.dumps(document) + json.dumps(mqtt_states(document)) + json.dumps(network_states(networks))
    assert "s3cret-psk" not in text
    hosts = network_states(networks)[f"network/{NET}"]["hosts"]
    assert hosts["host-1"] == {"eligible": True, "tunnels_up": 1, "tunnels_down": 0, "tunnels_unknown": 0,
                               "tunnels_missing": 0}
    assert hosts["host-2"] == {"eligible": True, "tunnels_up": 0, "tunnels_down": 0, "tunnels_unknown": 0,
                               "tunnels_missing": 1}
    unseen = network_states(network_section(w, {H1: view.ports}))[f"network/{NET}"]["hosts"]["host-2"]
    assert (unseen["tunnels_missing"], unseen["tunnels_unknown"]) == (0, 1)   # not connected: nothing is known


# --- fail_mode: global default, per-network override ---------------------------------------------

FAIL_MODE_CASES = [
    # (id, global fail_mode, network uuid -> raw sdnctl:fail-mode, expected mode of xenbr1, error?)
    ("default-is-secure", "secure", {}, "secure", False),
    ("global-standalone", "standalone", {}, "standalone", False),
    ("network-overrides-global", "secure", {"net-1": "standalone"}, "standalone", False),
    ("network-case-and-spaces", "standalone", {"net-1": " Secure "}, "secure", False),
    ("malformed-is-secure-and-reported", "standalone", {"net-1": "open"}, "secure", True),
    ("other-networks-setting-does-not-apply", "secure", {"net-9": "standalone"}, "secure", False),
    ("sharing-networks-disagree-secure-wins", "standalone", {"net-1": "standalone", "net-2": "secure"}, "secure",
     False),
]


@pytest.mark.parametrize("default, settings, expected, error", [c[1:] for c in FAIL_MODE_CASES],
                         ids=[c[0] for c in FAIL_MODE_CASES])
def test_fail_mode_of_each_controlled_bridge(default, settings, expected, error):
    w = World(fail_mode=default, network_fail_modes=settings)
    seen = replace(observed(bridges=("xenbr1", "xenbr2")), bridge_networks={"xenbr1": ("net-1", "net-2")})
    modes, errors = bridge_fail_modes(frozenset({"xenbr1", "xenbr2"}), w, seen)
    assert modes == {"xenbr1": expected, "xenbr2": default}
    assert bool(errors) == error
    if error:
        assert "sdnctl:fail-mode" in errors[0] and "'open'" in errors[0] and '"secure"' in errors[0]


def test_plan_sets_the_fail_mode_of_controlled_bridges_only_when_it_differs_and_reports_bad_values():
    w = World(fail_mode="secure", network_fail_modes={"net-1": "bogus"})
    seen = replace(observed(bridges=("xenbr1", "xenbr2")), controllers={"xenbr1": "pssl:6653:10.0.0.1"},
                   fail_modes={"xenbr1": "", "xenbr2": "standalone"}, bridge_networks={"xenbr1": ("net-1",)})
    plan = plan_host(H1, w, seen, openflow_port=6653)
    assert plan.ports.set_fail_modes == (("xenbr1", "secure"),)      # xenbr2 is not controlled: left alone
    assert any("bogus" in note for note in plan.notes)
    again = replace(seen, fail_modes={"xenbr1": "secure", "xenbr2": "standalone"})
    assert plan_host(H1, w, again, openflow_port=6653).ports.set_fail_modes == ()


def test_a_networks_fail_mode_reaches_the_world_and_its_bridge():
    from sdnctl.core.hostplan import bridge_fail_modes

    records = pool(H1)
    network = next(r for r in records["pool-a"]["network"].values() if r["other_config"])
    network["other_config"]["sdnctl:fail-mode"] = "standalone"
    inventory = build_inventory(records)
    assert inventory.fail_modes == {network["uuid"]: "standalone"}
    w = World(inventory=inventory, desired=desired_tunnels(inventory.snapshot), complete=True,
              network_fail_modes=inventory.fail_modes)
    seen = observed()
    seen = ObservedHost(**{**seen.__dict__, "bridge_networks": {"xapi1": (network["uuid"],), "xenbr1": ()}})
    assert bridge_fail_modes(frozenset({"xapi1", "xenbr1"}), w, seen) == ({"xapi1": "standalone",
                                                                           "xenbr1": "secure"}, ())


# --- adopting Xen Orchestra's networks -------------------------------------------------------------

def _xo_port(name: str, network: str = NET) -> ObservedPort:
    return ObservedPort(name=name, bridge="xapi1", network_id=network, remote_host="", type="gre",
                        options=(("key", "100"), ("remote_ip", "10.0.0.2")), ofport=2)


def test_xos_ports_of_an_adopted_network_are_replaced_in_the_same_plan_and_others_left():
    from sdnctl.core.hostplan import plan_host

    w = world(pool(H1, H2, topology="mesh"))
    seen = replace(observed(), xo_ports=(_xo_port("xapi1_port1"), _xo_port("xapi9_port1", network="other-net")))
    plan = plan_host(H1, w, seen, openflow_port=6653).ports
    assert [p.name for p in plan.delete] == ["xapi1_port1"] and len(plan.add) == 1


@pytest.mark.parametrize(("target", "port"), [("pssl:", 6653), ("pssl:6660", 6660), ("pssl:6654:10.0.0.1", 6654),
                                              ("ssl:10.0.0.9:6653", None), ("ptcp:6653", None)],
                         ids=["xo-default", "port", "port-address", "active", "plain-tcp"])
def test_a_passive_listeners_port(target, port):
    from sdnctl.core.topology import listener_port

    assert listener_port(target) == port


def test_sdnctl_never_listens_where_another_controller_does():
    from sdnctl.core.topology import openflow_targets

    assert openflow_targets(["xapi1", "xapi2"], {"xapi1": "pssl:6653:10.0.0.1"}, "10.0.0.1", 6653, taken={6653}) == {
        "xapi1": "pssl:6654:10.0.0.1", "xapi2": "pssl:6655:10.0.0.1"}


def test_malformed_rules_show_in_mqtt_and_metrics_while_they_last():
    from prometheus_client import CollectorRegistry, generate_latest

    from sdnctl.metrics import StatusCollector

    status = {"pools": [], "hosts": {}, "networks": [], "rule_errors": {"vif-1": "rules: not JSON"}}
    assert mqtt_states(status)["rules/vif-1"] == {"error": "rules: not JSON", "forwarding": "nothing until fixed"}
    collector, registry = StatusCollector(), CollectorRegistry()
    registry.register(collector)
    collector.status = status
    assert 'sdnctl_rules_malformed{object="vif-1"} 1.0' in generate_latest(registry).decode()
    collector.status = {**status, "rule_errors": {}}
    assert "sdnctl_rules_malformed{" not in generate_latest(registry).decode()
    assert not [t for t in mqtt_states({**status, "rule_errors": {}}) if t.startswith("rules/")]
