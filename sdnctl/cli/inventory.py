"""`sdnctl inventory`: every plugged VIF by network and host, with its port, MAC and the rules in force."""

from __future__ import annotations

import argparse
import difflib

from sdnctl.cli import options, render
from sdnctl.errors import SdnctlError

EXAMPLES = """\
Read from the running daemon's status (what its switches hold), like `ovn-nbctl show`: the answer to
"why can't this VM reach that one" in one command.
"""


def register(subparsers) -> None:
    inventory = subparsers.add_parser(
        "inventory", help="every plugged VIF by network and host: port, MAC, rules in force",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_config(inventory)
    inventory.add_argument("--network", help="only this private network (name or uuid)")
    inventory.add_argument("--host", help="only this host (name or uuid)")
    inventory.add_argument("--vm", help="only this VM (name) or VIF (uuid)")
    inventory.add_argument("--json", action="store_true",
                           help="a list of objects: network, network_id, host, host_uuid, vm, vif, bridge, ofport, "
                                "mac, vif_rules, network_rules, rule_error")
    inventory.set_defaults(func=cmd_inventory)


def _only(rows: list[dict], value: str | None, fields: tuple[str, ...], what: str) -> list[dict]:
    """The rows whose `fields` include `value`; an unknown value is an error naming the candidates."""
    if value is None:
        return rows
    kept = [r for r in rows if value in (r[f] for f in fields)]
    if not kept:
        known = sorted({str(r[fields[0]]) for r in rows if r[fields[0]]})
        close = difflib.get_close_matches(value, known, n=1)
        raise SdnctlError(f"no {what} {value!r} with a plugged VIF" + (f"; did you mean {close[0]!r}?" if close else "")
                          + f" (known: {', '.join(known) or 'none'})")
    return kept


def cmd_inventory(args) -> int:
    rows = render.inventory_rows(options.read_status(args))
    rows = _only(rows, args.network, ("network", "network_id"), "network")
    rows = _only(rows, args.host, ("host", "host_uuid"), "host")
    rows = _only(rows, args.vm, ("vm", "vif"), "VM or VIF")
    print(render.inventory_json(rows) if args.json else render.inventory(rows))
    return 0
