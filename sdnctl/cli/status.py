"""`sdnctl status`: what the running daemon last wrote to status.json."""

from __future__ import annotations

import json
import sys
import time

from sdnctl.cli import options, render


def register(subparsers) -> None:
    status = subparsers.add_parser("status",
                                   help="show pools, hosts and each network's tunnels (desired vs observed)")
    options.add_config(status)
    status.add_argument("--json", action="store_true", help="the daemon's full status as JSON")
    status.set_defaults(func=cmd_status)


def cmd_status(args) -> int:
    config = options.load_config(args)
    path = config.state_dir / "status.json"
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        print(f"no status at {path}: is the daemon running (`sdnctl run --config {config.path}`)?", file=sys.stderr)
        return 1
    now = time.time()
    print(render.status_json(state, now) if args.json else render.status(state, now))
    return 0
