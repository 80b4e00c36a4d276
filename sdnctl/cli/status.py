"""`sdnctl status`: what the running daemon last wrote to status.json."""

from __future__ import annotations

import argparse
import sys
import time

from sdnctl.cli import options, render


EXIT_PROBLEMS = 3   # a host disconnected, a tunnel missing or down, a pool not synced, a stale daemon

EXAMPLES = """\
exit status: 0 all good; 1 error (no status file, bad config); 3 a problem: a stale status (daemon
stopped?), a pool not synced, a host disconnected, a desired tunnel missing or down, malformed rules.
"""


def register(subparsers) -> None:
    status = subparsers.add_parser("status",
                                   help="show pools, hosts and each network's tunnels (desired vs observed)",
                                   epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_config(status)
    status.add_argument("--json", action="store_true", help="the daemon's full status as JSON")
    status.set_defaults(func=cmd_status)


def cmd_status(args) -> int:
    state = options.read_status(args)
    now = time.time()
    print(render.status_json(state, now) if args.json else render.status(state, now))
    problems = render.status_problems(state, now)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        print(f"sdnctl status: {len(problems)} problem(s): {shown}", file=sys.stderr)
        return EXIT_PROBLEMS
    return 0
