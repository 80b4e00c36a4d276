"""FlowSpecs as OpenFlow 1.3 messages and back, and the diff that decides which flow-mods to send.

The diff compares flows by (priority, match, action), where the match is compared in the switch's
own terms: OXM wire values with the mask applied and an all-ones mask dropped, so that
`ipv4_dst=("10.1.2.3", "255.0.0.0")` equals the `10.0.0.0/8` the switch reports back.

Also the flow monitor (ONF extension 187, what OVS speaks for flow monitoring on an OpenFlow 1.3
connection): the request, the switch's flow updates, and which of them count as drift.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from netaddr import AddrFormatError

from sdnctl.core.model import COOKIE_MASK, EGRESS_TABLE, INGRESS_TABLE, SDNCTL_COOKIE, FlowSpec
from sdnctl.openflow._osken import ofp, ofproto_common, parser
from sdnctl.errors import OpenFlowError

ACTIONS = ("normal", "drop", "next")

MatchKey = tuple[tuple[int, bytes, bytes | None], ...]
FlowKey = tuple[int, int, MatchKey]  # (table, priority, match): what identifies a flow in a switch


def match_key(match: Iterable[tuple[str, object]], *, strict: bool = True) -> MatchKey:
    """The match as the switch holds it: (OXM number, value & mask, mask or None), sorted.

    Not strict (for flows read from a switch): a field os-ken can parse but not encode back
    gets a key of its own instead of failing the sync; no desired flow can equal it.
    """
    fields = []
    for name, value in match:
        try:
            num, raw, mask = ofp.oxm_from_user(name, value)
            if strict and isinstance(value, int) and not isinstance(value, bool) \
                    and ofp.oxm_to_user(num, raw, mask)[1] != value:
                raise ValueError("out of range for the field")   # os-ken packs it modulo the field's width
        except (KeyError, TypeError, ValueError, AttributeError, AddrFormatError) as exc:
            if not strict:
                fields.append((-1, repr((name, value)).encode(), None))
                continue
            raise OpenFlowError(f"match field {name}={value!r} is not a valid OpenFlow 1.3 OXM field: {exc}") from exc
        if mask is not None and all(b == 0xFF for b in mask):
            mask = None
        if mask is not None:
            raw = bytes(v & m for v, m in zip(raw, mask))
        fields.append((num, raw, mask))
    return tuple(sorted(fields))


def flow_key(spec: FlowSpec) -> FlowKey:
    return (spec.table_id, spec.priority, match_key(spec.match))


def validate(desired: Iterable[FlowSpec]) -> dict[FlowKey, FlowSpec]:
    """Index the desired flows by (priority, match); refuse anything the switch could not hold as asked."""
    index: dict[FlowKey, FlowSpec] = {}
    for spec in desired:
        if spec.action not in ACTIONS:
            raise OpenFlowError(f"flow {spec}: action must be one of {ACTIONS}, not {spec.action!r}")
        if spec.cookie & COOKIE_MASK != SDNCTL_COOKIE:
            raise OpenFlowError(f"flow {spec}: cookie {spec.cookie:#x} lacks sdnctl's prefix {SDNCTL_COOKIE:#x}; "
                                "sdnctl could never find that flow again")
        if not 0 <= spec.priority <= 0xFFFF:
            raise OpenFlowError(f"flow {spec}: priority must be 0..65535")
        key = flow_key(spec)
        other = index.get(key)
        if other is not None and other != spec:
            raise OpenFlowError(f"flows {other} and {spec} have the same table, priority and match: "
                                "a switch holds only one of them")
        index[key] = spec
    return index


def observed_spec(stats) -> FlowSpec:
    """A flow from a FLOW_STATS reply, as a FlowSpec (its action "other: ..." if sdnctl never writes it)."""
    return FlowSpec(priority=stats.priority, match=tuple(sorted(stats.match.items())),
                    action=_action_of(stats.instructions), cookie=stats.cookie, table_id=stats.table_id)


def _action_of(instructions) -> str:
    if not instructions:
        return "drop"
    if len(instructions) == 1:
        inst = instructions[0]
        if (isinstance(inst, parser.OFPInstructionActions) and inst.type == ofp.OFPIT_APPLY_ACTIONS
                and len(inst.actions) == 1 and isinstance(inst.actions[0], parser.OFPActionOutput)
                and inst.actions[0].port == ofp.OFPP_NORMAL):
            return "normal"
        if isinstance(inst, parser.OFPInstructionActions) and not inst.actions:
            return "drop"
        if isinstance(inst, parser.OFPInstructionGotoTable) and inst.table_id == EGRESS_TABLE:
            return "next"
    return f"other: {instructions}"


@dataclass(frozen=True)
class FlowPlan:
    """What one sync sends: flows to add and flows to delete (strictly, by sdnctl's cookie).

    `replaced` flows share (priority, match) with an added one whose action differs: the ADD
    overwrites them in place, so no DELETE is sent for them (it would remove the new flow too).
    """

    add: tuple[FlowSpec, ...] = ()
    delete: tuple[FlowSpec, ...] = ()
    replaced: tuple[FlowSpec, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.add or self.delete)


def plan(desired: dict[FlowKey, FlowSpec], observed: Iterable[FlowSpec]) -> FlowPlan:
    """The flow-mods that turn the switch's sdnctl flows (`observed`) into `desired`."""
    seen: dict[FlowKey, FlowSpec] = {}
    for spec in observed:
        seen[(spec.table_id, spec.priority, match_key(spec.match, strict=False))] = spec
    # Egress table first: a goto into a table whose miss flow is not there yet would drop packets.
    # Within a table, highest priority first: rules are in before the admissions below them.
    add = tuple(sorted((spec for key, spec in desired.items() if key not in seen or seen[key].action != spec.action),
                       key=lambda spec: (-spec.table_id, -spec.priority)))
    delete = tuple(spec for key, spec in seen.items() if key not in desired)
    replaced = tuple(spec for key, spec in seen.items() if key in desired and desired[key].action != spec.action)
    return FlowPlan(add=add, delete=delete, replaced=replaced)


def instructions(action: str) -> list:
    if action == "normal":
        return [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(ofp.OFPP_NORMAL, 0)])]
    if action == "next":
        return [parser.OFPInstructionGotoTable(EGRESS_TABLE)]
    return []  # drop: a flow without instructions drops the packet


def flow_add(datapath, spec: FlowSpec):
    return parser.OFPFlowMod(datapath, cookie=spec.cookie, table_id=spec.table_id, command=ofp.OFPFC_ADD,
                             priority=spec.priority, buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY,
                             out_group=ofp.OFPG_ANY, match=parser.OFPMatch(**dict(spec.match)),
                             instructions=instructions(spec.action))


def flow_delete(datapath, spec: FlowSpec):
    """DELETE_STRICT limited to sdnctl's cookie: a foreign flow with the same match is never touched."""
    return parser.OFPFlowMod(datapath, cookie=SDNCTL_COOKIE, cookie_mask=COOKIE_MASK, table_id=spec.table_id,
                             command=ofp.OFPFC_DELETE_STRICT, priority=spec.priority,
                             buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                             match=parser.OFPMatch(**dict(spec.match)))


def flow_purge(datapath, cookie: int):
    """DELETE of every flow, in every table, carrying exactly `cookie`: another controller's leftovers
    (Xen Orchestra's rules). Never one of sdnctl's cookies: those are synced, not purged."""
    if cookie & COOKIE_MASK == SDNCTL_COOKIE:
        raise ValueError(f"cookie {cookie:#x} is sdnctl's own")
    return parser.OFPFlowMod(datapath, cookie=cookie, cookie_mask=0xFFFF_FFFF_FFFF_FFFF, table_id=ofp.OFPTT_ALL,
                             command=ofp.OFPFC_DELETE, buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY,
                             out_group=ofp.OFPG_ANY, match=parser.OFPMatch())


def flow_dump(datapath):
    """FLOW_STATS for every table, only flows carrying sdnctl's cookie prefix."""
    return parser.OFPFlowStatsRequest(datapath, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                      SDNCTL_COOKIE, COOKIE_MASK, parser.OFPMatch())


def describe_error(msg) -> str:
    """An OFPT_ERROR in words: 'OFPET_BAD_MATCH / OFPBMC_BAD_PREREQ'."""
    try:
        return f"{ofp.ofp_error_type_to_str(msg.type)} / {ofp.ofp_error_code_to_str(msg.type, msg.code)}"
    except (KeyError, ValueError, AttributeError):
        return f"type {msg.type} code {msg.code}"


# --- the flow monitor ------------------------------------------------------------------------
ONF_EXPERIMENTER = ofproto_common.ONF_EXPERIMENTER_ID
MONITORED_TABLES = (INGRESS_TABLE, EGRESS_TABLE)   # the only tables sdnctl writes
# No ONFFMF_OWN: the switch reports no change made by sdnctl's own connection, so a sync never
# reads as drift. No ONFFMF_INITIAL (the sync dumps anyway) and no ONFFMF_ACTIONS (not needed).
MONITOR_FLAGS = ofp.ONFFMF_ADD | ofp.ONFFMF_DELETE | ofp.ONFFMF_MODIFY
_UPDATE_FULL = struct.Struct("!HHHHHHHBxQ")   # length, event, reason, priority, idle, hard, match_len, table, cookie


@dataclass(frozen=True)
class FlowUpdate:
    """One change the switch reported: a flow added, deleted or modified (by someone else)."""

    event: int          # ofp.ONFFME_ADDED | ONFFME_DELETED | ONFFME_MODIFIED | ONFFME_ABBREV
    table_id: int = 0
    cookie: int = 0


class _MonitorEntry:
    """One onf_flow_monitor_request: every change in one table, whatever the match.

    os-ken's ONFFlowMonitorRequest leaves out an empty match, which OVS refuses (OFPBMC_BAD_LEN):
    this one always carries the ofp_match header.
    """

    def __init__(self, monitor_id: int, table_id: int, flags: int):
        self.monitor_id, self.table_id, self.flags = monitor_id, table_id, flags

    def serialize(self) -> bytes:
        match = bytearray()
        length = parser.OFPMatch().serialize(match, 0)
        return struct.pack("!IHHIB3x", self.monitor_id, self.flags, length, ofp.OFPP_ANY, self.table_id) + match


def flow_monitor(datapath, flags: int | None = None):
    """ONFST_FLOW_MONITOR for sdnctl's tables: the switch then reports other connections' changes there."""
    flags = MONITOR_FLAGS if flags is None else flags
    return parser.ONFFlowMonitorStatsRequest(datapath, 0, body=[_MonitorEntry(table + 1, table, flags)
                                                                for table in MONITORED_TABLES])


def flow_updates(data: bytes) -> tuple[FlowUpdate, ...]:
    """The flow updates in an ONFST_FLOW_MONITOR reply's body; a malformed one is an OpenFlowError."""
    updates, offset = [], 0
    while offset < len(data):
        if len(data) - offset < 4:
            raise OpenFlowError(f"flow monitor reply: {len(data) - offset} stray byte(s) at its end")
        length, event = struct.unpack_from("!HH", data, offset)
        if length < 8 or length % 8 or offset + length > len(data):
            raise OpenFlowError(f"flow monitor reply: an update of length {length} at byte {offset} "
                                f"of {len(data)}")
        if event == ofp.ONFFME_ABBREV:
            updates.append(FlowUpdate(event))
        elif length < _UPDATE_FULL.size:
            raise OpenFlowError(f"flow monitor reply: a full update of only {length} bytes")
        else:
            fields = _UPDATE_FULL.unpack_from(data, offset)
            updates.append(FlowUpdate(event, table_id=fields[7], cookie=fields[8]))
        offset += length
    return tuple(updates)


def drift(updates: Iterable[FlowUpdate]) -> int:
    """How many updates may have changed sdnctl's flows: any change to a flow with sdnctl's cookie, and
    any foreign ADD or MODIFY in sdnctl's tables (an ADD with another cookie replaces a flow with the same
    match, and is reported as ADDED with the new cookie only). Abbreviated updates are sdnctl's own."""
    return sum(1 for u in updates
               if u.event != ofp.ONFFME_ABBREV and u.table_id in MONITORED_TABLES
               and (u.cookie & COOKIE_MASK == SDNCTL_COOKIE or u.event != ofp.ONFFME_DELETED))
