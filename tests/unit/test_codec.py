"""sdnctl.openflow.codec: the flow diff that decides which flow-mods a sync sends.

Observed flows go through os-ken's real wire parser: each is packed as an OFPT_MULTIPART_REPLY
flow-stats entry and read back with `OFPFlowStats.parser`, which is what a FLOW_STATS reply becomes
before `observed_spec` sees it. No switch here.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdnctl.core.model import COOKIE_MASK, EGRESS_TABLE, INGRESS_TABLE, SDNCTL_COOKIE, FlowSpec
from sdnctl.errors import OpenFlowError
from sdnctl.openflow import codec
from sdnctl.openflow._osken import ofp, parser

IP, TCP = 0x0800, 6
# OXM numbers as os-ken writes them: (class << 7) | field, class 0x8000 = OFPXMC_OPENFLOW_BASIC.
OXM_IPV4_DST = 0x8000 << 7 | 12


def flow(priority: int = 100, action: str = "drop", *, table: int = INGRESS_TABLE,
         cookie: int = SDNCTL_COOKIE, **match: object) -> FlowSpec:
    return FlowSpec(priority=priority, match=tuple(sorted(match.items())), action=action, cookie=cookie,
                    table_id=table)


# --- a switch's FLOW_STATS entry, through os-ken's wire parser --------------------------------------

def stats_entry(spec: FlowSpec, instructions: Sequence | None = None):
    """The OFPFlowStats os-ken parses from the wire for this flow (its instructions by default)."""
    body = bytearray()
    parser.OFPMatch(**dict(spec.match)).serialize(body, 0)
    body += bytes(-len(body) % 8)
    for inst in codec.instructions(spec.action) if instructions is None else instructions:
        inst.serialize(body, len(body))
    header = struct.pack(ofp.OFP_FLOW_STATS_0_PACK_STR, ofp.OFP_FLOW_STATS_0_SIZE + len(body), spec.table_id,
                         7, 0, spec.priority, 0, 0, 0, spec.cookie, 0, 0)
    return parser.OFPFlowStats.parser(header + bytes(body), 0)


def as_switch_reports(spec: FlowSpec) -> FlowSpec:
    """The flow as a switch reports it back: masks applied to the value, /32 as a plain address."""
    match = []
    for name, value in spec.match:
        if name.startswith("ipv4_") and isinstance(value, tuple):
            net = ipaddress.ip_network(f"{value[0]}/{value[1]}", strict=False)
            value = str(net.network_address) if net.prefixlen == 32 else (str(net.network_address), str(net.netmask))
        match.append((name, value))
    return codec.observed_spec(stats_entry(FlowSpec(priority=spec.priority, match=tuple(match), action=spec.action,
                                                    cookie=spec.cookie, table_id=spec.table_id)))


# --- match_key: the match in the switch's own terms ----------------------------------------------

def test_match_key_applies_the_mask_and_keeps_it():
    assert codec.match_key([("ipv4_dst", ("10.1.2.3", "255.0.0.0"))]) == (
        (OXM_IPV4_DST, bytes([10, 0, 0, 0]), bytes([255, 0, 0, 0])),)


def test_match_key_drops_an_all_ones_mask():
    assert codec.match_key([("ipv4_dst", ("10.1.2.3", "255.255.255.255"))]) == (
        (OXM_IPV4_DST, bytes([10, 1, 2, 3]), None),)


SAME_MATCH = [
    ("masked-value-vs-network", [("ipv4_dst", ("10.1.2.3", "255.0.0.0"))], [("ipv4_dst", ("10.0.0.0", "255.0.0.0"))]),
    ("slash24-host-bits", [("ipv4_src", ("192.0.2.77", "255.255.255.0"))],
     [("ipv4_src", ("192.0.2.0", "255.255.255.0"))]),
    ("all-ones-ipv4-vs-exact", [("ipv4_dst", ("10.1.2.3", "255.255.255.255"))], [("ipv4_dst", "10.1.2.3")]),
    ("all-ones-mac-vs-exact", [("eth_dst", ("AA:BB:CC:00:00:0A", "ff:ff:ff:ff:ff:ff"))],
     [("eth_dst", "aa:bb:cc:00:00:0a")]),
    ("mac-case", [("eth_src", "AA:BB:CC:00:00:0A")], [("eth_src", "aa:bb:cc:00:00:0a")]),
    ("field-order", [("in_port", 3), ("eth_type", IP), ("ip_proto", TCP)],
     [("ip_proto", TCP), ("in_port", 3), ("eth_type", IP)]),
]


@pytest.mark.parametrize("a, b", [c[1:] for c in SAME_MATCH], ids=[c[0] for c in SAME_MATCH])
def test_matches_the_switch_holds_as_one_flow_have_one_key(a, b):
    assert codec.match_key(a) == codec.match_key(b)


DIFFERENT_MATCH = [
    ("slash8-vs-slash16", [("ipv4_dst", ("10.0.0.0", "255.0.0.0"))], [("ipv4_dst", ("10.0.0.0", "255.255.0.0"))]),
    ("masked-vs-exact", [("ipv4_dst", ("10.0.0.0", "255.0.0.0"))], [("ipv4_dst", "10.0.0.0")]),
    ("src-vs-dst", [("ipv4_src", "10.0.0.1")], [("ipv4_dst", "10.0.0.1")]),
    ("other-port", [("in_port", 3)], [("in_port", 4)]),
    ("extra-field", [("in_port", 3)], [("in_port", 3), ("eth_src", "aa:bb:cc:00:00:0a")]),
]


@pytest.mark.parametrize("a, b", [c[1:] for c in DIFFERENT_MATCH], ids=[c[0] for c in DIFFERENT_MATCH])
def test_matches_the_switch_holds_apart_have_different_keys(a, b):
    assert codec.match_key(a) != codec.match_key(b)


UNENCODABLE = [
    ("unknown-field", ("no_such_field", 1)),
    ("port-not-a-number", ("in_port", "three")),
]


@pytest.mark.parametrize("field", [c[1] for c in UNENCODABLE], ids=[c[0] for c in UNENCODABLE])
def test_unencodable_field_is_an_error_when_strict(field):
    with pytest.raises(OpenFlowError, match="not a valid OpenFlow 1.3 OXM field"):
        codec.match_key([field])


@pytest.mark.parametrize("field", [c[1] for c in UNENCODABLE], ids=[c[0] for c in UNENCODABLE])
def test_unencodable_field_gets_a_key_of_its_own_when_not_strict(field):
    key = codec.match_key([("in_port", 3), field], strict=False)
    assert key == codec.match_key([field], strict=False) + codec.match_key([("in_port", 3)])  # sorted: -1 first
    assert key[0][0] == -1
    assert key != codec.match_key([("in_port", 3)])


def test_two_unencodable_flows_stay_apart():
    """Else `plan` would index two switch flows under one key and delete only one of them."""
    odd = [flow(5, "drop", no_such_field=1), flow(5, "drop", no_such_field=2)]
    assert codec.match_key(odd[0].match, strict=False) != codec.match_key(odd[1].match, strict=False)
    assert set(codec.plan({}, odd).delete) == set(odd)


# validate() refuses what the switch could not hold as asked, in the OpenFlowError family.
@pytest.mark.parametrize("field", [("ipv4_dst", "300.1.1.1"), ("eth_src", "zz")], ids=["bad-ipv4", "bad-mac"])
def test_malformed_address_is_an_openflow_error(field):
    with pytest.raises(OpenFlowError):
        codec.match_key([field])


@pytest.mark.parametrize("field", [("tcp_dst", 70000), ("in_port", 2**40)], ids=["tcp-port", "in-port"])
def test_out_of_range_value_is_an_openflow_error(field):
    with pytest.raises(OpenFlowError):
        codec.match_key([field])


# --- validate: what the switch could not hold as asked --------------------------------------------

INVALID = [
    ("unknown-action", [flow(action="flood")], "action must be one of"),
    ("observed-only-action", [flow(action="other: []")], "action must be one of"),
    ("no-cookie", [flow(cookie=0)], "lacks sdnctl's prefix"),
    ("foreign-cookie-prefix", [flow(cookie=0x1234_0000_0000_0001)], "lacks sdnctl's prefix"),
    ("cookie-prefix-in-low-bits", [flow(cookie=SDNCTL_COOKIE >> 16)], "lacks sdnctl's prefix"),
    ("negative-priority", [flow(priority=-1)], r"priority must be 0\.\.65535"),
    ("priority-too-high", [flow(priority=0x10000)], r"priority must be 0\.\.65535"),
    ("bad-match-field", [flow(no_such_field=1)], "not a valid OpenFlow 1.3 OXM field"),
    ("same-key-two-actions", [flow(100, "drop", in_port=3), flow(100, "next", in_port=3)],
     "same table, priority and match"),
    ("same-key-after-masking", [flow(100, "drop", ipv4_dst=("10.1.2.3", "255.0.0.0")),
                                flow(100, "next", ipv4_dst=("10.0.0.0", "255.0.0.0"))],
     "same table, priority and match"),
]


@pytest.mark.parametrize("desired, message", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_validate_refuses(desired, message):
    with pytest.raises(OpenFlowError, match=message):
        codec.validate(desired)


VALID = [
    ("lowest-priority", [flow(priority=0)], 1),
    ("highest-priority", [flow(priority=0xFFFF)], 1),
    ("cookie-low-bits-free", [flow(cookie=SDNCTL_COOKIE | ~COOKIE_MASK & (2**64 - 1))], 1),
    ("identical-twice", [flow(in_port=3), flow(in_port=3)], 1),
    ("same-match-two-tables", [flow(in_port=3, table=INGRESS_TABLE), flow(in_port=3, table=EGRESS_TABLE)], 2),
    ("same-match-two-priorities", [flow(10, in_port=3), flow(11, in_port=3)], 2),
]


@pytest.mark.parametrize("desired, count", [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_validate_indexes_by_flow_key(desired, count):
    index = codec.validate(desired)
    assert len(index) == count
    assert all(key == codec.flow_key(spec) for key, spec in index.items())
    assert set(index.values()) == set(desired)


# --- observed_spec: a switch's instructions back to an action -------------------------------------

NORMAL = parser.OFPActionOutput(ofp.OFPP_NORMAL, 0)
ACTION_CASES = [
    ("apply-normal", [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [NORMAL])], "normal"),
    ("no-instructions", [], "drop"),
    ("apply-nothing", [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [])], "drop"),
    ("clear-actions", [parser.OFPInstructionActions(ofp.OFPIT_CLEAR_ACTIONS, [])], "drop"),
    ("goto-egress", [parser.OFPInstructionGotoTable(EGRESS_TABLE)], "next"),
    ("goto-other-table", [parser.OFPInstructionGotoTable(5)], "other"),
    ("output-port", [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(3, 0)])],
     "other"),
    ("write-normal", [parser.OFPInstructionActions(ofp.OFPIT_WRITE_ACTIONS, [NORMAL])], "other"),
    ("normal-and-output", [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                                        [NORMAL, parser.OFPActionOutput(3, 0)])], "other"),
    ("normal-then-goto", [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [NORMAL]),
                          parser.OFPInstructionGotoTable(EGRESS_TABLE)], "other"),
]


@pytest.mark.parametrize("instructions, action", [c[1:] for c in ACTION_CASES], ids=[c[0] for c in ACTION_CASES])
def test_observed_spec_decodes_the_action(instructions, action):
    spec = flow(200, "drop", table=EGRESS_TABLE, cookie=SDNCTL_COOKIE | 0x42, eth_type=IP, in_port=3)
    observed = codec.observed_spec(stats_entry(spec, instructions))
    if action == "other":
        assert observed.action.startswith("other: ")
        assert observed.action not in codec.ACTIONS
    else:
        assert observed.action == action
    assert (observed.priority, observed.cookie, observed.table_id) == (200, SDNCTL_COOKIE | 0x42, EGRESS_TABLE)
    assert observed.match == (("eth_type", IP), ("in_port", 3))  # sorted by name, as FlowSpec.match is


@pytest.mark.parametrize("action", codec.ACTIONS)
def test_every_action_survives_the_wire(action):
    spec = flow(7, action, in_port=3)
    assert codec.observed_spec(stats_entry(spec)) == spec


def test_switch_reports_masked_flow_as_network_and_plan_is_empty():
    desired = flow(30081, "drop", table=EGRESS_TABLE, eth_type=IP, ipv4_src=("10.1.2.3", "255.0.0.0"))
    observed = codec.observed_spec(stats_entry(flow(30081, "drop", table=EGRESS_TABLE, eth_type=IP,
                                                    ipv4_src=("10.0.0.0", "255.0.0.0"))))
    assert dict(observed.match)["ipv4_src"] == ("10.0.0.0", "255.0.0.0")
    assert codec.plan(codec.validate([desired]), [observed]).empty


# --- plan: added, deleted, replaced ---------------------------------------------------------------

A = flow(100, "next", in_port=3, eth_src="aa:bb:cc:00:00:0a")
A_DROP = flow(100, "drop", in_port=3, eth_src="aa:bb:cc:00:00:0a")
A_PRIO = flow(110, "next", in_port=3, eth_src="aa:bb:cc:00:00:0a")
A_EGRESS = flow(100, "next", table=EGRESS_TABLE, in_port=3, eth_src="aa:bb:cc:00:00:0a")
A_COOKIE = flow(100, "next", cookie=SDNCTL_COOKIE | 1, in_port=3, eth_src="aa:bb:cc:00:00:0a")
A_FOREIGN = FlowSpec(priority=100, match=A.match, action="other: [OFPInstructionGotoTable(table_id=5)]")
B = flow(90, "drop", in_port=3)
ODD = flow(5, "drop", no_such_field=1)   # a field os-ken reads from the switch but cannot encode

PLAN_CASES = [
    # id, desired, observed, add, delete, replaced
    ("in-sync", [A, B], [A, B], [], [], []),
    ("missing", [A, B], [B], [A], [], []),
    ("stale", [B], [A, B], [], [A], []),
    ("nothing-desired", [], [A, B], [], [A, B], []),
    ("action-changed", [A], [A_DROP], [A], [], [A_DROP]),
    ("foreign-action-on-our-key", [A], [A_FOREIGN], [A], [], [A_FOREIGN]),
    ("priority-changed", [A_PRIO], [A], [A_PRIO], [A], []),
    ("table-changed", [A_EGRESS], [A], [A_EGRESS], [A], []),
    ("cookie-low-bits-not-compared", [A], [A_COOKIE], [], [], []),
    ("unencodable-observed-field", [A], [A, ODD], [], [ODD], []),
]


@pytest.mark.parametrize("desired, observed, add, delete, replaced", [c[1:] for c in PLAN_CASES],
                         ids=[c[0] for c in PLAN_CASES])
def test_plan(desired, observed, add, delete, replaced):
    result = codec.plan(codec.validate(desired), observed)
    assert (set(result.add), set(result.delete), set(result.replaced)) == (set(add), set(delete), set(replaced))
    assert len(result.add) == len(add) and len(result.delete) == len(delete)
    assert result.empty == (not add and not delete)


def test_replaced_flows_are_not_deleted():
    """The ADD overwrites the flow in place; a DELETE_STRICT on the same match would remove the new one."""
    result = codec.plan(codec.validate([A]), [A_DROP])
    assert result.delete == ()
    assert {codec.flow_key(s) for s in result.replaced} == {codec.flow_key(s) for s in result.add}


def test_plan_adds_egress_table_first():
    desired = [flow(0, "next", table=INGRESS_TABLE), flow(100, "next", in_port=3), flow(0, "normal", table=EGRESS_TABLE),
               flow(90, "drop", in_port=3), flow(30000, "drop", table=EGRESS_TABLE, in_port=4)]
    add = codec.plan(codec.validate(desired), []).add
    assert set(add) == set(desired)
    assert [s.table_id for s in add] == [EGRESS_TABLE, EGRESS_TABLE, INGRESS_TABLE, INGRESS_TABLE, INGRESS_TABLE]


# --- properties -----------------------------------------------------------------------------------

macs = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b)) \
    .flatmap(lambda mac: st.sampled_from([mac, mac.upper()]))
ipv4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
# A /0 mask is left out: a switch drops a wildcarded field from the match altogether.
prefixes = st.tuples(ipv4, st.integers(1, 32)).map(
    lambda p: (p[0], str(ipaddress.IPv4Network(f"0.0.0.0/{p[1]}").netmask)))


@st.composite
def matches(draw) -> dict[str, object]:
    match: dict[str, object] = {}
    if draw(st.booleans()):
        match["in_port"] = draw(st.integers(1, 0xFEFF))
    if draw(st.booleans()):
        match["eth_src" if draw(st.booleans()) else "eth_dst"] = draw(macs)
    if draw(st.booleans()):
        match["eth_type"] = IP
        for field in ("ipv4_src", "ipv4_dst"):
            if draw(st.booleans()):
                match[field] = draw(st.one_of(ipv4, prefixes))
        if draw(st.booleans()):
            match["ip_proto"] = TCP
            match["tcp_dst"] = draw(st.integers(0, 0xFFFF))
    return match


flow_specs = st.builds(
    lambda priority, action, table, low, match: flow(priority, action, table=table, cookie=SDNCTL_COOKIE | low,
                                                     **match),
    st.integers(0, 0xFFFF), st.sampled_from(codec.ACTIONS), st.sampled_from([INGRESS_TABLE, EGRESS_TABLE]),
    st.integers(0, 2**48 - 1), matches())
flow_sets = st.lists(flow_specs, max_size=8, unique_by=codec.flow_key)


def _tables_descending(specs: Iterable[FlowSpec]) -> bool:
    tables = [s.table_id for s in specs]
    return tables == sorted(tables, reverse=True)


@given(flow_sets)
def test_a_switch_holding_the_desired_flows_needs_nothing(desired):
    observed = [as_switch_reports(s) for s in desired]
    assert codec.plan(codec.validate(desired), observed) == codec.FlowPlan()


@given(flow_sets)
def test_an_empty_switch_gets_every_flow_egress_first(desired):
    result = codec.plan(codec.validate(desired), [])
    assert sorted(result.add, key=codec.flow_key) == sorted(desired, key=codec.flow_key)
    assert _tables_descending(result.add)
    assert result.delete == () and result.replaced == ()


@given(flow_sets)
def test_nothing_desired_deletes_every_observed_flow(desired):
    observed = [as_switch_reports(s) for s in desired]
    result = codec.plan({}, observed)
    assert set(result.delete) == set(observed) and len(result.delete) == len(observed)
    assert result.add == () and result.replaced == ()


@given(flow_sets, st.data())
def test_changed_actions_are_replaced_in_place(desired, data):
    flip = {"drop": "next", "next": "normal", "normal": "drop"}
    changed = data.draw(st.sets(st.sampled_from(range(len(desired))))) if desired else set()
    observed = [as_switch_reports(s) for s in desired]
    new = [FlowSpec(s.priority, s.match, flip[s.action], s.cookie, s.table_id) if i in changed else s
           for i, s in enumerate(desired)]
    result = codec.plan(codec.validate(new), observed)
    assert set(result.add) == {new[i] for i in changed}
    assert set(result.replaced) == {observed[i] for i in changed}
    assert result.delete == ()
    assert _tables_descending(result.add)


# --- the flow monitor: its request, the switch's updates, what counts as drift ------------------------

ADDED, DELETED, MODIFIED, ABBREV = ofp.ONFFME_ADDED, ofp.ONFFME_DELETED, ofp.ONFFME_MODIFIED, ofp.ONFFME_ABBREV


def full_update(event: int, *, table: int = INGRESS_TABLE, cookie: int = SDNCTL_COOKIE, priority: int = 100,
                **match: object) -> bytes:
    """An update as OVS sends it on OpenFlow 1.3 (nx_flow_update_full + ofp_match, no actions)."""
    wire = bytearray()
    length = parser.OFPMatch(**match).serialize(wire, 0)
    head = struct.pack("!HHHHHHHBxQ", 24 + length, event, 0, priority, 0, 0, length, table, cookie)
    return head + bytes(wire)


def abbrev_update(xid: int = 7) -> bytes:
    return struct.pack("!HHI", 8, ABBREV, xid)


def test_flow_updates_reads_each_update_whatever_its_match_length():
    data = (full_update(DELETED, eth_type=IP, ip_proto=TCP, tcp_dst=22)
            + full_update(ADDED, table=EGRESS_TABLE, cookie=0x1234) + abbrev_update()
            + full_update(MODIFIED, eth_type=IP, ipv4_dst=("10.0.0.0", "255.0.0.0")))
    assert codec.flow_updates(data) == (
        codec.FlowUpdate(DELETED, INGRESS_TABLE, SDNCTL_COOKIE), codec.FlowUpdate(ADDED, EGRESS_TABLE, 0x1234),
        codec.FlowUpdate(ABBREV), codec.FlowUpdate(MODIFIED, INGRESS_TABLE, SDNCTL_COOKIE))
    assert codec.flow_updates(b"") == ()


MALFORMED = [
    ("truncated", full_update(ADDED)[:-8], "length"),
    ("zero-length", struct.pack("!HH4x", 0, ADDED), "length 0"),
    ("unaligned", struct.pack("!HH6x", 10, ADDED), "length 10"),
    ("stray-bytes", full_update(ADDED) + b"\0\0", "stray"),
    ("short-full-update", struct.pack("!HH12x", 16, DELETED), "only 16 bytes"),
]


@pytest.mark.parametrize("data, message", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_a_malformed_monitor_reply_is_an_openflow_error(data, message):
    with pytest.raises(OpenFlowError, match=message):
        codec.flow_updates(data)


@given(st.binary(max_size=96))
def test_any_monitor_reply_parses_or_is_an_openflow_error(data):
    try:
        updates = codec.flow_updates(data)
    except OpenFlowError:
        return
    assert all(isinstance(u, codec.FlowUpdate) for u in updates)


DRIFT = [
    ("ours-deleted", codec.FlowUpdate(DELETED, INGRESS_TABLE, SDNCTL_COOKIE), 1),
    ("ours-modified", codec.FlowUpdate(MODIFIED, EGRESS_TABLE, SDNCTL_COOKIE | 0x42), 1),
    ("added-with-our-cookie", codec.FlowUpdate(ADDED, INGRESS_TABLE, SDNCTL_COOKIE), 1),
    ("foreign-add-may-replace-ours", codec.FlowUpdate(ADDED, INGRESS_TABLE, 0x1234), 1),
    ("foreign-modify", codec.FlowUpdate(MODIFIED, EGRESS_TABLE, 0x1234), 1),
    ("foreign-deleted", codec.FlowUpdate(DELETED, INGRESS_TABLE, 0x1234), 0),
    ("cookie-without-our-prefix", codec.FlowUpdate(DELETED, INGRESS_TABLE, SDNCTL_COOKIE >> 1), 0),
    ("another-table", codec.FlowUpdate(DELETED, 5, SDNCTL_COOKIE), 0),
    ("abbreviated-is-our-own", codec.FlowUpdate(ABBREV), 0),
]


@pytest.mark.parametrize("update, count", [c[1:] for c in DRIFT], ids=[c[0] for c in DRIFT])
def test_drift(update, count):
    assert codec.drift([update]) == count
    assert codec.drift([update, update, codec.FlowUpdate(DELETED, 5, SDNCTL_COOKIE)]) == 2 * count


def test_the_monitor_request_watches_sdnctl_tables_without_its_own_changes():
    request = codec.flow_monitor(SimpleNamespace(ofproto=ofp, ofproto_parser=parser))   # what serialize() reads
    request.serialize()
    buf = bytes(request.buf)
    version, msg_type, length = struct.unpack_from("!BBH", buf)
    mp_type, experimenter, exp_type = struct.unpack_from("!H6xII", buf, 8)
    assert (version, msg_type, length, mp_type) == (ofp.OFP_VERSION, ofp.OFPT_MULTIPART_REQUEST, len(buf),
                                                    ofp.OFPMP_EXPERIMENTER)
    assert (experimenter, exp_type) == (codec.ONF_EXPERIMENTER, ofp.ONFMP_FLOW_MONITOR)
    entries, offset = [], 24
    while offset < len(buf):
        monitor_id, flags, match_len, out_port, table = struct.unpack_from("!IHHIB3x", buf, offset)
        match_type, match_length = struct.unpack_from("!HH", buf, offset + 16)
        assert (match_len, match_type, match_length) == (8, ofp.OFPMT_OXM, 4)    # an empty match, header kept
        entries.append((table, flags, out_port))
        offset += 16 + match_len
    assert offset == len(buf)
    flags = ofp.ONFFMF_ADD | ofp.ONFFMF_DELETE | ofp.ONFFMF_MODIFY
    assert entries == [(INGRESS_TABLE, flags, ofp.OFPP_ANY), (EGRESS_TABLE, flags, ofp.OFPP_ANY)]
    assert not flags & (ofp.ONFFMF_OWN | ofp.ONFFMF_INITIAL)
