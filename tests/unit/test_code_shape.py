"""The house stays habitable: no class in sdnctl over 250 lines, no function over 60."""

from __future__ import annotations

import ast
from pathlib import Path

import sdnctl

MAX_CLASS, MAX_FUNCTION = 250, 60
PACKAGE = Path(sdnctl.__file__).resolve().parent


def _sizes():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                limit = MAX_CLASS if isinstance(node, ast.ClassDef) else MAX_FUNCTION
                yield f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({size} lines)", size, limit


def test_no_class_or_function_outgrows_its_limit():
    too_big = [where for where, size, limit in _sizes() if size > limit]
    assert not too_big, f"split these (classes <= {MAX_CLASS} lines, functions <= {MAX_FUNCTION}): {too_big}"


def test_the_controller_stays_thin():
    (controller,) = [size for where, size, _ in _sizes() if "daemon/controller.py" in where and " Controller " in where]
    assert controller <= 160
