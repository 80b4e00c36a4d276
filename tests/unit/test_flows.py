"""sdnctl.core.flows: XO traffic rules -> exact flows per bridge in the two-table pipeline, their
priorities, and the parser's messages.

Pure: no switch here. `_verdict` is a tiny two-table pipeline (in each table the highest matching
priority wins; table 0 drops or goes on to table 1, which drops or forwards) so that the meaning of
a rule set can be checked, not only its flows. A table without a matching flow is a test failure:
on a switch with a controller connected it would drop the packet.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdnctl.errors import RuleError
from sdnctl.core.flows import (
    MAX_PRIORITY, MIN_PRIORITY, PRIORITY_ADMIT, PRIORITY_PORT_DROP, PRIORITY_PORT_SECURITY, PRIORITY_TABLE_MISS,
    RULE_KEYS, admit, admits, base_flows, desired_flows, infrastructure_ofports, is_guest, describe_rule, format_rule, parse_rule, parse_rules_json, rule_priority, rules_json,
)
from tests.flowtext import flow_to_ofctl, port_security_flows, rule_flows
from sdnctl.core.model import (
    EGRESS_TABLE, INGRESS_TABLE, RULE_DIRECTIONS, RULE_PROTOCOLS, SDNCTL_COOKIE, BridgePort, FlowSpec, Rule, VifPort,
)

IP, ARP = 0x0800, 0x0806
MAC_A, MAC_B = "aa:bb:cc:00:00:0a", "aa:bb:cc:00:00:0b"
FOREIGN_MAC = "02:de:ad:be:ef:01"
NET1, NET2 = "net-1", "net-2"
# XAPI gives MACs in either case; flows carry them lower-case, as OVS prints them.
PORT_A = VifPort(vif_uuid="vif-a", network_uuid=NET1, bridge="xenbr1", ofport=7, mac=MAC_A.upper())
PORT_B = VifPort(vif_uuid="vif-b", network_uuid=NET1, bridge="xenbr1", ofport=8, mac=MAC_B)
PORT_C = VifPort(vif_uuid="vif-c", network_uuid=NET2, bridge="xenbr2", ofport=3, mac="aa:bb:cc:00:00:0c")
SLASH8 = ("10.0.0.0", "255.0.0.0")
COOKIE = "cookie=0x5dc1000000000000"


def rule(allow=True, protocol="ip", port=None, ip_range=None, direction="both") -> Rule:
    return parse_rule({"allow": allow, "protocol": protocol, "port": port, "ipRange": ip_range,
                       "direction": direction})


def ingress(priority: int, action: str, **match: object) -> FlowSpec:
    return FlowSpec(priority=priority, match=tuple(sorted(match.items())), action=action, table_id=INGRESS_TABLE)


def egress(priority: int, action: str, **match: object) -> FlowSpec:
    return FlowSpec(priority=priority, match=tuple(sorted(match.items())), action=action, table_id=EGRESS_TABLE)


LOCAL = 0xFFFFFFFE   # OFPP_LOCAL: the bridge's own port, always admitted
BASE = {ingress(0, "drop"), ingress(10, "next", in_port=LOCAL), egress(0, "normal")}
SECURITY_A = {ingress(100, "next", in_port=7, eth_src=MAC_A), ingress(90, "drop", in_port=7)}
SECURITY_B = {ingress(100, "next", in_port=8, eth_src=MAC_B), ingress(90, "drop", in_port=8)}


def flows_of(*rules: Rule, port: VifPort = PORT_A) -> frozenset[FlowSpec]:
    return desired_flows({port.vif_uuid: rules}, {}, [port])[port.bridge]


# --- one rule -> its flows, protocol x direction ----------------------------------------------------

FROM_A = {"in_port": 7}                       # deny: the port alone, whatever the source MAC
FROM_A_MAC = {"in_port": 7, "eth_src": MAC_A}   # allow: the port and the VIF's own MAC
TO_A = {"eth_dst": MAC_A}

FLOW_CASES = [
    ("ip-from-any", rule(True, "ip", direction="from"),
     {ingress(30000, "next", eth_type=IP, **FROM_A_MAC)}),
    ("ip-to-range", rule(False, "ip", ip_range="10.0.0.0/8", direction="to"),
     {egress(30081, "drop", eth_type=IP, ipv4_src=SLASH8, **TO_A)}),
    ("ip-both-host", rule(False, "ip", ip_range="192.0.2.7", direction="both"),
     {ingress(30321, "drop", eth_type=IP, ipv4_dst="192.0.2.7", **FROM_A),
      egress(30321, "drop", eth_type=IP, ipv4_src="192.0.2.7", **TO_A)}),
    ("icmp-from-range", rule(False, "icmp", ip_range="192.0.2.0/24", direction="from"),
     {ingress(31241, "drop", eth_type=IP, ip_proto=1, ipv4_dst=("192.0.2.0", "255.255.255.0"), **FROM_A)}),
    ("icmp-to-any", rule(True, "icmp", direction="to"),
     {egress(31000, "normal", eth_type=IP, ip_proto=1, **TO_A)}),
    ("icmp-both-any", rule(False, "icmp", direction="both"),
     {ingress(31001, "drop", eth_type=IP, ip_proto=1, **FROM_A),
      egress(31001, "drop", eth_type=IP, ip_proto=1, **TO_A)}),
    ("tcp-from-port", rule(True, "tcp", port=443, direction="from"),
     {ingress(32000, "next", eth_type=IP, ip_proto=6, tcp_dst=443, **FROM_A_MAC)}),
    ("tcp-to-port-range", rule(False, "tcp", port=22, ip_range="10.0.0.0/8", direction="to"),
     {egress(32081, "drop", eth_type=IP, ip_proto=6, tcp_dst=22, ipv4_src=SLASH8, **TO_A)}),
    ("tcp-both-no-port", rule(True, "tcp", direction="both"),
     {ingress(31000, "next", eth_type=IP, ip_proto=6, **FROM_A_MAC),
      egress(31000, "normal", eth_type=IP, ip_proto=6, **TO_A)}),
    ("udp-from-port-host", rule(True, "udp", port=53, ip_range="192.0.2.53/32", direction="from"),
     {ingress(32320, "next", eth_type=IP, ip_proto=17, udp_dst=53, ipv4_dst="192.0.2.53", **FROM_A_MAC)}),
    ("udp-to-no-port", rule(False, "udp", direction="to"),
     {egress(31001, "drop", eth_type=IP, ip_proto=17, **TO_A)}),
    ("udp-both-port", rule(False, "udp", port=161, direction="both"),
     {ingress(32001, "drop", eth_type=IP, ip_proto=17, udp_dst=161, **FROM_A),
      egress(32001, "drop", eth_type=IP, ip_proto=17, udp_dst=161, **TO_A)}),
    ("arp-from-range", rule(False, "arp", ip_range="10.0.0.0/8", direction="from"),
     {ingress(31081, "drop", eth_type=ARP, arp_tpa=SLASH8, **FROM_A)}),
    ("arp-to-host", rule(True, "arp", ip_range="10.1.2.3", direction="to"),
     {egress(31320, "normal", eth_type=ARP, arp_spa="10.1.2.3", **TO_A)}),
    ("arp-both-any", rule(True, "arp", direction="both"),
     {ingress(31000, "next", eth_type=ARP, **FROM_A_MAC), egress(31000, "normal", eth_type=ARP, **TO_A)}),
    ("slash0-is-any-address", rule(False, "tcp", port=25, ip_range="0.0.0.0/0", direction="from"),
     {ingress(32001, "drop", eth_type=IP, ip_proto=6, tcp_dst=25, **FROM_A)}),
]


@pytest.mark.parametrize("the_rule, expected", [c[1:] for c in FLOW_CASES], ids=[c[0] for c in FLOW_CASES])
def test_one_rule_gives_exactly_these_flows(the_rule, expected):
    assert rule_flows(the_rule, PORT_A) == expected
    assert flows_of(the_rule) == BASE | SECURITY_A | expected


def test_every_protocol_and_direction_is_covered():
    covered = {(r.protocol, r.direction) for _, r, _ in FLOW_CASES}
    assert covered == {(p, d) for p in RULE_PROTOCOLS for d in RULE_DIRECTIONS}


def test_network_rule_flows_are_those_of_a_vif_rule_in_the_network_band():
    deny_ssh = rule(False, "tcp", port=22, direction="to")
    assert desired_flows({}, {NET1: [deny_ssh]}, [PORT_A])["xenbr1"] == \
        BASE | SECURITY_A | {egress(22001, "drop", eth_type=IP, ip_proto=6, tcp_dst=22, **TO_A)}
    assert rule_flows(deny_ssh, PORT_A, network_rule=True) == \
        {egress(22001, "drop", eth_type=IP, ip_proto=6, tcp_dst=22, **TO_A)}


# --- base flows and port security ------------------------------------------------------------------

def test_base_flows_are_the_table_miss_flows_and_the_bridges_own_port():
    assert base_flows() == BASE
    assert all(f.cookie == SDNCTL_COOKIE for f in base_flows())
    assert {f.priority for f in base_flows()} == {PRIORITY_TABLE_MISS, PRIORITY_ADMIT} == {0, 10}


def test_every_controlled_bridge_gets_the_base_flows_even_without_rules():
    assert desired_flows({}, {}, [], bridges=["xapi1"]) == {"xapi1": BASE}
    out = desired_flows({"vif-a": [rule(False)]}, {}, [PORT_A, PORT_C], bridges=("xapi1", "xenbr1"))
    assert out == {"xapi1": BASE, "xenbr1": BASE | SECURITY_A | flows_of(rule(False)), "xenbr2": BASE | {admit(3)}}


ARP_FROM_1 = {"in_port": 1, "eth_src": MAC_B, "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": ARP,
              "arp_spa": "10.0.0.1", "arp_tpa": "10.0.0.2"}


def test_base_flows_alone_forward_nothing_but_the_bridges_own_port():
    for packet in (_tcp_from_a(80), ARP_FROM_1):
        assert _verdict(base_flows(), packet) == "drop"
    assert _verdict(base_flows(), {**ARP_FROM_1, "in_port": 0xFFFFFFFE}) == "normal"
    assert _verdict(base_flows() | {admit(1)}, ARP_FROM_1) == "normal"


# --- admission: a port forwards nothing until sdnctl has admitted it ------------------------------

ADMISSION_CASES = [
    # (id, vif rules, network rules, blocked, flows expected for port A on xenbr1, beside BASE)
    ("no-rules-admitted-as-is", {}, {}, (), {admit(7)}),
    ("vif-rule-admitted-by-port-security", {"vif-a": [rule(False, "icmp")]}, {}, (),
     SECURITY_A | rule_flows(rule(False, "icmp"), PORT_A)),
    ("network-rule-admitted-by-port-security", {}, {NET1: [rule(False, "icmp")]}, (),
     SECURITY_A | rule_flows(rule(False, "icmp"), PORT_A, network_rule=True)),
    ("vif-rules-malformed-not-admitted", {}, {}, ("vif-a",), set()),
    ("network-rules-malformed-not-admitted", {"vif-a": [rule(True, "ip")]}, {}, (NET1,), set()),
    ("other-object-malformed-still-admitted", {}, {}, ("vif-b", NET2), {admit(7)}),
]


@pytest.mark.parametrize("vif_rules, network_rules, blocked, expected", [c[1:] for c in ADMISSION_CASES],
                         ids=[c[0] for c in ADMISSION_CASES])
def test_which_vif_ports_are_admitted_and_how(vif_rules, network_rules, blocked, expected):
    assert desired_flows(vif_rules, network_rules, [PORT_A], blocked=blocked)["xenbr1"] == BASE | expected


INTERFACES = [
    # (id, interface, admitted as infrastructure)
    ("sdnctl-tunnel", BridgePort("xenbr1", "sdn0123456789ab", 4), True),
    ("xo-tunnel", BridgePort("xenbr1", "xapi3_iface0", 5), True),
    ("nic", BridgePort("xenbr1", "eth1", 1), True),
    ("bond-or-patch", BridgePort("xenbr1", "bond0", 2), True),
    ("vif", BridgePort("xenbr1", "vif3.0", 7, vif_uuid="vif-a"), False),
    ("vif-without-xapi-ids", BridgePort("xenbr1", "vif9.1", 9), False),
    ("tap-without-xapi-ids", BridgePort("xenbr1", "tap9.0", 10), False),
    ("any-port-with-a-vif-uuid", BridgePort("xenbr1", "weird0", 11, vif_uuid="vif-z"), False),
    ("ofport-not-set-up", BridgePort("xenbr1", "eth2", -1), False),
    ("ofport-unassigned", BridgePort("xenbr1", "eth3", 0), False),
    ("internal-port-is-local", BridgePort("xenbr1", "xenbr1", 65534), False),   # admitted as LOCAL by BASE
    ("no-bridge", BridgePort("", "eth4", 3), False),
]


@pytest.mark.parametrize("port, admitted", [c[1:] for c in INTERFACES], ids=[c[0] for c in INTERFACES])
def test_infrastructure_ports_are_admitted_and_guests_never_are(port, admitted):
    found = infrastructure_ofports([port])
    assert (port.ofport in found.get(port.bridge, ())) == admitted
    if port.vif_uuid or port.name.startswith(("vif", "tap")):
        assert is_guest(port)


def test_infrastructure_admissions_go_on_their_bridge_below_every_other_flow():
    out = desired_flows({"vif-a": [rule(False, "ip")]}, {}, [PORT_A], infrastructure={"xenbr1": [1, 4], "xapi2": [2]})
    assert {admit(1), admit(4)} <= out["xenbr1"] and out["xapi2"] == BASE | {admit(2)}
    ruled = [f for f in out["xenbr1"] if f.match and f.match[0] == ("eth_type", IP) or ("in_port", 7) in f.match]
    assert min(f.priority for f in ruled) > PRIORITY_ADMIT > PRIORITY_TABLE_MISS


@pytest.mark.parametrize("flow, admitting", [
    (admit(3), True),
    (ingress(100, "next", in_port=7, eth_src=MAC_A), True),
    (ingress(90, "drop", in_port=7), False),
    (ingress(0, "drop"), False),
    (egress(0, "normal"), False),
    (egress(30001, "drop", eth_dst=MAC_A), False),
], ids=["admission", "port-security-allow", "port-security-drop", "table-miss", "egress-miss", "to-rule"])
def test_admits_names_the_flows_the_agent_holds_back(flow, admitting):
    assert admits(flow) == admitting


def test_port_security_lets_a_vif_send_from_its_own_mac_only():
    assert port_security_flows(PORT_A) == SECURITY_A
    flows = flows_of(rule(True, "icmp", direction="to"))   # a `to` rule alone turns port security on
    arp = {"in_port": 7, "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": ARP, "arp_spa": "10.0.0.10",
           "arp_tpa": "10.0.0.1"}
    assert _verdict(flows, {**arp, "eth_src": MAC_A}) == "normal"
    assert _table(flows, INGRESS_TABLE, {**arp, "eth_src": FOREIGN_MAC}) == "drop"


def test_port_security_covers_every_ruled_port_and_only_those():
    out = desired_flows({"vif-b": [rule(True, "tcp", port=22, direction="to")]}, {NET2: [rule(False, "icmp")]},
                        [PORT_A, PORT_B, PORT_C])
    assert SECURITY_B <= out["xenbr1"] and port_security_flows(PORT_C) <= out["xenbr2"]
    # A has no rule: only its admission names its port, nothing its MAC: it may send from any MAC, as before.
    assert [f for f in out["xenbr1"] if any(value in (7, MAC_A) for _, value in f.match)] == [admit(7)]


def test_an_allow_does_not_let_a_frame_from_another_mac_past_port_security():
    flows = flows_of(rule(True, "tcp", port=22, direction="from"), rule(True, "arp", direction="from"))
    assert _verdict(flows, _tcp_from_a(22)) == "normal"
    assert _table(flows, INGRESS_TABLE, _tcp_from_a(22, eth_src=FOREIGN_MAC)) == "drop"


UNUSABLE_PORTS = [
    ("ofport-0", replace(PORT_A, ofport=0)),
    ("ofport-negative", replace(PORT_A, ofport=-1)),
    ("ofport-local", replace(PORT_A, ofport=0xFFFE)),
    ("mac-empty", replace(PORT_A, mac="")),
    ("mac-short", replace(PORT_A, mac="aa:bb:cc:00:00")),
    ("mac-not-hex", replace(PORT_A, mac="zz:bb:cc:00:00:0a")),
    ("mac-dashes", replace(PORT_A, mac="aa-bb-cc-00-00-0a")),
    ("mac-multicast", replace(PORT_A, mac="01:00:5e:00:00:01")),
    ("mac-broadcast", replace(PORT_A, mac="ff:ff:ff:ff:ff:ff")),
    ("mac-zero", replace(PORT_A, mac="00:00:00:00:00:00")),
]


@pytest.mark.parametrize("port", [c[1] for c in UNUSABLE_PORTS], ids=[c[0] for c in UNUSABLE_PORTS])
def test_a_ruled_port_ovsdb_shows_half_set_up_gets_no_flows_so_it_is_not_admitted(port):
    assert desired_flows({"vif-a": [rule(False)]}, {NET1: [rule(False, "icmp")]}, [port]) == {"xenbr1": BASE}
    assert rule_flows(rule(False), port) == port_security_flows(port) == frozenset()
    # Without rules, only the ofport matters: its MAC is not needed to admit it.
    unruled = desired_flows({}, {}, [port])["xenbr1"]
    assert unruled == (BASE | {admit(7)} if port.ofport == 7 else BASE)


def test_a_portless_vif_and_a_bridge_name_string_are_refused_or_skipped():
    assert desired_flows({"vif-a": [rule(False)]}, {}, [VifPort("vif-a", NET1, "", 7, MAC_A)]) == {}
    with pytest.raises(TypeError, match="iterable of bridge names"):
        desired_flows({}, {}, [], bridges="xenbr1")


# --- which rules reach which bridge ---------------------------------------------------------------

def test_network_rule_applies_to_every_port_of_its_network_only():
    deny_icmp = rule(False, "icmp", direction="to")
    out = desired_flows({}, {NET1: [deny_icmp]}, [PORT_A, PORT_B, PORT_C])
    assert out == {
        "xenbr1": BASE | SECURITY_A | SECURITY_B | {egress(21001, "drop", eth_type=IP, ip_proto=1, eth_dst=MAC_A),
                                                    egress(21001, "drop", eth_type=IP, ip_proto=1, eth_dst=MAC_B)},
        "xenbr2": BASE | {admit(3)},
    }


def test_rules_without_a_plugged_port_add_nothing_and_every_bridge_with_a_port_appears():
    out = desired_flows({"vif-unplugged": [rule(False)]}, {"net-without-ports": [rule(False)]}, [PORT_C])
    assert out == {"xenbr2": BASE | {admit(3)}}
    assert desired_flows({"vif-a": [rule(False)]}, {}, []) == {}


def test_identical_flows_from_overlapping_rules_collapse():
    both = rule(False, "tcp", port=22, direction="both")
    twice = flows_of(both, both, rule(False, "tcp", port=22, direction="from"))
    assert twice == flows_of(both) and len(twice - BASE - SECURITY_A) == 2


def test_a_rule_that_is_not_canonical_is_refused():
    with pytest.raises(RuleError, match="canonical"):
        desired_flows({"vif-a": [Rule(allow=True, protocol="TCP")]}, {}, [PORT_A])
    with pytest.raises(RuleError, match="protocol"):
        rule_flows(Rule(allow=True, protocol="sctp"), PORT_A)


# --- priorities and what they mean -----------------------------------------------------------------

PRIORITY_ORDER = [
    # (id, higher rule, lower rule, higher is network rule, lower is network rule)
    ("tcp-22-above-ip", rule(True, "tcp", port=22), rule(False, "ip"), False, False),
    ("port-above-protocol", rule(True, "udp", port=53), rule(False, "udp", ip_range="10.0.0.1"), False, False),
    ("protocol-above-ip", rule(True, "icmp"), rule(False, "ip", ip_range="10.0.0.1"), False, False),
    ("longer-prefix-first", rule(True, "ip", ip_range="10.1.0.0/16"), rule(False, "ip", ip_range="10.0.0.0/8"),
     False, False),
    ("deny-wins-a-tie", rule(False, "tcp", port=22), rule(True, "tcp", port=22), False, False),
    ("vif-above-network", rule(True, "ip"), rule(False, "tcp", port=22, ip_range="10.0.0.1"), False, True),
    ("network-order-too", rule(True, "tcp", port=22), rule(False, "ip"), True, True),
]


@pytest.mark.parametrize("higher, lower, higher_net, lower_net", [c[1:] for c in PRIORITY_ORDER],
                         ids=[c[0] for c in PRIORITY_ORDER])
def test_priority_order(higher, lower, higher_net, lower_net):
    assert rule_priority(higher, network_rule=higher_net) > rule_priority(lower, network_rule=lower_net)


def test_deny_is_allow_plus_one():
    assert rule_priority(rule(False, "tcp", port=22)) == rule_priority(rule(True, "tcp", port=22)) + 1


def test_port_security_sits_below_every_rule_and_above_the_table_miss():
    lowest_rule = min(rule_priority(rule(True, "ip"), network_rule=True), MIN_PRIORITY)
    assert lowest_rule > PRIORITY_PORT_SECURITY > PRIORITY_PORT_DROP > PRIORITY_TABLE_MISS == 0


def test_priority_order_in_each_table():
    flows = desired_flows({"vif-a": [rule(True, "tcp", port=22, direction="from"), rule(False, "ip")]},
                          {NET1: [rule(False, "udp", port=53)]}, [PORT_A])["xenbr1"]

    def table(table_id: int) -> list[str]:
        return [flow_to_ofctl(f).removeprefix(f"{COOKIE},") for f in sorted(flows, key=lambda f: -f.priority)
                if f.table_id == table_id]

    assert table(INGRESS_TABLE) == [
        f"table=0,priority=32000,tcp,in_port=7,dl_src={MAC_A},tp_dst=22,actions=goto_table:1",  # VIF allow tcp 22
        "table=0,priority=30001,ip,in_port=7,actions=drop",                                     # VIF deny ip
        "table=0,priority=22001,udp,in_port=7,tp_dst=53,actions=drop",                          # network deny udp 53
        f"table=0,priority=100,in_port=7,dl_src={MAC_A},actions=goto_table:1",                  # port security
        "table=0,priority=90,in_port=7,actions=drop",                                           # port security
        "table=0,priority=10,in_port=4294967294,actions=goto_table:1",                          # LOCAL admitted
        "table=0,priority=0,actions=drop",                                                      # not admitted
    ]
    assert table(EGRESS_TABLE) == [
        f"table=1,priority=30001,ip,dl_dst={MAC_A},actions=drop",
        f"table=1,priority=22001,udp,dl_dst={MAC_A},tp_dst=53,actions=drop",
        "table=1,priority=0,actions=NORMAL",
    ]


def _covers(value: object, address: str) -> bool:
    if isinstance(value, tuple):
        return ipaddress.ip_address(address) in ipaddress.ip_network(f"{value[0]}/{value[1]}")
    return value == address


def _table(flows: frozenset[FlowSpec], table_id: int, packet: dict[str, object]) -> str:
    """The action of the highest-priority flow of one table that matches the packet."""
    matching = [f for f in flows if f.table_id == table_id
                and all(name in packet and (_covers(value, packet[name]) if name.startswith(("ipv4", "arp_"))
                                            else packet[name] == value)
                        for name, value in f.match)]
    assert matching, f"no flow of table {table_id} matches {packet}: the table-miss flow is missing"
    top = max(f.priority for f in matching)
    [action] = {f.action for f in matching if f.priority == top}   # no tie between allow and deny
    return action


def _verdict(flows: frozenset[FlowSpec], packet: dict[str, object]) -> str:
    """What the pipeline does with a packet: "drop" or "normal"."""
    first = _table(flows, INGRESS_TABLE, packet)
    if first == "drop":
        return "drop"
    assert first == "next", first
    return _table(flows, EGRESS_TABLE, packet)


def _tcp_from_a(tcp_dst: int, eth_src: str = MAC_A, ipv4_dst: str = "10.9.9.9") -> dict[str, object]:
    return {"in_port": 7, "eth_src": eth_src, "eth_dst": "02:00:00:00:00:01", "eth_type": IP, "ip_proto": 6,
            "ipv4_src": "10.0.0.10", "ipv4_dst": ipv4_dst, "tcp_dst": tcp_dst}


def test_allow_tcp_22_and_deny_ip_let_only_port_22_through():
    flows = flows_of(rule(True, "tcp", port=22, direction="from"), rule(False, "ip", direction="both"))
    assert _verdict(flows, _tcp_from_a(22)) == "normal"
    assert _verdict(flows, _tcp_from_a(80)) == "drop"
    # Stateless: the reply to the VM's own SSH session is IP to the VM, and nothing allows it.
    reply = {"in_port": 1, "eth_src": "02:00:00:00:00:01", "eth_dst": MAC_A, "eth_type": IP, "ip_proto": 6,
             "ipv4_src": "10.9.9.9", "ipv4_dst": "10.0.0.10", "tcp_dst": 40000}
    assert _verdict(flows, reply) == "drop"


def test_a_vif_allow_beats_a_network_deny():
    flows = desired_flows({"vif-a": [rule(True, "ip", direction="from")]},
                          {NET1: [rule(False, "tcp", port=22, ip_range="10.9.9.9", direction="from")]},
                          [PORT_A])["xenbr1"]
    assert _verdict(flows, _tcp_from_a(22)) == "normal"


def test_changing_its_mac_does_not_get_a_guest_past_its_from_rules():
    flows = flows_of(rule(False, "tcp", port=25, direction="from"))
    for mac in (MAC_A, FOREIGN_MAC, MAC_B):
        assert _verdict(flows, _tcp_from_a(25, eth_src=mac)) == "drop"
    assert _verdict(flows, _tcp_from_a(80)) == "normal"


def test_a_receivers_allow_no_longer_overrides_a_senders_deny():
    """A's `deny ip (from)` holds against B's more specific `allow tcp 22 (to)`, and the reverse."""
    flows = desired_flows({"vif-a": [rule(False, "ip", direction="from")],
                           "vif-b": [rule(True, "tcp", port=22, direction="to")]}, {}, [PORT_A, PORT_B],
                          infrastructure={"xenbr1": [1]})["xenbr1"]
    a_to_b = {**_tcp_from_a(22), "eth_dst": MAC_B}
    assert _verdict(flows, a_to_b) == "drop"
    assert _verdict(flows, {**a_to_b, "in_port": 1, "eth_src": "02:00:00:00:00:01"}) == "normal"  # uplink -> B
    flows = desired_flows({"vif-a": [rule(True, "tcp", port=22, direction="from")],
                           "vif-b": [rule(False, "ip", direction="to")]}, {}, [PORT_A, PORT_B])["xenbr1"]
    assert _verdict(flows, a_to_b) == "drop"


def test_known_limit_broadcast_to_a_vm_bypasses_its_to_rules_so_filter_at_the_sender():
    """docs/rules.md, Limits: an ARP request is addressed to ff:ff:ff:ff:ff:ff, not to B's MAC."""
    request = {"in_port": 7, "eth_src": MAC_A, "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": ARP,
               "arp_spa": "10.0.0.10", "arp_tpa": "10.0.0.11"}
    flows = desired_flows({"vif-b": [rule(False, "arp", direction="to")]}, {}, [PORT_A, PORT_B])["xenbr1"]
    assert _verdict(flows, request) == "normal"
    flows = desired_flows({}, {NET1: [rule(False, "arp", ip_range="10.0.0.11", direction="from")]},
                          [PORT_A, PORT_B])["xenbr1"]
    assert _verdict(flows, request) == "drop"


# --- parsing: XO's shapes in, clear messages for mistakes ------------------------------------------

def test_xo_shapes_are_normalised():
    xo = '{"allow":true,"protocol":"TCP","port":"22","ipRange":"10.1.2.3/8","direction":"from/to"}'
    assert parse_rule(xo) == Rule(allow=True, protocol="tcp", port=22, ip_range="10.0.0.0/8", direction="both")
    assert parse_rule({"allow": False, "protocol": "Icmp", "ipRange": "", "direction": "TO"}) == \
        Rule(allow=False, protocol="icmp", port=None, ip_range=None, direction="to")
    assert parse_rule({"allow": True, "protocol": "arp", "port": None, "ipRange": None, "direction": "from"}) == \
        Rule(allow=True, protocol="arp", direction="from")
    assert parse_rule({"allow": True, "protocol": "ip", "ipRange": "192.0.2.7", "direction": "both"}).ip_range == \
        "192.0.2.7/32"


def test_xo_stored_value_is_read_and_written_byte_for_byte():
    # As XO's legacy _addRule / serializeCopy write it: compact JSON, no "port" key without a port.
    stored = ('["{\\"allow\\":true,\\"protocol\\":\\"TCP\\",\\"ipRange\\":\\"10.0.0.0/24\\",\\"direction\\":\\"to\\"}",'
              '"{\\"allow\\":false,\\"protocol\\":\\"UDP\\",\\"port\\":53,\\"ipRange\\":\\"\\",'
              '\\"direction\\":\\"from/to\\"}"]')
    rules = parse_rules_json(stored)
    assert rules == (Rule(True, "tcp", None, "10.0.0.0/24", "to"), Rule(False, "udp", 53, None, "both"))
    assert rules_json(rules) == stored


def test_rules_json_also_accepts_objects_and_blank():
    objects = '[{"allow": true, "protocol": "ip", "direction": "to"}]'
    assert parse_rules_json(objects) == (rule(True, "ip", direction="to"),)
    assert parse_rules_json("") == parse_rules_json("  ") == parse_rules_json("[]") == ()
    assert rules_json([]) == "[]"


def test_format_rule_is_xo_object():
    assert format_rule(rule(False, "tcp", port=22, ip_range="10.0.0.0/8", direction="both")) == \
        {"allow": False, "protocol": "TCP", "port": 22, "ipRange": "10.0.0.0/8", "direction": "from/to"}
    assert format_rule(rule(True, "arp", direction="from")) == \
        {"allow": True, "protocol": "ARP", "ipRange": "", "direction": "from"}


OK = {"allow": True, "protocol": "tcp", "direction": "to"}

PARSE_ERRORS = [
    ("port-without-tcp-udp", {**OK, "protocol": "icmp", "port": 22},
     r"port: 22 is given for protocol icmp, which has no ports; use protocol tcp or udp, or remove the port"),
    ("port-zero", {**OK, "port": 0}, r"port: 0 is outside 1\.\.65535; write a port number from 1 to 65535"),
    ("port-too-big", {**OK, "port": "65536"}, r"port: '65536' is outside 1\.\.65535"),
    ("port-huge-string", {**OK, "port": "9" * 5000}, r"port: '9{50,}\.\.\. is outside 1\.\.65535"),
    ("port-negative", {**OK, "port": -1}, r"port: -1 is outside 1\.\.65535"),
    ("port-name", {**OK, "port": "ssh"}, r"port: 'ssh' is not a whole number; write a port number .* e\.g\. 22"),
    ("port-float", {**OK, "port": 22.5}, r"port: 22\.5 is not a whole number"),
    ("port-bool", {**OK, "port": True}, r"port: True is not a whole number"),
    ("bad-cidr", {**OK, "ipRange": "10.0.0.0/33"},
     r"ipRange: '10\.0\.0\.0/33' is not an IPv4 address or network; write e\.g\. \"10\.0\.0\.0/8\""),
    ("not-an-address", {**OK, "ipRange": "lan"}, r"ipRange: 'lan' is not an IPv4 address or network"),
    ("range-not-string", {**OK, "ipRange": 167772160}, r"ipRange: 167772160 is not a string"),
    ("ipv6", {**OK, "ipRange": "2001:db8::/32"},
     r"ipRange: '2001:db8::/32' is an IPv6 range, which sdnctl rules do not support \(IPv4 only\)"),
    ("unknown-protocol", {**OK, "protocol": "sctp"},
     r"protocol: 'sctp' is not a protocol sdnctl knows; write one of ip, icmp, tcp, udp, arp"),
    ("missing-protocol", {"allow": True, "direction": "to"}, r"protocol is missing; add \"protocol\""),
    ("unknown-direction", {**OK, "direction": "in"},
     r"direction: 'in' is not a direction; write \"from\" .* \"to\" .* or \"both\""),
    ("missing-direction", {"allow": True, "protocol": "ip"}, r"direction is missing"),
    ("missing-allow", {"protocol": "ip", "direction": "to"}, r"allow is missing; add \"allow\": true or false"),
    ("allow-string", {**OK, "allow": "true"}, r"allow: 'true' is not true or false; write true .* unquoted"),
    ("allow-int", {**OK, "allow": 1}, r"allow: 1 is not true or false"),
    ("unknown-key-typo", {**OK, "iprange": "10.0.0.0/8"}, r"key 'iprange' is unknown; did you mean \"ipRange\"\?"),
    ("unknown-key", {**OK, "comment": "x"}, r"key 'comment' is unknown; the keys are allow, protocol, port"),
    ("not-json", '{"allow": true,', r"is not valid JSON; write a JSON object"),
    ("not-an-object", '["tcp"]', r"\['tcp'\] is not an object"),
]


@pytest.mark.parametrize("value, message", [c[1:] for c in PARSE_ERRORS], ids=[c[0] for c in PARSE_ERRORS])
def test_parse_errors_say_what_and_how_to_fix(value, message):
    with pytest.raises(RuleError, match=r"^traffic rule: ") as caught:
        parse_rule(value)
    assert re.search(message, str(caught.value)), str(caught.value)


RULES_JSON_ERRORS = [
    ("malformed", '["{\\"allow\\"', r"^traffic rules: .* is not valid JSON"),
    ("not-array", '{"allow": true}', r"^traffic rules: .* is not a JSON array"),
    ("number-item", "[1]", r"^traffic rule \[0\]: 1 is neither a JSON-encoded rule nor an object"),
    ("bad-second-rule", json.dumps([json.dumps(OK), json.dumps({**OK, "port": 0})]),
     r"^traffic rule \[1\]: port: 0 is outside"),
    ("bad-inner-json", '["{nope"]', r"^traffic rule \[0\]: '\{nope' is not valid JSON"),
]


@pytest.mark.parametrize("text, message", [c[1:] for c in RULES_JSON_ERRORS], ids=[c[0] for c in RULES_JSON_ERRORS])
def test_rules_json_errors_name_the_rule(text, message):
    with pytest.raises(RuleError, match=message):
        parse_rules_json(text)


DESCRIPTIONS = [
    ("to", rule(False, "tcp", port=22, ip_range="10.0.0.0/8", direction="to"),
     "deny tcp 22 from 10.0.0.0/8 (to the VM)"),
    ("from", rule(True, "udp", port=53, ip_range="192.0.2.53", direction="from"),
     "allow udp 53 to 192.0.2.53/32 (from the VM)"),
    ("both-any", rule(False, "ip"), "deny ip to/from anywhere (both ways)"),
]


@pytest.mark.parametrize("the_rule, line", [c[1:] for c in DESCRIPTIONS], ids=[c[0] for c in DESCRIPTIONS])
def test_describe_rule(the_rule, line):
    assert describe_rule(the_rule) == line


# --- ovs-ofctl text (checked by hand against OVS 3.1: `-O OpenFlow13 add-flows` accepts it, and
# `dump-flows --no-stats` prints the same flows, without `table=0`) ----------------------------------

OFCTL = [
    ("from-deny", ingress(32081, "drop", eth_type=IP, ip_proto=6, in_port=3, ipv4_dst=SLASH8, tcp_dst=22),
     f"{COOKIE},table=0,priority=32081,tcp,in_port=3,nw_dst=10.0.0.0/8,tp_dst=22,actions=drop"),
    ("from-allow", ingress(32000, "next", eth_type=IP, ip_proto=6, in_port=3, eth_src=MAC_A, tcp_dst=22),
     f"{COOKIE},table=0,priority=32000,tcp,in_port=3,dl_src={MAC_A},tp_dst=22,actions=goto_table:1"),
    ("to-allow", egress(22320, "normal", eth_type=IP, ip_proto=17, eth_dst=MAC_A, ipv4_src="192.0.2.53", udp_dst=53),
     f"{COOKIE},table=1,priority=22320,udp,dl_dst={MAC_A},nw_src=192.0.2.53,tp_dst=53,actions=NORMAL"),
    ("to-deny", egress(30001, "drop", eth_type=IP, eth_dst=MAC_A),
     f"{COOKIE},table=1,priority=30001,ip,dl_dst={MAC_A},actions=drop"),
    ("icmp-mask", egress(31240, "normal", eth_type=IP, ip_proto=1, eth_dst=MAC_A,
                         ipv4_src=("192.0.2.0", "255.255.255.0")),
     f"{COOKIE},table=1,priority=31240,icmp,dl_dst={MAC_A},nw_src=192.0.2.0/24,actions=NORMAL"),
    ("arp-from", ingress(31081, "drop", eth_type=ARP, in_port=7, arp_tpa=SLASH8),
     f"{COOKIE},table=0,priority=31081,arp,in_port=7,arp_tpa=10.0.0.0/8,actions=drop"),
    ("arp-to", egress(31320, "normal", eth_type=ARP, eth_dst=MAC_A, arp_spa="10.1.2.3"),
     f"{COOKIE},table=1,priority=31320,arp,dl_dst={MAC_A},arp_spa=10.1.2.3,actions=NORMAL"),
    ("port-security-own-mac", ingress(100, "next", in_port=7, eth_src=MAC_A),
     f"{COOKIE},table=0,priority=100,in_port=7,dl_src={MAC_A},actions=goto_table:1"),
    ("port-security-drop", ingress(90, "drop", in_port=7), f"{COOKIE},table=0,priority=90,in_port=7,actions=drop"),
    ("ingress-miss", ingress(0, "next"), f"{COOKIE},table=0,priority=0,actions=goto_table:1"),
    ("egress-miss", egress(0, "normal"), f"{COOKIE},table=1,priority=0,actions=NORMAL"),
]


@pytest.mark.parametrize("the_flow, text", [c[1:] for c in OFCTL], ids=[c[0] for c in OFCTL])
def test_flow_to_ofctl(the_flow, text):
    assert flow_to_ofctl(the_flow) == text


def test_flow_to_ofctl_covers_every_action_in_both_tables():
    assert {(f.table_id, f.action) for _, f, _ in OFCTL} == \
        {(INGRESS_TABLE, "next"), (INGRESS_TABLE, "drop"), (EGRESS_TABLE, "normal"), (EGRESS_TABLE, "drop")}


OFCTL_REFUSED = [
    ("unknown-field", ingress(30000, "drop", eth_type=IP, vlan_vid=5)),
    ("unknown-action", egress(30000, "flood", eth_type=IP)),
    ("next-from-egress", egress(30000, "next", eth_type=IP)),   # goto_table only goes forward
    ("ip-field-without-ip", ingress(30000, "drop", in_port=7, ipv4_dst="10.0.0.1")),
    ("tcp-port-on-udp", ingress(30000, "drop", eth_type=IP, ip_proto=17, tcp_dst=22)),
    ("arp-field-on-ip", egress(30000, "drop", eth_type=IP, arp_spa="10.0.0.1")),
    ("unknown-protocol", ingress(30000, "drop", eth_type=0x86DD)),
    ("table-out-of-range", FlowSpec(priority=1, match=(), action="drop", table_id=255)),
]


@pytest.mark.parametrize("the_flow", [c[1] for c in OFCTL_REFUSED], ids=[c[0] for c in OFCTL_REFUSED])
def test_flow_to_ofctl_refuses_what_it_cannot_write(the_flow):
    with pytest.raises(ValueError, match="cannot write"):
        flow_to_ofctl(the_flow)


# --- properties ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
# Mostly the real keys, with plausible and implausible values, so that most examples get past the key check.
rule_like = st.dictionaries(
    st.sampled_from(RULE_KEYS) | st.text(max_size=8),
    st.sampled_from([True, False, "TCP", "udp", "from/to", "to", "", "10.0.0.0/8", "::1", 22, "22", 0, None])
    | json_values,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(rule_like, st.text(max_size=40), rule_like.map(json.dumps), json_values))
def test_parse_rule_raises_only_rule_error(value):
    try:
        parsed = parse_rule(value)
    except RuleError:
        return
    assert parse_rule(format_rule(parsed)) == parsed


@settings(deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(rule_like.map(json.dumps) | rule_like, max_size=3).map(json.dumps)))
def test_parse_rules_json_raises_only_rule_error(text):
    try:
        parse_rules_json(text)
    except RuleError:
        pass


@st.composite
def valid_rules(draw) -> Rule:
    protocol = draw(st.sampled_from(RULE_PROTOCOLS))
    port = draw(st.none() | st.integers(1, 65535)) if protocol in ("tcp", "udp") else None
    ip_range = draw(st.none() | st.builds(
        lambda addr, prefix: str(ipaddress.IPv4Network((addr, prefix), strict=False)),
        st.integers(0, 2**32 - 1), st.integers(0, 32)))
    return Rule(allow=draw(st.booleans()), protocol=protocol, port=port, ip_range=ip_range,
                direction=draw(st.sampled_from(RULE_DIRECTIONS)))


@settings(deadline=None)
@given(st.lists(valid_rules(), max_size=6))
def test_valid_rules_round_trip(rules):
    assert parse_rules_json(rules_json(rules)) == tuple(rules)
    for r in rules:
        assert parse_rule(format_rule(r)) == r
        assert parse_rule(json.dumps(format_rule(r))) == r


@st.composite
def ports(draw) -> list[VifPort]:
    count = draw(st.integers(0, 6))
    return [VifPort(vif_uuid=f"vif-{i}", network_uuid=draw(st.sampled_from([NET1, NET2])),
                    bridge=draw(st.sampled_from(["xenbr1", "xenbr2", "xapi3"])), ofport=i + 1,
                    mac=f"aa:bb:cc:00:00:{i:02x}") for i in range(count)]


rule_lists = st.lists(valid_rules(), max_size=4)


def _has_rules(port: VifPort, vif_rules, network_rules) -> bool:
    return bool(vif_rules.get(port.vif_uuid)) or bool(network_rules.get(port.network_uuid))


@settings(deadline=None, max_examples=60)
@given(ports(), st.dictionaries(st.sampled_from([f"vif-{i}" for i in range(8)]), rule_lists, max_size=4),
       st.dictionaries(st.sampled_from([NET1, NET2, "net-3"]), rule_lists, max_size=3),
       st.lists(st.sampled_from(["xenbr1", "xapi7"]), max_size=2), st.randoms())
def test_desired_flows_invariants(the_ports, vif_rules, network_rules, bridges, rnd: random.Random):
    out = desired_flows(vif_rules, network_rules, the_ports, bridges)
    shuffled_ports = rnd.sample(the_ports, len(the_ports))
    again = desired_flows({k: list(reversed(v)) for k, v in reversed(vif_rules.items())},
                          dict(reversed(network_rules.items())), shuffled_ports, reversed(bridges))
    assert out == again                                   # deterministic, whatever the input order
    assert set(out) == {p.bridge for p in the_ports} | set(bridges)
    for bridge, flows in out.items():
        assert base_flows() <= flows
        by_priority: dict[tuple[int, int], set[str]] = {}
        for f in flows:
            match = dict(f.match)
            assert f.cookie == SDNCTL_COOKIE
            assert list(f.match) == sorted(f.match)
            assert f.action in {INGRESS_TABLE: ("next", "drop"), EGRESS_TABLE: ("normal", "drop")}[f.table_id]
            if MIN_PRIORITY <= f.priority <= MAX_PRIORITY:   # a rule's flow
                # table 0: the sender's port (and, to allow, its MAC); table 1: the receiver's MAC.
                assert ("in_port" in match) == (f.table_id == INGRESS_TABLE) != ("eth_dst" in match)
                assert ("eth_src" in match) == (f.action == "next")
            else:
                assert f.priority in (PRIORITY_PORT_SECURITY, PRIORITY_PORT_DROP, PRIORITY_ADMIT, PRIORITY_TABLE_MISS)
            flow_to_ofctl(f)
            by_priority.setdefault((f.table_id, f.priority), set()).add(f.action)
        assert all(len(actions) == 1 for actions in by_priority.values())   # equal priority never mixes actions
        for port in (p for p in the_ports if p.bridge == bridge):
            ruled = _has_rules(port, vif_rules, network_rules)
            assert (port_security_flows(port) <= flows) == ruled
            if not ruled:   # admitted as it is: only its admission names its port, nothing its MAC
                assert [f for f in flows if ("in_port", port.ofport) in f.match or ("eth_dst", port.mac) in f.match
                        ] == [admit(port.ofport)]
            else:           # admitted by port security only: never by a MAC-less admission
                assert admit(port.ofport) not in flows


IP_NUMBER = {"icmp": 1, "tcp": 6, "udp": 17}
# Rules and packets drawn from the same few values, so that rules do match the packets.
ADDRESSES = ["10.0.0.5", "10.1.0.9", "192.0.2.7"]
few_rules = st.builds(
    lambda allow, protocol, port, ip_range, direction: rule(
        allow, protocol, port if protocol in ("tcp", "udp") else None, ip_range, direction),
    st.booleans(), st.sampled_from(RULE_PROTOCOLS), st.sampled_from([None, 22, 53]),
    st.sampled_from([None, "10.0.0.0/8", "10.0.0.5", "192.0.2.0/24"]), st.sampled_from(RULE_DIRECTIONS))


@st.composite
def packets(draw, sender: VifPort, receiver: VifPort) -> dict[str, object]:
    protocol = draw(st.sampled_from(["tcp", "udp", "icmp", "arp"]))
    src, dst = draw(st.sampled_from(ADDRESSES)), draw(st.sampled_from(ADDRESSES))
    packet: dict[str, object] = {"in_port": sender.ofport, "eth_src": sender.mac, "eth_dst": receiver.mac}
    if protocol == "arp":
        return {**packet, "eth_type": ARP, "arp_spa": src, "arp_tpa": dst}
    packet.update({"eth_type": IP, "ip_proto": IP_NUMBER[protocol], "ipv4_src": src, "ipv4_dst": dst})
    if protocol != "icmp":
        packet[f"{protocol}_dst"] = draw(st.sampled_from([22, 53, 80]))
    return packet


@settings(deadline=None, max_examples=200)
@given(st.lists(few_rules, max_size=3), st.lists(few_rules, max_size=3), st.lists(few_rules, max_size=1),
       packets(PORT_A, PORT_B), st.sampled_from([False, False, False, True]))
def test_a_frame_passes_only_if_both_the_senders_and_the_receivers_rules_allow_it(
        a_rules, b_rules, net_rules, packet, spoofed):
    """No VM's rules override another's: the verdict is the AND of each side's verdict on its own."""
    if spoofed:
        packet = {**packet, "eth_src": FOREIGN_MAC}

    def verdict(vif_rules: dict, network_rules: dict) -> str:
        return _verdict(desired_flows(vif_rules, network_rules, [PORT_A, PORT_B])["xenbr1"], packet)

    both = verdict({"vif-a": a_rules, "vif-b": b_rules}, {NET1: net_rules})
    sender_side = verdict({"vif-a": a_rules}, {NET1: net_rules})
    receiver_side = verdict({"vif-b": b_rules}, {NET1: net_rules})
    assert (both == "normal") == (sender_side == receiver_side == "normal")
    if spoofed and (a_rules or net_rules):
        assert both == "drop"   # a VIF with rules sends from its own MAC or not at all


# --- Xen Orchestra 6's priority and cookie ---------------------------------------------------------

XO6 = {"allow": False, "protocol": "TCP", "port": 22, "ipRange": "", "direction": "from/to"}


@pytest.mark.parametrize("extra, priority, cookie", [
    ({"priority": 200, "cookie": "0x1f"}, 200, "0x1f"),
    ({"priority": "100"}, 100, None),
    ({"cookie": "ABCDEF0123456789"}, None, "ABCDEF0123456789"),
    ({"priority": None, "cookie": ""}, None, None),
], ids=["both", "priority-as-digits", "cookie-without-0x", "empty"])
def test_xo6_priority_and_cookie_are_read_and_written_back(extra, priority, cookie):
    read = parse_rule({**XO6, **extra})
    assert (read.xo_priority, read.xo_cookie) == (priority, cookie)
    assert parse_rule(format_rule(read)) == read
    # They do not change sdnctl's flows: it orders rules itself (deny before allow, narrower first).
    assert rule_flows(read, PORT_A) == rule_flows(parse_rule(XO6), PORT_A)


@pytest.mark.parametrize("extra, message", [
    ({"priority": 70000}, "priority: 70000 is not an OpenFlow priority"),
    ({"priority": True}, "priority: True is not an OpenFlow priority"),
    ({"priority": "high"}, "priority: 'high' is not an OpenFlow priority"),
    ({"cookie": "0xnothex"}, "cookie: '0xnothex' is not a hex OpenFlow cookie"),
    ({"cookie": 31}, "cookie: 31 is not a hex OpenFlow cookie"),
    ({"cookie": "0x" + "f" * 17}, "is not a hex OpenFlow cookie"),
], ids=["priority-range", "priority-bool", "priority-word", "cookie-not-hex", "cookie-number", "cookie-too-long"])
def test_xo6_priority_and_cookie_errors_say_what_and_how_to_fix(extra, message):
    with pytest.raises(RuleError, match=re.escape(message)):
        parse_rule({**XO6, **extra})
