"""The `sdnctl` command: one module per command group, each declaring its own arguments."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

# python-ovs imports eventlet only to check whether it is in use (it is not); silence its notice.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from sdnctl.cli import certs, demo, lab, network, plan, rule, run, status  # noqa: E402
from sdnctl.errors import SdnctlError  # noqa: E402

# Exit status when stdout's reader went away (`sdnctl status | head`): 128 + SIGPIPE, as the shell reports it.
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdnctl",
        description="Open vSwitch SDN controller for XCP-ng / XenServer pools: private networks "
                    "(GRE/VXLAN tunnels across hosts and pools), traffic rules, certificates.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (lab, run, network, rule, certs, plan, status, demo):
        group.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # inside: `sdnctl --help | head` writes to the pipe too
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except SdnctlError as exc:
        print(f"sdnctl: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
