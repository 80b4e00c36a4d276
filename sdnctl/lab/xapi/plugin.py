"""host.call_plugin, and the one host plugin the lab has: XCP-ng's `sdncontroller.py`.

Modelled on xcp-ng-xapi-plugins' SOURCES/etc/xapi.d/plugins/sdncontroller.py: `add-rule`, `del-rule`
and `dump-flows` run `ovs-ofctl -O OpenFlow11` on the host's bridge. A bad argument or a failing
ovs-ofctl is the plugin's XenAPIPlugin.Failure, which xapi returns as XENAPI_PLUGIN_FAILURE.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.schema import coerce

SDN_PLUGIN = "sdncontroller.py"
_PROTOCOLS = {"tcp", "udp", "icmp", "ip", "arp"}
_WITH_PORTS = {"tcp", "udp"}
_E_PARSER, _E_PARAMS, _E_BUILDER, _E_OVSCALL = 1, 2, 3, 4
_MAC = re.compile(r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}")
_IP_RANGE = re.compile(r"((25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)(/\d{1,2})?")


@api("host.call_plugin")
def call_plugin(ctx: Context, host: Any, plugin: Any, fn: Any, args: Any) -> str:
    """Xapi_plugins.call_plugin on `host`: XENAPI_MISSING_PLUGIN for any plugin but sdncontroller.py."""
    ctx.store.record("host", host)
    args = coerce("map", args, "args")
    if plugin != SDN_PLUGIN:
        raise XapiFailure("XENAPI_MISSING_PLUGIN", plugin)
    ctx.assert_live(host)
    switch = ctx.switch(host)
    if switch is None:
        raise XapiFailure("XENAPI_PLUGIN_FAILURE", "non-zero exit", "", "the host has no switch")
    functions = {"add-rule": _add_rule, "del-rule": _del_rule, "dump-flows": _dump_flows}
    if fn not in functions:
        _fail("UNKNOWN_XENAPI_PLUGIN_FUNCTION", str(fn))
    return functions[fn](switch, args)


def _fail(code: int | str, desc: str) -> None:
    # XenAPIPlugin prints an XML-RPC fault; Xapi_plugins turns it into ["fault"; code; reason].
    raise XapiFailure("XENAPI_PLUGIN_FAILURE", "fault", code, str([desc]))


def _add_rule(switch: Any, args: dict[str, str]) -> str:
    rule = _parse(args, with_verdict=True)
    for flow in _flows(rule):
        _ofctl(switch, "add-flow", rule["bridge"], flow, what="adding rule")
    return json.dumps(True)


def _del_rule(switch: Any, args: dict[str, str]) -> str:
    rule = _parse(args, with_verdict=False)
    for flow in _flows(rule):
        _ofctl(switch, "del-flows", rule["bridge"], flow, what="deleting rule")
    return json.dumps(True)


def _dump_flows(switch: Any, args: dict[str, str]) -> str:
    return json.dumps(_ofctl(switch, "dump-flows", _bridge(args), what="dumping flows"))


def _bridge(args: dict[str, str]) -> str:
    bridge = args.get("bridge")
    if bridge is None:
        _fail(_E_PARSER, "bridge parameter is missing")
    if not re.match(r"\b\w+\d+\b", bridge):
        _fail(_E_PARSER, f"'{bridge}' is not a valid bridge name")
    return bridge


def _parse(args: dict[str, str], *, with_verdict: bool) -> dict[str, Any]:
    """The plugin's Parser: bridge, mac, direction, protocol, iprange, port (and allow, priority)."""
    rule: dict[str, Any] = {"bridge": _bridge(args), "mac": args.get("mac")}
    if rule["mac"] is not None and not _MAC.fullmatch(rule["mac"]):
        _fail(_E_PARSER, f"'{rule['mac']}' is not a valid MAC")
    direction = args.get("direction")
    if direction is None:
        _fail(_E_PARSER, "direction parameter is missing")
    rule["has_to"], rule["has_from"] = "to" in direction.lower().split("/"), "from" in direction.lower().split("/")
    if not (rule["has_to"] or rule["has_from"]):
        _fail(_E_PARSER, f"'{direction}' is not a valid direction")
    rule["protocol"] = (args.get("protocol") or "").lower()
    if rule["protocol"] not in _PROTOCOLS:
        _fail(_E_PARSER, f"'{args.get('protocol')}' is not a supported protocol")
    rule["iprange"] = args.get("iprange")
    if rule["iprange"] is None or not _IP_RANGE.fullmatch(rule["iprange"]):
        _fail(_E_PARSER, f"'{rule['iprange']}' is not a valid IP range")
    rule["port"] = _number(args, "port")
    if with_verdict:
        if args.get("allow", "").lower() not in ("true", "false"):
            _fail(_E_PARSER, f"allow parameter should be true or false, not '{args.get('allow')}'")
        rule["allow"] = args["allow"].lower() == "true"
        rule["priority"] = _number(args, "priority")
    if rule["protocol"] in _WITH_PORTS and not rule["port"]:
        _fail(_E_PARAMS, "No port provided, tcp and udp requires one")
    return rule


def _number(args: dict[str, str], key: str) -> str | None:
    value = args.get(key)
    if value is not None and not (value.isdigit() and 0 <= int(value) <= 65535):
        _fail(_E_PARSER, f"'{value}' is not a valid {key}")
    return value


def _flows(rule: dict[str, Any]) -> list[str]:
    """build_rules_string: `from` matches traffic to the VIF's MAC from the range, `to` the reverse."""
    flows = []
    for wanted, mac_field, ip_field, port_field in ((rule["has_from"], "dl_dst", "nw_src", "tp_src"),
                                                    (rule["has_to"], "dl_src", "nw_dst", "tp_dst")):
        if not wanted:
            continue
        flow = f"priority={rule['priority']}," if rule.get("priority") else ""
        flow += rule["protocol"]
        flow += f",{mac_field}={rule['mac']}" if rule["mac"] else ""
        flow += f",{ip_field}={rule['iprange']}"
        flow += f",{port_field}={rule['port']}" if rule["protocol"] in _WITH_PORTS else ""
        flow += f",actions={'normal' if rule['allow'] else 'drop'}" if "allow" in rule else ""
        flows.append(flow)
    if not flows:
        _fail(_E_BUILDER, "No rules were build")
    return flows


def _ofctl(switch: Any, command: str, bridge: str, *flow: str, what: str) -> dict[str, Any]:
    """ovs-ofctl -O OpenFlow11 on the host's bridge (its management socket in the lab)."""
    argv = ["ovs-ofctl", "-O", "OpenFlow11", command, switch.mgmt(bridge), *flow]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    shown = ["ovs-ofctl", "-O", "OpenFlow11", command, bridge, *flow]
    if done.returncode != 0:
        _fail(_E_OVSCALL, f"Error {what}: {shown}: {done.stderr}")
    return {"returncode": done.returncode, "command": shown, "stdout": done.stdout, "stderr": done.stderr}
