"""`sdnctl demo`: a data-plane lab, the controller, a cross-pool network, failures; all torn down after."""

from __future__ import annotations

from pathlib import Path

from sdnctl.cli import options


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="the demo: 2 pools x 3 hosts with real packets, the controller, a "
                                              "cross-pool network, a center crash, a host join, a hitless restart")
    options.add_lab(demo)
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from sdnctl.demo import run_demo

    return run_demo(args.octet, Path(args.root))
