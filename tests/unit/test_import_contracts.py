"""The import contracts of pyproject.toml bite: a forbidden import in a copy of the core breaks them.

Each case copies the sdnctl source and pyproject.toml into a tmp dir, plants one import, and runs the
venv's lint-imports on the copy (PYTHONPATH and cwd point there, so the installed package is not
what it analyses).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import sdnctl

PACKAGE = Path(sdnctl.__file__).resolve().parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CORE_CONTRACT = next(c["name"] for c in tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
                     if c.get("source_modules") == ["sdnctl.core"])


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(PACKAGE, tmp_path / "sdnctl", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    return tmp_path


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text + "\n")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    # cwd selects the copied pyproject.toml (--config is deprecated in import-linter 2.x).
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=60)


def _direct_time(root: Path) -> tuple[str, ...]:
    _append(root / "sdnctl/core/model.py", "import time")
    return ("sdnctl.core.model -> time",)


def _indirect_socket(root: Path) -> tuple[str, ...]:
    (root / "sdnctl/_wire.py").write_text('"""Not core: free to do I/O."""\nimport socket\n')
    _append(root / "sdnctl/core/topology.py", "from sdnctl import _wire")
    return ("sdnctl.core.topology -> sdnctl._wire (l.", "sdnctl._wire -> socket")


def _xapi_session(root: Path) -> tuple[str, ...]:
    _append(root / "sdnctl/core/flows.py", "import sdnctl.xapi.session")
    return ("sdnctl.core.flows -> sdnctl.xapi.session",)


@pytest.mark.parametrize("plant", [_direct_time, _indirect_socket, _xapi_session],
                         ids=["direct-time", "indirect-socket-via-helper", "core-imports-xapi-session"])
def test_forbidden_import_in_the_core_breaks_the_contract(tmp_path, plant):
    root = _copy(tmp_path)
    chain = plant(root)  # the lines lint-imports must print for the import that broke the contract
    result = _lint_imports(root)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{CORE_CONTRACT} BROKEN" in output, output
    assert all(link in output for link in chain), output


def test_the_unmodified_copy_keeps_the_contract(tmp_path):
    result = _lint_imports(_copy(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"{CORE_CONTRACT} KEPT" in output, output
    assert "BROKEN" not in output


LAYERS_CONTRACT = next(c["name"] for c in tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
                       if c["type"] == "layers")


@pytest.mark.parametrize(("module", "planted"), [
    ("sdnctl/ovsdb/switch.py", "import sdnctl.daemon.agent"),
    ("sdnctl/daemon/tasks.py", "import sdnctl.cli.render"),
    ("sdnctl/core/writeback.py", "import sdnctl.daemon.executor"),
], ids=["adapter-imports-daemon", "daemon-imports-cli", "core-imports-daemon"])
def test_an_import_up_the_layers_breaks_the_layers_contract(tmp_path, module, planted):
    root = _copy(tmp_path)
    _append(root / module, planted)
    result = _lint_imports(root)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and f"{LAYERS_CONTRACT} BROKEN" in output, output
