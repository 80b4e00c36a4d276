"""`to` rules before the port exists (issue 10): a ruled VIF's egress flows come from XAPI's VIF record
(`VIF.MAC`, its network, its VM's `resident_on` / `scheduled_to_be_resident_on`), so they are on the host's
bridge before xenopsd plugs the VIF there. Only on those hosts; a malformed MAC fails closed.
"""

from __future__ import annotations

import pytest

from sdnctl.core.flows import PlacedVif, admits, desired_flows, parse_rule, unicast_mac
from sdnctl.core.inventory import build_inventory
from sdnctl.core.model import EGRESS_TABLE, INGRESS_TABLE, FlowSpec, Rule, VifPort

MAC = "aa:bb:cc:00:00:0a"
H1, H2, H3 = "host-1", "host-2", "host-3"
NET = "net-1"
LOCAL = 0xFFFFFFFE
BASE = {FlowSpec(0, (), "drop", table_id=INGRESS_TABLE), FlowSpec(10, (("in_port", LOCAL),), "next"),
        FlowSpec(0, (), "normal", table_id=EGRESS_TABLE)}


def rule(allow=True, protocol="ip", port=None, ip_range=None, direction="both") -> Rule:
    return parse_rule({"allow": allow, "protocol": protocol, "port": port, "ipRange": ip_range,
                       "direction": direction})


def egress(priority: int, action: str, **match: object) -> FlowSpec:
    return FlowSpec(priority=priority, match=tuple(sorted(match.items())), action=action, table_id=EGRESS_TABLE)


DENY_ICMP_TO = rule(allow=False, protocol="icmp", direction="to")
DENY_ICMP_FROM = rule(allow=False, protocol="icmp", direction="from")
ALLOW_TCP_22_BOTH = rule(protocol="tcp", port=22)
TO_ICMP = egress(31001, "drop", eth_type=0x0800, ip_proto=1, eth_dst=MAC)
TO_TCP_22 = egress(32000, "normal", eth_type=0x0800, ip_proto=6, tcp_dst=22, eth_dst=MAC)
TO_ICMP_NET = egress(21001, "drop", eth_type=0x0800, ip_proto=1, eth_dst=MAC)


def placed(hosts=(H1,), mac=MAC, vif="vif-a", network=NET, bridge="xapi1") -> PlacedVif:
    return PlacedVif(vif_uuid=vif, network_uuid=network, bridge=bridge, mac=mac, hosts=frozenset(hosts))


# (id, vif rules, network rules, placed VIF, host the flows are for, blocked, xapi1's flows beyond BASE or None)
CASES = [
    ("resident host: its to rules, no port yet", {"vif-a": (DENY_ICMP_TO,)}, {}, placed(), H1, (), {TO_ICMP}),
    ("scheduled host (start, migration destination)", {"vif-a": (DENY_ICMP_TO,)}, {}, placed((H1, H2)), H2, (),
     {TO_ICMP}),
    ("another host: nothing", {"vif-a": (DENY_ICMP_TO,)}, {}, placed((H1, H2)), H3, (), None),
    ("no host asked: as before", {"vif-a": (DENY_ICMP_TO,)}, {}, placed(), None, (), None),
    ("from rules need the port: none yet", {"vif-a": (DENY_ICMP_FROM,)}, {}, placed(), H1, (), set()),
    ("both: only its to half", {"vif-a": (ALLOW_TCP_22_BOTH,)}, {}, placed(), H1, (), {TO_TCP_22}),
    ("its network's rules too", {}, {NET: (DENY_ICMP_TO,)}, placed(), H1, (), {TO_ICMP_NET}),
    ("VIF and network rules", {"vif-a": (ALLOW_TCP_22_BOTH,)}, {NET: (DENY_ICMP_TO,)}, placed(), H1, (),
     {TO_TCP_22, TO_ICMP_NET}),
    ("no rules: nothing", {}, {}, placed(), H1, (), None),
    ("blocked VIF (malformed rules or MAC): nothing", {"vif-a": (DENY_ICMP_TO,)}, {}, placed(), H1, ("vif-a",), None),
    ("blocked network: nothing", {}, {NET: (DENY_ICMP_TO,)}, placed(), H1, (NET,), None),
    ("MAC upper case, as XAPI may write it", {"vif-a": (DENY_ICMP_TO,)}, {}, placed(mac=MAC.upper()), H1, (),
     {TO_ICMP}),
    ("malformed MAC: nothing", {"vif-a": (DENY_ICMP_TO,)}, {}, placed(mac="aa:bb:cc:00:00"), H1, (), None),
    ("multicast MAC: nothing", {"vif-a": (DENY_ICMP_TO,)}, {}, placed(mac="01:00:5e:00:00:01"), H1, (), None),
    ("no bridge: nothing", {"vif-a": (DENY_ICMP_TO,)}, {}, placed(bridge=""), H1, (), None),
]


@pytest.mark.parametrize("vif_rules, network_rules, vif, host, blocked, extra", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_a_placed_vif_gets_its_to_rules_on_its_hosts_only(vif_rules, network_rules, vif, host, blocked, extra):
    flows = desired_flows(vif_rules, network_rules, [], host_uuid=host, placed=[vif], blocked=blocked)
    assert flows == ({} if extra is None else {"xapi1": frozenset(BASE | extra)})


def test_the_current_call_still_works_and_ignores_placement():
    """hostplan's call as it is today (no host_uuid, no placed): exactly the port-based flows."""
    port = VifPort(vif_uuid="vif-a", network_uuid=NET, bridge="xapi1", ofport=7, mac=MAC)
    before = desired_flows({"vif-a": (DENY_ICMP_TO,)}, {}, [port], bridges=["xapi1"])
    assert before == desired_flows({"vif-a": (DENY_ICMP_TO,)}, {}, [port], bridges=["xapi1"], placed=[placed()])
    assert TO_ICMP in before["xapi1"]


def test_with_its_port_the_placed_flows_are_the_same_flows_and_port_security_is_unchanged():
    """Once the port is there, the port's `to` flows are the placed ones (they depend on the MAC only), and
    port security and the rules' `from` flows come from the port alone."""
    port = VifPort(vif_uuid="vif-a", network_uuid=NET, bridge="xapi1", ofport=7, mac=MAC)
    rules = {"vif-a": (DENY_ICMP_TO, DENY_ICMP_FROM)}
    port_only = desired_flows(rules, {}, [port])
    both = desired_flows(rules, {}, [port], host_uuid=H1, placed=[placed()])
    assert both == port_only
    security = {f for f in both["xapi1"] if f.priority in (100, 90)}
    assert {f.match for f in security} == {(("eth_src", MAC), ("in_port", 7)), (("in_port", 7),)}


def test_placed_flows_never_admit_anything_so_the_agent_sends_them_first():
    flows = desired_flows({"vif-a": (ALLOW_TCP_22_BOTH, DENY_ICMP_TO)}, {}, [], host_uuid=H1, placed=[placed()])
    assert not [f for f in flows["xapi1"] - BASE if admits(f) or f.table_id != EGRESS_TABLE]


def test_an_ovsdb_mac_that_differs_from_xapis_gets_both_sets_of_to_flows():
    port = VifPort(vif_uuid="vif-a", network_uuid=NET, bridge="xapi1", ofport=7, mac="aa:bb:cc:00:00:0f")
    flows = desired_flows({"vif-a": (DENY_ICMP_TO,)}, {}, [port], host_uuid=H1, placed=[placed()])
    dsts = {dict(f.match).get("eth_dst") for f in flows["xapi1"] if f.table_id == EGRESS_TABLE}
    assert dsts == {None, MAC, "aa:bb:cc:00:00:0f"}


def test_placed_vifs_of_other_hosts_add_no_flow_so_the_count_stays_bounded():
    many = [placed(hosts=(f"host-{n}",), vif=f"vif-{n}", mac=f"aa:bb:cc:00:{n // 256:02x}:{n % 256:02x}")
            for n in range(2, 500)]
    flows = desired_flows({v.vif_uuid: (DENY_ICMP_TO,) for v in many}, {}, [], bridges=["xapi1"],
                          host_uuid=H1, placed=many)
    assert flows == {"xapi1": frozenset(BASE)}


@pytest.mark.parametrize("value, mac", [
    ("aa:bb:cc:00:00:0a", MAC), (" AA:BB:CC:00:00:0A ", MAC), ("", None), (None, None), ("aa-bb-cc-00-00-0a", None),
    ("ff:ff:ff:ff:ff:ff", None), ("00:00:00:00:00:00", None), ("33:33:00:00:00:01", None), ("02:00:00:00:00:01",
                                                                                           "02:00:00:00:00:01"),
], ids=["lower", "upper with blanks", "empty", "none", "dashes", "broadcast", "zero", "multicast", "local"])
def test_unicast_mac(value, mac):
    assert unicast_mac(value) == mac


# --- the inventory: XAPI's records -> placed VIFs --------------------------------------------

RULES_KEY = "sdnctl:of-rules"
DENY_TO_JSON = '["{\\"allow\\":false,\\"protocol\\":\\"ICMP\\",\\"ipRange\\":\\"\\",\\"direction\\":\\"to\\"}"]'
NULL = "OpaqueRef:NULL"


def pool(vms: dict[str, tuple[str, str]], vifs: dict[str, tuple[str, str, dict]],
         network_rules: bool = False) -> dict:
    """One pool: hosts h1..h3, network n1 (bridge xapi1), VMs name -> (resident_on, scheduled_to_be_resident_on),
    VIFs uuid -> (VM name, MAC, other_config)."""
    return {"pool-a": {
        "host": {f"h{n}": {"uuid": f"host-{n}", "name_label": f"h{n}"} for n in (1, 2, 3)},
        "network": {"n1": {"uuid": NET, "bridge": "xapi1",
                           "other_config": {RULES_KEY: DENY_TO_JSON} if network_rules else {}}},
        "vm": {name: {"uuid": f"vm-{name}", "resident_on": on, "scheduled_to_be_resident_on": scheduled}
               for name, (on, scheduled) in vms.items()},
        "vif": {f"r-{uuid}": {"uuid": uuid, "network": "n1", "VM": vm, "MAC": mac, "other_config": oc}
                for uuid, (vm, mac, oc) in vifs.items()},
    }}


RULED = {RULES_KEY: DENY_TO_JSON}
INVENTORY_CASES = [
    ("running", {"a": ("h1", NULL)}, {"vif-a": ("a", MAC, RULED)}, False, {"vif-a": {H1}}),
    ("starting: scheduled, not resident yet", {"a": (NULL, "h2")}, {"vif-a": ("a", MAC, RULED)}, False,
     {"vif-a": {H2}}),
    ("migrating: both hosts", {"a": ("h1", "h2")}, {"vif-a": ("a", MAC, RULED)}, False, {"vif-a": {H1, H2}}),
    ("halted: nowhere", {"a": (NULL, NULL)}, {"vif-a": ("a", MAC, RULED)}, False, {}),
    ("no rules: not placed", {"a": ("h1", NULL)}, {"vif-a": ("a", MAC, {})}, False, {}),
    ("its network's rules", {"a": ("h1", NULL)}, {"vif-a": ("a", MAC, {})}, True, {"vif-a": {H1}}),
    ("a host the pool does not know: ignored", {"a": ("h9", "h1")}, {"vif-a": ("a", MAC, RULED)}, False,
     {"vif-a": {H1}}),
]


@pytest.mark.parametrize("vms, vifs, network_rules, expected", [c[1:] for c in INVENTORY_CASES],
                         ids=[c[0] for c in INVENTORY_CASES])
def test_the_inventory_places_ruled_vifs_where_xapi_runs_or_schedules_their_vm(vms, vifs, network_rules, expected):
    inventory = build_inventory(pool(vms, vifs, network_rules))
    assert {p.vif_uuid: set(p.hosts) for p in inventory.placed_vifs} == expected
    assert all((p.network_uuid, p.bridge, p.mac) == (NET, "xapi1", MAC) for p in inventory.placed_vifs)
    assert not inventory.rule_errors


def test_xapi_mac_is_read_in_lower_case():
    inventory = build_inventory(pool({"a": ("h1", NULL)}, {"vif-a": ("a", MAC.upper(), RULED)}))
    assert inventory.placed_vifs[0].mac == MAC


@pytest.mark.parametrize("mac", ["", "aa:bb:cc:00:00", "ff:ff:ff:ff:ff:ff", "zz:bb:cc:00:00:0a"],
                         ids=["empty", "short", "broadcast", "not hex"])
def test_a_ruled_vif_with_a_malformed_mac_fails_closed_with_an_error_on_the_vif(mac):
    inventory = build_inventory(pool({"a": ("h1", NULL)}, {"vif-a": ("a", mac, RULED)}))
    assert "vif-a" in inventory.rule_errors and "is not a unicast MAC address" in inventory.rule_errors["vif-a"]
    port = VifPort(vif_uuid="vif-a", network_uuid=NET, bridge="xapi1", ofport=7, mac=MAC)   # OVSDB's looks fine
    flows = desired_flows(inventory.vif_rules, inventory.network_rules, [port], host_uuid=H1,
                          placed=inventory.placed_vifs, blocked=inventory.rule_errors)
    assert flows == {"xapi1": frozenset(BASE)}   # not admitted, no rule flows: it forwards nothing


def test_a_malformed_mac_on_a_vif_without_rules_is_no_error():
    inventory = build_inventory(pool({"a": ("h1", NULL)}, {"vif-a": ("a", "junk", {})}))
    assert not inventory.rule_errors and not inventory.placed_vifs


def test_a_malformed_mac_adds_to_a_rule_error_of_the_same_vif():
    inventory = build_inventory(pool({"a": ("h1", NULL)}, {"vif-a": ("a", "junk", {RULES_KEY: "nope"})}, True))
    error = inventory.rule_errors["vif-a"]
    assert "not valid JSON" in error and "is not a unicast MAC address" in error


def test_a_record_without_a_mac_field_is_left_to_its_port():
    """XAPI always sends `MAC`; a partial record (no such key) is neither placed nor an error: its port decides."""
    records = pool({"a": ("h1", NULL)}, {"vif-a": ("a", MAC, RULED)})
    del records["pool-a"]["vif"]["r-vif-a"]["MAC"]
    inventory = build_inventory(records)
    assert not inventory.rule_errors and not inventory.placed_vifs and "vif-a" in inventory.vif_rules
