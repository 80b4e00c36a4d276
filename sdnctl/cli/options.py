"""Options several commands share: the config file, and which lab (octet, root)."""

from __future__ import annotations

import argparse


def command(sub, name: str, *, help: str, description: str) -> argparse.ArgumentParser:
    """A subcommand whose `description` keeps its own line breaks (its examples: cli/examples.py)."""
    return sub.add_parser(name, help=help, description=description,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_config(parser: argparse.ArgumentParser) -> None:
    from sdnctl.config import default_config_path

    parser.add_argument("--config", default=str(default_config_path()),
                        help="config file (default: $SDNCTL_CONFIG or /etc/sdnctl/sdnctl.toml; now %(default)s)")


def add_lab(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--octet", type=int, default=0,
                        help="second octet of the lab's loopback addresses 127.OCTET.POOL.HOST (default 0); "
                             "labs with different octets can run side by side")
    parser.add_argument("--root", default="/run/sdnctl-lab", help="where labs keep their files (default %(default)s)")


def load_config(args: argparse.Namespace):
    """The config named by --config."""
    from sdnctl.config import load_config as load

    return load(args.config)


def read_status(args: argparse.Namespace) -> dict:
    """The running daemon's status document (status.json in the config's state_dir)."""
    import json

    from sdnctl.errors import SdnctlError

    config = load_config(args)
    path = config.state_dir / "status.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SdnctlError(f"no status at {path}: is the daemon running (`sdnctl run --config {config.path}`)?") \
            from None
