"""Test helpers over the pure flows: one rule's or one port's flows, and flows as `ovs-ofctl` text.

They live here, not in sdnctl.core.flows, because only tests need them: the daemon asks for
every flow of a bridge at once (desired_flows).
"""

from __future__ import annotations

import ipaddress

from sdnctl.core.flows import ETH_TYPE_ARP, ETH_TYPE_IP, _flows, _port_security, _vif_mac, check_rule
from sdnctl.core.model import EGRESS_TABLE, FlowSpec, Rule, VifPort


def rule_flows(rule: Rule, port: VifPort, *, network_rule: bool = False) -> frozenset[FlowSpec]:
    """The flows that enforce one rule on one VIF port (its `from` half in table 0, its `to` half in
    table 1), without the port-security flows; none for a port that cannot carry rules."""
    check_rule(rule)
    mac = _vif_mac(port)
    return frozenset() if mac is None else _flows(rule, port.ofport, mac, network_rule)


def port_security_flows(port: VifPort) -> frozenset[FlowSpec]:
    """Table 0's flows that let a VIF port send from its own MAC only; none for a port that cannot carry rules."""
    mac = _vif_mac(port)
    return frozenset() if mac is None else _port_security(port.ofport, mac)


# --- ovs-ofctl text ---------------------------------------------------------------------------

# OXM name -> ovs-ofctl name, in the order `ovs-ofctl dump-flows` prints the fields.
_OFCTL_FIELDS = {
    "in_port": "in_port", "eth_src": "dl_src", "eth_dst": "dl_dst",
    "arp_spa": "arp_spa", "arp_tpa": "arp_tpa", "ipv4_src": "nw_src", "ipv4_dst": "nw_dst",
    "tcp_dst": "tp_dst", "udp_dst": "tp_dst",
}
# (eth_type, ip_proto) -> ovs-ofctl's protocol keyword ("" for a match without eth_type).
_OFCTL_PROTOCOLS = {(None, None): "", (ETH_TYPE_IP, None): "ip", (ETH_TYPE_IP, 1): "icmp",
                    (ETH_TYPE_IP, 6): "tcp", (ETH_TYPE_IP, 17): "udp", (ETH_TYPE_ARP, None): "arp"}
# A field a switch accepts only with one of these protocols (OpenFlow's prerequisites).
_OFCTL_PREREQUISITES = {
    "arp_spa": {"arp"}, "arp_tpa": {"arp"}, "ipv4_src": {"ip", "icmp", "tcp", "udp"},
    "ipv4_dst": {"ip", "icmp", "tcp", "udp"}, "tcp_dst": {"tcp"}, "udp_dst": {"udp"},
}
_OFCTL_ACTIONS = {"normal": "NORMAL", "drop": "drop", "next": f"goto_table:{EGRESS_TABLE}"}


def _ofctl_value(value: object) -> str:
    if isinstance(value, tuple):
        addr, mask = value
        return f"{addr}/{ipaddress.IPv4Network(f'0.0.0.0/{mask}').prefixlen}"
    return str(value)


def flow_to_ofctl(flow: FlowSpec) -> str:
    """The `ovs-ofctl -O OpenFlow13 add-flow` text of a flow, its match written as `dump-flows` prints it.

    e.g. `cookie=0x5dc1000000000000,table=0,priority=32081,tcp,in_port=3,nw_dst=10.0.0.0/8,tp_dst=22,actions=drop`;
    "next" is `actions=goto_table:1`, which needs OpenFlow 1.1 or later (the bridge must allow OpenFlow13).
    Only the fields and actions desired_flows produces are known; anything else is a ValueError.
    """
    match = dict(flow.match)
    protocol = _OFCTL_PROTOCOLS.get((match.pop("eth_type", None), match.pop("ip_proto", None)))
    unknown = sorted(name for name in match
                     if name not in _OFCTL_FIELDS or protocol not in _OFCTL_PREREQUISITES.get(name, {protocol}))
    # goto_table may only go forward: "next" cannot be written from the egress table or beyond.
    bad_action = flow.action not in _OFCTL_ACTIONS or (flow.action == "next" and flow.table_id >= EGRESS_TABLE)
    if protocol is None or unknown or bad_action or not 0 <= flow.table_id <= 254:
        raise ValueError(f"flow_to_ofctl: cannot write {flow!r} (protocol {protocol!r}, fields {unknown}, "
                         f"action {flow.action!r} in table {flow.table_id})")
    parts = [f"cookie={flow.cookie:#x}", f"table={flow.table_id}", f"priority={flow.priority}"]
    if protocol:
        parts.append(protocol)
    parts += [f"{_OFCTL_FIELDS[name]}={_ofctl_value(match[name])}" for name in _OFCTL_FIELDS if name in match]
    parts.append(f"actions={_OFCTL_ACTIONS[flow.action]}")
    return ",".join(parts)
