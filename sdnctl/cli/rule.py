"""`sdnctl rule`: OpenFlow traffic rules per VIF or per network (add, delete, list)."""

from __future__ import annotations

from sdnctl.cli import options, render


def register(subparsers) -> None:
    rule = subparsers.add_parser(
        "rule", help="OpenFlow traffic rules per VIF or per network (Xen Orchestra's model)",
        description="Rules are stored in XAPI other_config (sdnctl:of-rules, Xen Orchestra's format; "
                    "xo:sdn-controller:of-rules is read too) and enforced by the daemon over OpenFlow. "
                    "Direction is seen from the VM: from = what it sends, to = what it receives. "
                    "See docs/rules.md for matching and priorities.")
    sub = rule.add_subparsers(dest="rule_command", required=True, metavar="RULE_COMMAND")
    for verb, text, func in (
            ("add", "add a rule (replaces one with the same protocol, port, range, direction)", cmd_add),
            ("delete", "delete the rule with this protocol, port, range and direction", cmd_delete),
            ("list", "list the rules of a VIF or network", cmd_list)):
        parser = sub.add_parser(verb, help=text)
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--vif", help="VIF uuid")
        target.add_argument("--network", help="a network's name (every pool's network of that name), its uuid, "
                                                "or a private network's uuid (as status shows it)")
        if verb == "list":
            parser.add_argument("--json", action="store_true", help="the rules as JSON, one object per rule")
        else:
            action = parser.add_mutually_exclusive_group(required=verb == "add")
            action.add_argument("--allow", dest="allow", action="store_true", default=True, help="forward (NORMAL)")
            action.add_argument("--deny", dest="allow", action="store_false", help="drop")
            parser.add_argument("--protocol", required=True, help="ip, icmp, tcp, udp or arp")
            parser.add_argument("--port", type=int, help="tcp/udp destination port")
            parser.add_argument("--ip-range", help="the other side's CIDR, e.g. 10.0.0.0/8 (default: any)")
            parser.add_argument("--direction", default="both", help="from, to or both (default %(default)s)")
        options.add_config(parser)
        parser.set_defaults(func=func)


def _rule(args):
    from sdnctl.core.flows import parse_rule

    return parse_rule({"allow": args.allow, "protocol": args.protocol, "port": args.port,
                       "ipRange": args.ip_range, "direction": args.direction})


def cmd_add(args) -> int:
    from sdnctl import networks, rules

    rule = _rule(args)
    with networks.Pools(options.load_config(args)) as pools:
        rules.add(pools, rule, vif=args.vif, network=args.network, say=print)
    return 0


def cmd_delete(args) -> int:
    from sdnctl import networks, rules

    rule = _rule(args)
    with networks.Pools(options.load_config(args)) as pools:
        rules.delete(pools, rule, vif=args.vif, network=args.network, say=print)
    return 0


def cmd_list(args) -> int:
    from sdnctl import networks, rules

    with networks.Pools(options.load_config(args)) as pools:
        found = rules.listing(pools, vif=args.vif, network=args.network)
    print(render.rule_list_json(found) if args.json else render.rule_list(found))
    return 0
