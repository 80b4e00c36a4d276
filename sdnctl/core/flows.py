"""PURE: traffic rules (Xen Orchestra's model) -> the OpenFlow 1.3 flows each bridge should carry.

No sockets, clocks or threads here: the shell passes rules, plugged VIF ports and the bridges it
controls in, diffs what comes out against the switch (by cookie) and sends the difference.

The pipeline: two tables (operators' version: docs/rules.md)
------------------------------------------------------------
A frame is forwarded only if its sender's `from` rules (table 0) and its receiver's `to` rules
(table 1) both let it through. A rule applies to its own VIF (a VIF rule) or to every VIF port of
its network (a network rule).

Table 0, ingress (`INGRESS_TABLE`): where the frame comes from, and whether its port is admitted.
* admission: table 0's miss DROPS. A port forwards nothing until sdnctl admits it, so a VIF
  that appears in OVSDB (boot, reboot, replug, migration) is silent until its rules are in place.
  Admitted: the bridge's LOCAL port and every port that is not a guest's (tunnels, XO's
  `xapiN_ifaceK`, NICs, bonds, patch ports) by `in_port` -> `next` (`PRIORITY_ADMIT`); a VIF
  without rules the same way; a VIF with rules through its port-security flow only. A VIF with
  rules that cannot be enforced (malformed in XAPI, or an unusable MAC in OVSDB) and any `vif*`/
  `tap*` port without `xs-vif-uuid` stay unadmitted: fail closed.
* `from` rules (direction `from` or `both`): `in_port` = the VIF's ofport, never the source MAC
  alone (a guest can change its MAC, not the port it is plugged into; XO issue #6153), plus
  `ipv4_dst` = the range (`arp_tpa` for ARP) and `tcp_dst`/`udp_dst` = the port (the remote
  service the VM connects to). allow -> `next` (goto table 1), deny -> `drop`. An allow also
  matches `eth_src` = the VIF's MAC: otherwise a frame from another MAC that an allow covers
  would jump over the port-security flows below it, and the bridge would learn that MAC.
* port security, for every VIF port with at least one rule: `in_port, eth_src=<VIF MAC>` ->
  `next` (priority 100), `in_port` -> `drop` (priority 90). A guest with rules cannot send from
  another MAC, so the bridge never learns one on its port and a new MAC no longer escapes `to`
  rules (which match the MAC). Ethernet source only: not IPs, not ARP payloads (docs/rules.md,
  Limits). VIFs without rules may use any MAC, as before (their admission has no MAC).
* table-miss: priority 0, empty match -> `drop` (a port sdnctl has not admitted).

The flows that admit a port (`admits`: table 0, action `next`) are what the agent holds back until
every other new flow is confirmed on the switch, so a port is never admitted before its rules.

Table 1, egress (`EGRESS_TABLE`): where the frame goes.
* `to` rules (direction `to` or `both`): `eth_dst` = the VIF's MAC as XAPI/OVSDB know it
  (`attached-mac`), trustworthy thanks to port security, plus `ipv4_src` = the range (`arp_spa`
  for ARP) and `tcp_dst`/`udp_dst` = the port (the VM's own service). allow -> `normal`,
  deny -> `drop`.
* table-miss: priority 0, empty match -> `normal`.
* before the port: `to` flows match the MAC only, never the port, so they do not wait for it. Every
  ruled VIF whose VM is resident on or scheduled to be resident on this host (`PlacedVif`, from XAPI's
  `VIF.MAC` and `VM.resident_on` / `scheduled_to_be_resident_on`, which XAPI sets before xenopsd builds
  the domain and plugs its VIFs) gets them on its network's bridge. So unicast to a VIF that boots,
  reboots, is replugged or migrates here meets its `to` rules from the first frame, as long as sdnctl
  saw the scheduling before the port appeared. Bounded: only VMs on or coming to this host. A ruled VIF
  whose XAPI MAC is not unicast is in `rule_errors` (blocked: fail closed).

Broadcast and multicast frames (ARP requests, DHCP) and unicast the bridge floods are not
addressed to the VIF's MAC, so `to` rules do not see them: filter them at the sender (its `from`
rules, or a network rule, which applies to every sender on the network).

The base flows (`base_flows`: both table-miss flows and LOCAL's admission) go on every bridge
sdnctl controls, rules or not. With `fail_mode=secure` (the default) they, and the admissions,
stay in force while sdnctl is away, so rules keep applying; with `standalone`, OVS replaces them
with plain NORMAL once the controller has been gone a few seconds.

Stateless, as in XO: no connection tracking. `deny ip` on `both` also drops the replies to the
VM's own outgoing connections unless an allow covers them.

Priorities (see `rule_priority`), the same in both tables: VIF rules above network rules; within
each, port rules above protocol rules above `ip` rules, then the longer prefix first; deny is
allow + 1, so an allow and a deny with the same match never tie. All rule flows (1000..40000)
are above port security (100, 90), which is above admission (10), above the table-miss flows (0).

Ports OVS failed to set up (ofport < 1) come from OVSDB, not from the operator: they get no flows.
A VIF with rules and an empty or malformed MAC gets none either, so it is not admitted.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sdnctl.errors import RuleError
from sdnctl.core.model import (
    EGRESS_TABLE, INGRESS_TABLE, KEY_PREFIX, RULE_DIRECTIONS, RULE_PROTOCOLS, SDNCTL_COOKIE, XO_PREFIX, BridgePort,
    FlowSpec, Rule, VifPort,
)

# --- rules: parse, validate, format ----------------------------------------------------------

# Where objects carry their rules: sdnctl's key, and Xen Orchestra's (read too, so its rules keep applying).
RULES_KEY = KEY_PREFIX + "of-rules"
XO_RULES_KEY = XO_PREFIX + "of-rules"
# The keys of an XO rule object, in the order XO's own JSON.stringify writes them.
# Xen Orchestra 6 adds `priority` and `cookie` (its host plugin's flow priority and hex cookie).
RULE_KEYS = ("allow", "protocol", "port", "ipRange", "direction", "priority", "cookie")
PORT_PROTOCOLS = ("tcp", "udp")

# XO writes "from/to" for both directions; sdnctl says "both" and writes "from/to" back.
_DIRECTION_ALIASES = {**{d: d for d in RULE_DIRECTIONS}, "from/to": "both"}
_PORT_DIGITS = re.compile(r"[0-9]+")
_COOKIE = re.compile(r"(0x)?[0-9a-f]{1,16}", re.IGNORECASE)
_FIX_PROTOCOL = f"write one of {', '.join(RULE_PROTOCOLS)}"
_FIX_DIRECTION = 'write "from" (traffic the VM sends), "to" (traffic it receives) or "both"'


def _show(value: object) -> str:
    """A value as the operator wrote it, cut short: it goes into a one-line message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(field: str, value: object, problem: str, fix: str) -> RuleError:
    return RuleError(f"traffic rule: {field}: {_show(value)} {problem}; {fix}")


def _parse_allow(value: object) -> bool:
    if not isinstance(value, bool):
        raise _fail("allow", value, "is not true or false", "write true (allow) or false (deny), unquoted")
    return value


def _parse_protocol(value: object) -> str:
    protocol = value.strip().lower() if isinstance(value, str) else None
    if protocol not in RULE_PROTOCOLS:
        raise _fail("protocol", value, "is not a protocol sdnctl knows", _FIX_PROTOCOL)
    return protocol


def _parse_port(value: object, protocol: str) -> int | None:
    if value is None or value == "":
        return None
    if protocol not in PORT_PROTOCOLS:
        raise _fail("port", value, f"is given for protocol {protocol}, which has no ports",
                    "use protocol tcp or udp, or remove the port")
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, str) and _PORT_DIGITS.fullmatch(value.strip()):
        digits = value.strip().lstrip("0") or "0"
        port = int(digits) if len(digits) <= 5 else 65536   # int() of a huge string is slow, or refused
    else:
        raise _fail("port", value, "is not a whole number", "write a port number from 1 to 65535, e.g. 22")
    if not 1 <= port <= 65535:
        raise _fail("port", value, "is outside 1..65535", "write a port number from 1 to 65535")
    return port


def _parse_ip_range(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail("ipRange", value, "is not a string", 'write an IPv4 network such as "10.0.0.0/8", or ""')
    text = value.strip()
    if not text:
        return None
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise _fail("ipRange", value, "is not an IPv4 address or network",
                    'write e.g. "10.0.0.0/8" or "192.0.2.7" (one address)') from None
    if network.version != 4:
        raise _fail("ipRange", value, "is an IPv6 range, which sdnctl rules do not support (IPv4 only)",
                    'write an IPv4 network, or "" for any address')
    return str(network)


def _parse_xo_priority(value: object) -> int | None:
    """XO 6's `priority`: the OpenFlow priority (0..65535) its host plugin gives the rule's flows."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and _PORT_DIGITS.fullmatch(value.strip()) and len(value.strip()) <= 5:
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
        raise _fail("priority", value, "is not an OpenFlow priority", "write a whole number from 0 to 65535, "
                    "or remove it (sdnctl orders its flows itself)")
    return value


def _parse_xo_cookie(value: object) -> str | None:
    """XO 6's `cookie`: the hex OpenFlow cookie its host plugin tags the rule's flows with (kept as written)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _COOKIE.fullmatch(value.strip()):
        raise _fail("cookie", value, "is not a hex OpenFlow cookie", 'write up to 16 hex digits, e.g. "0x1f", '
                    "or remove it")
    return value.strip()


def _parse_direction(value: object) -> str:
    direction = _DIRECTION_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
    if direction is None:
        raise _fail("direction", value, "is not a direction", _FIX_DIRECTION)
    return direction


def parse_rule(value: dict | str) -> Rule:
    """A Rule from an XO rule object (or its JSON text), normalised; RuleError says what is wrong.

    `allow`, `protocol` and `direction` are required; `port`, `ipRange` and XO 6's `priority` and
    `cookie` may be missing, null or "". Unknown keys are errors, not silently ignored.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise RuleError(f"traffic rule: {_show(value)} is not valid JSON; write a JSON object such as "
                            '{"allow": false, "protocol": "tcp", "port": 22, "ipRange": "", "direction": "to"}'
                            ) from None
    if not isinstance(value, dict):
        raise RuleError(f"traffic rule: {_show(value)} is not an object; write a JSON object with the keys "
                        f"{', '.join(RULE_KEYS)}")
    for key in value:
        if key not in RULE_KEYS:
            close = difflib.get_close_matches(str(key), RULE_KEYS, n=1)
            hint = f'did you mean "{close[0]}"?' if close else f"the keys are {', '.join(RULE_KEYS)}"
            raise RuleError(f"traffic rule: key {_show(key)} is unknown; {hint}")
    for key in ("allow", "protocol", "direction"):
        if key not in value:
            fix = {"allow": "add \"allow\": true or false", "protocol": f"add \"protocol\" ({_FIX_PROTOCOL})",
                   "direction": 'add "direction": "from", "to" or "both"'}[key]
            raise RuleError(f"traffic rule: {key} is missing; {fix}")
    allow = _parse_allow(value["allow"])
    protocol = _parse_protocol(value["protocol"])
    port = _parse_port(value.get("port"), protocol)
    ip_range = _parse_ip_range(value.get("ipRange"))
    direction = _parse_direction(value["direction"])
    return Rule(allow=allow, protocol=protocol, port=port, ip_range=ip_range, direction=direction,
                xo_priority=_parse_xo_priority(value.get("priority")), xo_cookie=_parse_xo_cookie(value.get("cookie")))


def _xo_object(rule: Rule) -> dict:
    """The XO object for a rule, without checking it (port left out when None, as XO does)."""
    obj: dict = {"allow": rule.allow,
                 "protocol": rule.protocol.upper() if isinstance(rule.protocol, str) else rule.protocol}
    if rule.port is not None:
        obj["port"] = rule.port
    obj["ipRange"] = "" if rule.ip_range is None else rule.ip_range
    obj["direction"] = "from/to" if rule.direction == "both" else rule.direction
    if rule.xo_priority is not None:
        obj["priority"] = rule.xo_priority
    if rule.xo_cookie is not None:
        obj["cookie"] = rule.xo_cookie
    return obj


def check_rule(rule: Rule) -> Rule:
    """`rule` itself if it is valid and canonical (as parse_rule makes them), else RuleError."""
    canonical = parse_rule(_xo_object(rule))
    if canonical != rule:
        raise RuleError(f"traffic rule: {rule!r} is not in canonical form (it would read back as {canonical!r}); "
                        "build rules with parse_rule()")
    return rule


def format_rule(rule: Rule) -> dict:
    """XO's object for a rule: `{"allow", "protocol" (upper case), ["port"], "ipRange", "direction"}`.

    As XO writes them: no "port" key without a port, "" for any address, "from/to" for both.
    """
    return _xo_object(check_rule(rule))


def parse_rules_json(text: str) -> tuple[Rule, ...]:
    """The rules of an `of-rules` value: a JSON array of JSON-encoded rules (or of rule objects).

    A blank value means no rules. Errors name the rule by its index in the array.
    """
    if not isinstance(text, str):
        raise RuleError(f"traffic rules: {_show(text)} is not a string; "
                        'write a JSON array such as ["{\\"allow\\":true,...}"]')
    if not text.strip():
        return ()
    try:
        items = json.loads(text)
    except (ValueError, RecursionError):
        raise RuleError(f"traffic rules: {_show(text)} is not valid JSON; write a JSON array of rules as Xen Orchestra "
                        'stores them, e.g. ["{\\"allow\\":false,\\"protocol\\":\\"TCP\\",\\"port\\":22,'
                        '\\"ipRange\\":\\"\\",\\"direction\\":\\"to\\"}"]') from None
    if not isinstance(items, list):
        raise RuleError(f"traffic rules: {_show(text)} is not a JSON array; write a JSON array of rules")
    rules = []
    for index, item in enumerate(items):
        if not isinstance(item, (str, dict)):
            raise RuleError(f"traffic rule [{index}]: {_show(item)} is neither a JSON-encoded rule nor an object; "
                            "write each rule as an object or its JSON text")
        try:
            rules.append(parse_rule(item))
        except RuleError as error:
            raise RuleError(str(error).replace("traffic rule:", f"traffic rule [{index}]:", 1)) from None
    return tuple(rules)


def rules_of(other_config: Mapping[str, str]) -> tuple[Rule, ...]:
    """Every rule an object carries (sdnctl's, then Xen Orchestra's); RuleError if malformed."""
    rules: list[Rule] = []
    for key in (RULES_KEY, XO_RULES_KEY):
        if other_config.get(key):
            try:
                rules += [r for r in parse_rules_json(other_config[key]) if r not in rules]
            except RuleError as exc:
                raise RuleError(f"{key}: {exc}") from None
    return tuple(rules)



def rules_json(rules: Iterable[Rule]) -> str:
    """The `of-rules` value for `rules`, byte for byte as XO writes it: a JSON array of JSON strings."""
    return json.dumps([json.dumps(format_rule(rule), separators=(",", ":")) for rule in rules],
                      separators=(",", ":"))


def describe_rule(rule: Rule) -> str:
    """One line for listings, e.g. `deny tcp 22 from 10.0.0.0/8 (to the VM)`."""
    what = f"{'allow' if rule.allow else 'deny'} {rule.protocol}"
    if rule.port is not None:
        what += f" {rule.port}"
    peer = rule.ip_range or "anywhere"
    if rule.direction == "from":
        return f"{what} to {peer} (from the VM)"
    if rule.direction == "to":
        return f"{what} from {peer} (to the VM)"
    return f"{what} to/from {peer} (both ways)"


# --- priorities -------------------------------------------------------------------------------

# Base of each owner's band, and the steps inside one: class * 1000 + prefix length * 10 + deny.
# VIF band 30000..32321, network band 20000..22321: inside 1000..40000, and never 32768 (the
# default priority, which dump-flows leaves out of its output).
PRIORITY_VIF = 30_000
PRIORITY_NETWORK = 20_000
MIN_PRIORITY = 1_000
MAX_PRIORITY = 40_000
# Below every rule flow, above the table-miss flows: a rule decides first, then port security.
PRIORITY_PORT_SECURITY = 100   # table 0: in_port + the VIF's own MAC -> next
PRIORITY_PORT_DROP = 90        # table 0: in_port, any other MAC -> drop
PRIORITY_ADMIT = 10            # table 0: an admitted port without port security (not a ruled VIF) -> next
PRIORITY_TABLE_MISS = 0        # table 0: a port not admitted -> drop; table 1: -> NORMAL
_CLASS = {"ip": 0, "icmp": 1, "tcp": 1, "udp": 1, "arp": 1}


def rule_priority(rule: Rule, *, network_rule: bool = False) -> int:
    """The OpenFlow priority of a rule's flows: the more specific rule wins, deny before allow.

    band (VIF 30000, network 20000) + 1000 x class (2 with a port, 1 icmp/tcp/udp/arp, 0 ip)
    + 10 x prefix length (0 for any address) + 1 for deny.
    """
    klass = 2 if rule.port is not None else _CLASS[rule.protocol]
    prefix = ipaddress.ip_network(rule.ip_range).prefixlen if rule.ip_range else 0
    band = PRIORITY_NETWORK if network_rule else PRIORITY_VIF
    return band + 1000 * klass + 10 * prefix + (0 if rule.allow else 1)


# --- flows ------------------------------------------------------------------------------------

ETH_TYPE_IP = 0x0800
ETH_TYPE_ARP = 0x0806
IP_PROTO = {"icmp": 1, "tcp": 6, "udp": 17}
OFPP_MAX = 0xFF00   # ofports from here up are OpenFlow's reserved ports (LOCAL, NORMAL, ...), never a VIF
OFPP_LOCAL = 0xFFFF_FFFE   # the bridge's own internal port in OpenFlow 1.3 (OVSDB shows it as ofport 65534)
GUEST_PREFIXES = ("vif", "tap")   # XCP-ng's guest interfaces: never admitted as infrastructure

_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")


def admit(ofport: int) -> FlowSpec:
    """Table 0's flow that lets a port's frames on to table 1 (a port with no rules of its own)."""
    return FlowSpec(priority=PRIORITY_ADMIT, match=(("in_port", ofport),), action="next", table_id=INGRESS_TABLE)


def admits(flow: FlowSpec) -> bool:
    """Whether a flow lets frames in at table 0 (an admission, port security's allow, a `from` allow):
    the agent installs these only once every other new flow of the bridge is confirmed."""
    return flow.table_id == INGRESS_TABLE and flow.action == "next"


_BASE_FLOWS = frozenset({
    FlowSpec(priority=PRIORITY_TABLE_MISS, match=(), action="drop", table_id=INGRESS_TABLE),
    admit(OFPP_LOCAL),
    FlowSpec(priority=PRIORITY_TABLE_MISS, match=(), action="normal", table_id=EGRESS_TABLE),
})


def base_flows() -> frozenset[FlowSpec]:
    """What every controlled bridge carries: table 0 miss -> drop, LOCAL admitted, table 1 miss -> normal."""
    return _BASE_FLOWS


def is_guest(port: BridgePort) -> bool:
    """A guest's interface (XCP-ng's `vif<domid>.<devid>` / `tap...`, or any with `xs-vif-uuid`)."""
    return bool(port.vif_uuid) or port.name.startswith(GUEST_PREFIXES)


def infrastructure_ofports(ports: Iterable[BridgePort]) -> dict[str, frozenset[int]]:
    """Bridge -> the ofports to admit as they are: every port that is not a guest's and that OVS set up
    (tunnels, XO's, NICs, bonds, patch ports). LOCAL is admitted by `base_flows`."""
    out: dict[str, set[int]] = {}
    for port in ports:
        if port.bridge and not is_guest(port) and isinstance(port.ofport, int) and 1 <= port.ofport < OFPP_MAX:
            out.setdefault(port.bridge, set()).add(port.ofport)
    return {bridge: frozenset(ofports) for bridge, ofports in out.items()}


def unicast_mac(value: object) -> str | None:
    """`value` as a VIF's MAC in lower case, or None if it cannot be one: not a string, empty, malformed,
    multicast (or broadcast) or all zeros. A `to` rule matches `eth_dst` = this MAC."""
    mac = value.strip().lower() if isinstance(value, str) else ""
    if not _MAC.fullmatch(mac) or int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
        return None
    return mac


def _vif_mac(port: VifPort) -> str | None:
    """The VIF's MAC in lower case, or None if the port cannot carry rules (skipped, not an error:
    ports come from OVSDB): ofport < 1 (OVS failed to set it up), no bridge, or no usable MAC."""
    if not isinstance(port.ofport, int) or not 1 <= port.ofport < OFPP_MAX or not port.bridge:
        return None
    return unicast_mac(port.mac)


@dataclass(frozen=True)
class PlacedVif:
    """A VIF with rules as XAPI describes it (`inventory.placed_vifs`), port or no port: where its VM runs or is
    about to run (`hosts`: `VM.resident_on` and `VM.scheduled_to_be_resident_on`), so that its `to` rules can
    be on that host's bridge before its port appears there. `mac` is XAPI's `VIF.MAC`, checked by the
    inventory ("" if unusable: then the VIF is in `rule_errors` and blocked)."""

    vif_uuid: str
    network_uuid: str
    bridge: str                 # XAPI's network.bridge: the same name on every host of the pool
    mac: str
    hosts: frozenset[str]       # host uuids


def _address(ip_range: str | None) -> str | tuple[str, str] | None:
    """An OXM value for a range: None for any address, "a.b.c.d" for one, (addr, mask) otherwise."""
    if ip_range is None:
        return None
    network = ipaddress.IPv4Network(ip_range)
    if network.prefixlen == 0:
        return None
    if network.prefixlen == 32:
        return str(network.network_address)
    return str(network.network_address), str(network.netmask)


def _rule_matches(rule: Rule) -> list[tuple[str, dict[str, object]]]:
    """(direction, OXM fields) of each flow a rule needs on one port, before the port's own fields."""
    base: dict[str, object] = {"eth_type": ETH_TYPE_ARP if rule.protocol == "arp" else ETH_TYPE_IP}
    if rule.protocol in IP_PROTO:
        base["ip_proto"] = IP_PROTO[rule.protocol]
    if rule.port is not None:
        base[f"{rule.protocol}_dst"] = rule.port
    address = _address(rule.ip_range)
    out = []
    for direction, field in (("from", "arp_tpa" if rule.protocol == "arp" else "ipv4_dst"),
                             ("to", "arp_spa" if rule.protocol == "arp" else "ipv4_src")):
        if rule.direction in (direction, "both"):
            fields = dict(base)
            if address is not None:
                fields[field] = address
            out.append((direction, fields))
    return out


def _flows(rule: Rule, ofport: int | None, mac: str, network_rule: bool) -> frozenset[FlowSpec]:
    """A rule's flows for one VIF; with `ofport` None (no port yet: a PlacedVif) its `to` flows only."""
    priority = rule_priority(rule, network_rule=network_rule)
    flows = []
    for direction, fields in _rule_matches(rule):
        if direction == "from":
            if ofport is None:
                continue
            # The port the frame came in on (a guest cannot change it). An allow also needs the VIF's
            # own MAC, so that no allow lets a frame from another MAC past port security.
            own: dict[str, object] = {"in_port": ofport, "eth_src": mac} if rule.allow else {"in_port": ofport}
            table, action = INGRESS_TABLE, "next" if rule.allow else "drop"
        else:
            # Only the MAC, never the port: the same flows whether or not the port exists yet. Trustworthy:
            # port security stops every other ruled port sending from it.
            own = {"eth_dst": mac}
            table, action = EGRESS_TABLE, "normal" if rule.allow else "drop"
        flows.append(FlowSpec(priority=priority, match=tuple(sorted({**fields, **own}.items())), action=action,
                              cookie=SDNCTL_COOKIE, table_id=table))
    return frozenset(flows)


def _port_security(ofport: int, mac: str) -> frozenset[FlowSpec]:
    return frozenset({
        FlowSpec(priority=PRIORITY_PORT_SECURITY, match=(("eth_src", mac), ("in_port", ofport)), action="next",
                 table_id=INGRESS_TABLE),
        FlowSpec(priority=PRIORITY_PORT_DROP, match=(("in_port", ofport),), action="drop", table_id=INGRESS_TABLE),
    })


def _port_flows(port: VifPort, rules: Sequence[tuple[Rule, bool]], blocked: frozenset[str]) -> set[FlowSpec]:
    """One plugged VIF's flows: nothing if blocked or unusable, its admission without rules, else port security
    and its rules' flows (which admit it)."""
    if port.vif_uuid in blocked or port.network_uuid in blocked:
        return set()
    if not rules:
        return {admit(port.ofport)} if isinstance(port.ofport, int) and 1 <= port.ofport < OFPP_MAX else set()
    mac = _vif_mac(port)
    if mac is None:
        return set()
    flows = set(_port_security(port.ofport, mac))
    for rule, network_rule in rules:
        flows |= _flows(rule, port.ofport, mac, network_rule)
    return flows


def _placed_to_flows(placed: Iterable[PlacedVif], host_uuid: str, ruled: Callable[[str, str], list],
                     blocked: frozenset[str]) -> dict[str, set[FlowSpec]]:
    """Bridge -> the `to` flows of every ruled VIF whose VM is on, or about to be on, `host_uuid`, port or not."""
    out: dict[str, set[FlowSpec]] = {}
    for vif in placed:
        if host_uuid not in vif.hosts or not vif.bridge or vif.vif_uuid in blocked or vif.network_uuid in blocked:
            continue
        mac = unicast_mac(vif.mac)
        rules = ruled(vif.vif_uuid, vif.network_uuid)
        if mac is None or not rules:
            continue
        flows = out.setdefault(vif.bridge, set())
        for rule, network_rule in rules:
            flows |= _flows(rule, None, mac, network_rule)
    return out


def desired_flows(vif_rules: Mapping[str, Sequence[Rule]], network_rules: Mapping[str, Sequence[Rule]],
                  ports: Iterable[VifPort], bridges: Iterable[str] = (), *,
                  infrastructure: Mapping[str, Iterable[int]] | None = None,
                  blocked: Iterable[str] = (), host_uuid: str | None = None,
                  placed: Iterable[PlacedVif] = ()) -> dict[str, frozenset[FlowSpec]]:
    """Every sdnctl flow each bridge should carry: bridge name -> flows.

    Every bridge in `bridges` (those sdnctl controls) or with a port gets `base_flows()` and an
    admission for each of its `infrastructure` ofports (bridge -> ofports, `infrastructure_ofports`).
    A VIF port with at least one rule gets its port-security flows and its rules' flows (and is
    admitted by them only); one without rules is admitted as it is; one whose VIF or network uuid
    is in `blocked` (rules sdnctl cannot read) or whose rules need a MAC it lacks gets nothing, so
    it forwards nothing. `vif_rules` is keyed by VIF uuid, `network_rules` by XAPI network uuid.
    With `host_uuid` (the host these flows are for), every `placed` VIF whose VM is on or about to be on
    that host also gets its `to` flows on its network's bridge, port or not: frames to its MAC meet its
    `to` rules from before its port appears (boot, reboot, replug, migration).
    Raises RuleError if a rule of a port here is not valid and canonical (build them with parse_rule).
    """
    if isinstance(bridges, str):
        raise TypeError(f"desired_flows: bridges must be an iterable of bridge names, not the string {bridges!r}")
    checked: set[Rule] = set()
    blocked = frozenset(blocked)

    def ruled(vif_uuid: str, network_uuid: str) -> list[tuple[Rule, bool]]:
        """(rule, is a network rule) of every rule that applies to the VIF, each checked once."""
        found = [(rule, False) for rule in vif_rules.get(vif_uuid, ())]
        found += [(rule, True) for rule in network_rules.get(network_uuid, ())]
        for rule, _ in found:
            if rule not in checked:
                checked.add(check_rule(rule))
        return found

    out: dict[str, set[FlowSpec]] = {bridge: set(_BASE_FLOWS) for bridge in bridges}
    for bridge, ofports in (infrastructure or {}).items():
        out.setdefault(bridge, set(_BASE_FLOWS)).update(admit(ofport) for ofport in ofports)
    if host_uuid is not None:
        for bridge, flows in _placed_to_flows(placed, host_uuid, ruled, blocked).items():
            out.setdefault(bridge, set(_BASE_FLOWS)).update(flows)
    for port in ports:
        rules = ruled(port.vif_uuid, port.network_uuid)
        if port.bridge:
            out.setdefault(port.bridge, set(_BASE_FLOWS)).update(_port_flows(port, rules, blocked))
    return {bridge: frozenset(flows) for bridge, flows in out.items()}
