"""The `sdnctl` command: one module per command group, each declaring its own arguments."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

# python-ovs imports eventlet only to check whether it is in use (it is not); silence its notice.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from sdnctl.cli import certs, demo, examples, inventory, lab, network, plan, rule, run, status  # noqa: E402
from sdnctl.errors import SdnctlError  # noqa: E402

# Exit status when stdout's reader went away (`sdnctl status | head`): 128 + SIGPIPE, as the shell reports it.
EXIT_BROKEN_PIPE = 141
EXIT_INTERRUPTED = 130   # 128 + SIGINT


EPILOG = """\
exit status: 0 all good; 1 an error (one line on stderr, with a hint); 2 `plan` has changes pending;
3 `status` found a problem; 130 interrupted; 141 the output's reader went away (`| head`).
Every command's --help has examples; docs/cli.md has the whole picture.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdnctl",
        description="Open vSwitch SDN controller for XCP-ng / XenServer pools: private networks "
                    "(GRE/VXLAN tunnels across hosts and pools), traffic rules, certificates.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (lab, run, network, rule, certs, plan, status, inventory, demo):
        group.register(subparsers)
    examples.apply(parser)
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
    except KeyboardInterrupt:
        print("sdnctl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
