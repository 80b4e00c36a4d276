"""Every command's --help has examples, and every `sdnctl ...` example parses with the real parser."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

from sdnctl.cli import build_parser
from sdnctl.cli.examples import EXAMPLES


def _commands(parser: argparse.ArgumentParser, path: str = ""):
    subparsers = parser._subparsers._group_actions if parser._subparsers else ()
    children = [(f"{path} {name}".strip(), sub) for action in subparsers for name, sub in action.choices.items()]
    if not children:
        yield path, parser
    for child_path, sub in children:
        yield from _commands(sub, child_path)


def test_every_command_has_examples_in_its_help():
    commands = dict(_commands(build_parser()))
    assert set(commands) <= set(EXAMPLES), f"no examples for: {sorted(set(commands) - set(EXAMPLES))}"
    for path, parser in commands.items():
        assert "examples:" in parser.format_help(), path


@pytest.mark.parametrize("example", [e for examples in EXAMPLES.values() for e in examples
                                     if e.startswith(("sdnctl ", "sudo sdnctl "))])
def test_each_example_parses(example):
    command = re.split(r"\s(?:\||#|&&|>|\|\|)", example.removeprefix("sudo "))[0]
    args = shlex.split(command)[1:]
    try:
        build_parser().parse_args(args)
    except SystemExit as exc:
        pytest.fail(f"{example!r} does not parse (exit {exc.code})")
