"""sdnctl.flows: XO traffic rules -> exact flows per bridge, their priorities, and the parser's messages.

Pure: no switch here. `_verdict` is a tiny table 0 (highest matching priority wins, else NORMAL)
so that the meaning of a rule set can be checked, not only its flows.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdnctl.errors import RuleError
from sdnctl.flows import (
    MAX_PRIORITY, MIN_PRIORITY, RULE_KEYS, desired_flows, describe_rule, flow_to_ofctl, format_rule,
    parse_rule, parse_rules_json, rule_flows, rule_priority, rules_json,
)
from sdnctl.model import RULE_DIRECTIONS, RULE_PROTOCOLS, SDNCTL_COOKIE, FlowSpec, Rule, VifPort

IP, ARP = 0x0800, 0x0806
MAC_A, MAC_B = "aa:bb:cc:00:00:0a", "aa:bb:cc:00:00:0b"
NET1, NET2 = "net-1", "net-2"
# XAPI gives MACs in either case; flows carry them lower-case, as OVS prints them.
PORT_A = VifPort(vif_uuid="vif-a", network_uuid=NET1, bridge="xenbr1", ofport=7, mac=MAC_A.upper())
PORT_B = VifPort(vif_uuid="vif-b", network_uuid=NET1, bridge="xenbr1", ofport=8, mac=MAC_B)
PORT_C = VifPort(vif_uuid="vif-c", network_uuid=NET2, bridge="xenbr2", ofport=3, mac="aa:bb:cc:00:00:0c")
SLASH8 = ("10.0.0.0", "255.0.0.0")


def rule(allow=True, protocol="ip", port=None, ip_range=None, direction="both") -> Rule:
    return parse_rule({"allow": allow, "protocol": protocol, "port": port, "ipRange": ip_range,
                       "direction": direction})


def flow(priority: int, action: str, **match: object) -> FlowSpec:
    return FlowSpec(priority=priority, match=tuple(sorted(match.items())), action=action)


def flows_of(*rules: Rule, port: VifPort = PORT_A) -> frozenset[FlowSpec]:
    return desired_flows({port.vif_uuid: rules}, {}, [port])[port.bridge]


# --- one rule -> its flows, protocol x direction ----------------------------------------------------

FROM_A = {"in_port": 7}
TO_A = {"eth_dst": MAC_A}

FLOW_CASES = [
    ("ip-from-any", rule(True, "ip", direction="from"),
     {flow(30000, "normal", eth_type=IP, **FROM_A)}),
    ("ip-to-range", rule(False, "ip", ip_range="10.0.0.0/8", direction="to"),
     {flow(30081, "drop", eth_type=IP, ipv4_src=SLASH8, **TO_A)}),
    ("ip-both-host", rule(False, "ip", ip_range="192.0.2.7", direction="both"),
     {flow(30321, "drop", eth_type=IP, ipv4_dst="192.0.2.7", **FROM_A),
      flow(30321, "drop", eth_type=IP, ipv4_src="192.0.2.7", **TO_A)}),
    ("icmp-from-range", rule(False, "icmp", ip_range="192.0.2.0/24", direction="from"),
     {flow(31241, "drop", eth_type=IP, ip_proto=1, ipv4_dst=("192.0.2.0", "255.255.255.0"), **FROM_A)}),
    ("icmp-to-any", rule(True, "icmp", direction="to"),
     {flow(31000, "normal", eth_type=IP, ip_proto=1, **TO_A)}),
    ("icmp-both-any", rule(False, "icmp", direction="both"),
     {flow(31001, "drop", eth_type=IP, ip_proto=1, **FROM_A),
      flow(31001, "drop", eth_type=IP, ip_proto=1, **TO_A)}),
    ("tcp-from-port", rule(True, "tcp", port=443, direction="from"),
     {flow(32000, "normal", eth_type=IP, ip_proto=6, tcp_dst=443, **FROM_A)}),
    ("tcp-to-port-range", rule(False, "tcp", port=22, ip_range="10.0.0.0/8", direction="to"),
     {flow(32081, "drop", eth_type=IP, ip_proto=6, tcp_dst=22, ipv4_src=SLASH8, **TO_A)}),
    ("tcp-both-no-port", rule(True, "tcp", direction="both"),
     {flow(31000, "normal", eth_type=IP, ip_proto=6, **FROM_A),
      flow(31000, "normal", eth_type=IP, ip_proto=6, **TO_A)}),
    ("udp-from-port-host", rule(True, "udp", port=53, ip_range="192.0.2.53/32", direction="from"),
     {flow(32320, "normal", eth_type=IP, ip_proto=17, udp_dst=53, ipv4_dst="192.0.2.53", **FROM_A)}),
    ("udp-to-no-port", rule(False, "udp", direction="to"),
     {flow(31001, "drop", eth_type=IP, ip_proto=17, **TO_A)}),
    ("udp-both-port", rule(False, "udp", port=161, direction="both"),
     {flow(32001, "drop", eth_type=IP, ip_proto=17, udp_dst=161, **FROM_A),
      flow(32001, "drop", eth_type=IP, ip_proto=17, udp_dst=161, **TO_A)}),
    ("arp-from-range", rule(False, "arp", ip_range="10.0.0.0/8", direction="from"),
     {flow(31081, "drop", eth_type=ARP, arp_tpa=SLASH8, **FROM_A)}),
    ("arp-to-host", rule(True, "arp", ip_range="10.1.2.3", direction="to"),
     {flow(31320, "normal", eth_type=ARP, arp_spa="10.1.2.3", **TO_A)}),
    ("arp-both-any", rule(True, "arp", direction="both"),
     {flow(31000, "normal", eth_type=ARP, **FROM_A), flow(31000, "normal", eth_type=ARP, **TO_A)}),
    ("slash0-is-any-address", rule(False, "tcp", port=25, ip_range="0.0.0.0/0", direction="from"),
     {flow(32001, "drop", eth_type=IP, ip_proto=6, tcp_dst=25, **FROM_A)}),
]


@pytest.mark.parametrize("the_rule, expected", [c[1:] for c in FLOW_CASES], ids=[c[0] for c in FLOW_CASES])
def test_one_rule_gives_exactly_these_flows(the_rule, expected):
    assert flows_of(the_rule) == expected
    assert rule_flows(the_rule, PORT_A) == expected


def test_every_protocol_and_direction_is_covered():
    covered = {(r.protocol, r.direction) for _, r, _ in FLOW_CASES}
    assert covered == {(p, d) for p in RULE_PROTOCOLS for d in RULE_DIRECTIONS}


def test_network_rule_flows_are_those_of_a_vif_rule_in_the_network_band():
    deny_ssh = rule(False, "tcp", port=22, direction="to")
    [network_flow] = desired_flows({}, {NET1: [deny_ssh]}, [PORT_A])["xenbr1"]
    assert network_flow == flow(22001, "drop", eth_type=IP, ip_proto=6, tcp_dst=22, **TO_A)


# --- which rules reach which bridge ---------------------------------------------------------------

def test_network_rule_applies_to_every_port_of_its_network_only():
    deny_icmp = rule(False, "icmp", direction="to")
    out = desired_flows({}, {NET1: [deny_icmp]}, [PORT_A, PORT_B, PORT_C])
    assert out == {
        "xenbr1": {flow(21001, "drop", eth_type=IP, ip_proto=1, eth_dst=MAC_A),
                   flow(21001, "drop", eth_type=IP, ip_proto=1, eth_dst=MAC_B)},
        "xenbr2": frozenset(),
    }


def test_rules_without_a_plugged_port_add_nothing_and_every_bridge_with_a_port_appears():
    out = desired_flows({"vif-unplugged": [rule(False)]}, {"net-without-ports": [rule(False)]}, [PORT_C])
    assert out == {"xenbr2": frozenset()}
    assert desired_flows({"vif-a": [rule(False)]}, {}, []) == {}


def test_identical_flows_from_overlapping_rules_collapse():
    both = rule(False, "tcp", port=22, direction="both")
    twice = flows_of(both, both, rule(False, "tcp", port=22, direction="from"))
    assert twice == flows_of(both) and len(twice) == 2


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


def _covers(value: object, address: str) -> bool:
    if isinstance(value, tuple):
        return ipaddress.ip_address(address) in ipaddress.ip_network(f"{value[0]}/{value[1]}")
    return value == address


def _verdict(flows: frozenset[FlowSpec], packet: dict[str, object]) -> str:
    """What table 0 does with a packet: the highest-priority matching flow's action, else NORMAL."""
    matching = [f for f in flows
                if all(name in packet and (_covers(value, packet[name]) if name.startswith(("ipv4", "arp_"))
                                           else packet[name] == value)
                       for name, value in f.match)]
    if not matching:
        return "normal"
    top = max(f.priority for f in matching)
    [action] = {f.action for f in matching if f.priority == top}   # no tie between allow and deny
    return action


def _tcp_from_a(tcp_dst: int, eth_src: str = MAC_A, ipv4_dst: str = "10.9.9.9") -> dict[str, object]:
    return {"in_port": 7, "eth_src": eth_src, "eth_dst": "02:00:00:00:00:01", "eth_type": IP, "ip_proto": 6,
            "ipv4_src": "10.0.0.10", "ipv4_dst": ipv4_dst, "tcp_dst": tcp_dst}


def test_allow_tcp_22_and_deny_ip_let_only_port_22_through():
    flows = flows_of(rule(True, "tcp", port=22, direction="from"), rule(False, "ip", direction="both"))
    assert _verdict(flows, _tcp_from_a(22)) == "normal"
    assert _verdict(flows, _tcp_from_a(80)) == "drop"
    # Stateless: the reply to the VM's own SSH session is IP to the VM, and nothing allows it.
    reply = {"in_port": 1, "eth_dst": MAC_A, "eth_type": IP, "ip_proto": 6, "ipv4_src": "10.9.9.9",
             "ipv4_dst": "10.0.0.10", "tcp_dst": 40000}
    assert _verdict(flows, reply) == "drop"


def test_a_vif_allow_beats_a_network_deny():
    flows = desired_flows({"vif-a": [rule(True, "ip", direction="from")]},
                          {NET1: [rule(False, "tcp", port=22, ip_range="10.9.9.9", direction="from")]},
                          [PORT_A])["xenbr1"]
    assert _verdict(flows, _tcp_from_a(22)) == "normal"


def test_changing_its_mac_does_not_get_a_guest_past_its_from_rules():
    flows = flows_of(rule(False, "tcp", port=25, direction="from"))
    assert all(("in_port", 7) in f.match and not any(n == "eth_src" for n, _ in f.match) for f in flows)
    for mac in (MAC_A, "02:de:ad:be:ef:01", MAC_B):
        assert _verdict(flows, _tcp_from_a(25, eth_src=mac)) == "drop"


def test_known_limit_one_table_lets_a_vms_allow_override_anothers_deny():
    """docs/rules.md, Limits: A's `deny ip (from)` loses to B's more specific `allow tcp 22 (to)`."""
    flows = desired_flows({"vif-a": [rule(False, "ip", direction="from")],
                           "vif-b": [rule(True, "tcp", port=22, direction="to")]}, {}, [PORT_A, PORT_B])["xenbr1"]
    a_to_b = {**_tcp_from_a(22), "eth_dst": MAC_B}
    assert _verdict(flows, a_to_b) == "normal"
    assert _verdict(flows, {**a_to_b, "tcp_dst": 80}) == "drop"


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


# --- ovs-ofctl text (checked by hand against OVS 3.1: add-flow accepts it, dump-flows prints it) -----

OFCTL = [
    ("tcp-from", flow(32081, "drop", eth_type=IP, ip_proto=6, in_port=3, ipv4_dst=SLASH8, tcp_dst=22),
     "cookie=0x5dc1000000000000,priority=32081,tcp,in_port=3,nw_dst=10.0.0.0/8,tp_dst=22,actions=drop"),
    ("udp-to", flow(22320, "normal", eth_type=IP, ip_proto=17, eth_dst=MAC_A, ipv4_src="192.0.2.53", udp_dst=53),
     f"cookie=0x5dc1000000000000,priority=22320,udp,dl_dst={MAC_A},nw_src=192.0.2.53,tp_dst=53,actions=NORMAL"),
    ("ip", flow(30001, "drop", eth_type=IP, in_port=7),
     "cookie=0x5dc1000000000000,priority=30001,ip,in_port=7,actions=drop"),
    ("icmp", flow(31240, "normal", eth_type=IP, ip_proto=1, eth_dst=MAC_A, ipv4_src=("192.0.2.0", "255.255.255.0")),
     f"cookie=0x5dc1000000000000,priority=31240,icmp,dl_dst={MAC_A},nw_src=192.0.2.0/24,actions=NORMAL"),
    ("arp-from", flow(31081, "drop", eth_type=ARP, in_port=7, arp_tpa=SLASH8),
     "cookie=0x5dc1000000000000,priority=31081,arp,in_port=7,arp_tpa=10.0.0.0/8,actions=drop"),
    ("arp-to", flow(31320, "normal", eth_type=ARP, eth_dst=MAC_A, arp_spa="10.1.2.3"),
     f"cookie=0x5dc1000000000000,priority=31320,arp,dl_dst={MAC_A},arp_spa=10.1.2.3,actions=NORMAL"),
]


@pytest.mark.parametrize("the_flow, text", [c[1:] for c in OFCTL], ids=[c[0] for c in OFCTL])
def test_flow_to_ofctl(the_flow, text):
    assert flow_to_ofctl(the_flow) == text


def test_flow_to_ofctl_refuses_what_it_cannot_write():
    with pytest.raises(ValueError, match="cannot write"):
        flow_to_ofctl(flow(30000, "normal", eth_type=IP, vlan_vid=5))


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


@settings(deadline=None)
@given(ports(), st.dictionaries(st.sampled_from([f"vif-{i}" for i in range(8)]), rule_lists, max_size=4),
       st.dictionaries(st.sampled_from([NET1, NET2, "net-3"]), rule_lists, max_size=3), st.randoms())
def test_desired_flows_invariants(the_ports, vif_rules, network_rules, rnd: random.Random):
    out = desired_flows(vif_rules, network_rules, the_ports)
    shuffled_ports = rnd.sample(the_ports, len(the_ports))
    again = desired_flows({k: list(reversed(v)) for k, v in reversed(vif_rules.items())},
                          dict(reversed(network_rules.items())), shuffled_ports)
    assert out == again                                   # deterministic, whatever the input order
    assert set(out) == {p.bridge for p in the_ports}
    by_priority: dict[int, set[str]] = {}
    for flows in out.values():
        for f in flows:
            assert MIN_PRIORITY <= f.priority <= MAX_PRIORITY < 65535
            assert f.cookie == SDNCTL_COOKIE
            assert f.action in ("normal", "drop")
            assert list(f.match) == sorted(f.match)
            assert ("in_port" in dict(f.match)) != ("eth_dst" in dict(f.match))   # from: port; to: MAC
            flow_to_ofctl(f)
            by_priority.setdefault(f.priority, set()).add(f.action)
    assert all(len(actions) == 1 for actions in by_priority.values())   # equal priority never mixes allow/deny
