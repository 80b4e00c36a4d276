"""`sdnctl plan`: what the daemon would change on each host, changing nothing."""

from __future__ import annotations

import sys

from sdnctl.cli import options


def register(subparsers) -> None:
    plan = subparsers.add_parser("plan", help="print what the daemon would change on each host, changing nothing")
    options.add_config(plan)
    plan.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for pools and hosts")
    plan.set_defaults(func=cmd_plan)


def cmd_plan(args) -> int:
    """What the daemon would change now, per host, without changing anything."""
    import asyncio

    from sdnctl.reconcile import Controller

    config = options.load_config(args)

    async def main():
        controller = Controller(config, dry_run=True)
        task = asyncio.create_task(controller.run())
        deadline = asyncio.get_running_loop().time() + args.timeout
        while asyncio.get_running_loop().time() < deadline and not task.done():
            ready = controller.pools_synced_once and controller.switches and all(
                uuid in controller.plans or sw.status_error() for uuid, sw in controller.switches.items())
            if ready:
                break
            await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if task.done() and not task.cancelled() and task.exception():
            raise task.exception()
        return controller

    controller = asyncio.run(main())
    unsynced = [w.name for w in controller.watchers.values() if not w.resyncs]
    if unsynced:
        print(f"cannot plan: pool(s) {', '.join(unsynced)} did not answer within {args.timeout:.0f}s; "
              "a plan without them would be wrong", file=sys.stderr)
        return 1
    changes = 0
    for uuid, switch in sorted(controller.switches.items(), key=lambda kv: kv[1].host_name):
        plan = controller.plans.get(uuid)
        if plan is None:
            print(f"{switch.host_name}: unknown ({switch.status_error() or 'not connected'})")
            continue
        if plan.empty:
            print(f"{switch.host_name}: no change")
        for spec in plan.add:
            print(f"{switch.host_name}: + {spec.name} {spec.type} remote_ip={spec.remote_ip} key={spec.key} on {spec.bridge}")
        for spec in plan.modify:
            print(f"{switch.host_name}: ~ {spec.name} {spec.type} remote_ip={spec.remote_ip} key={spec.key}")
        for port in plan.delete:
            print(f"{switch.host_name}: - {port.name} (network {port.network_id})")
        changes += len(plan.add) + len(plan.modify) + len(plan.delete)
    print(f"{changes} change(s) pending")
    return 0
