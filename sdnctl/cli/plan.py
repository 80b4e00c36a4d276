"""`sdnctl plan`: what the daemon would change on each host, changing nothing."""

from __future__ import annotations

import sys

from sdnctl.cli import options, render

EXIT_PENDING = 2   # like `terraform plan -detailed-exitcode`: 0 nothing to do, 1 error, 2 changes pending


def register(subparsers) -> None:
    plan = subparsers.add_parser(
        "plan", help="print what the daemon would change on each host, changing nothing",
        description="Connects to every pool and host like the daemon, computes what it would change (tunnel ports, "
                    "controller rows, RSTP, OpenFlow flows, XAPI writes) and changes nothing. Exit status: 0 nothing "
                    "pending, 2 changes pending, 1 the plan is incomplete (a pool or host did not answer).")
    options.add_config(plan)
    plan.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for pools and hosts")
    plan.add_argument("--json", action="store_true", help="every change per host as JSON (secrets never shown)")
    plan.set_defaults(func=cmd_plan)


def cmd_plan(args) -> int:
    import asyncio

    from sdnctl.daemon.planner import Planner

    config = options.load_config(args)
    report = asyncio.run(Planner(config, args.timeout).run())
    if report.unsynced_pools:
        print(f"cannot plan: pool(s) {', '.join(report.unsynced_pools)} did not answer within {args.timeout:.0f}s; "
              "a plan without them would be wrong", file=sys.stderr)
        return 1
    print(render.plan_json(report) if args.json else render.plan(report))
    if not report.complete:
        return 1
    return EXIT_PENDING if report.changes else 0
