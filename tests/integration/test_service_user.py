"""Files the CLI writes as root for the daemon stay usable by the daemon's own, unprivileged, service user.

A real system user is created for the test and owns the state directory, as systemd's StateDirectory=
makes it. Root then runs `sdnctl certs init` and `sdnctl certs rotate`, and a PSK is rotated, the way
`network create --encrypt` and `network rekey` write one; the user must be able to read every file
(checked as that user, with setpriv), and each secret stays mode 0600.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdnctl.ipsec import PskStore

ROOT = Path("/run/sdnctl-test")


@pytest.fixture
def service_user():
    """A throwaway system user and a state directory it owns (0700); both removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("creating a user needs root")
    name = f"sdnctl-t{os.getpid()}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True,
                   timeout=30)
    state = ROOT / name
    try:
        state.mkdir(parents=True)
        user = pwd.getpwnam(name)
        os.chown(state, user.pw_uid, user.pw_gid)
        os.chmod(state, 0o700)
        yield user, state
    finally:
        shutil.rmtree(state, ignore_errors=True)
        subprocess.run(["userdel", name], check=False, timeout=30)


def readable_by(user: pwd.struct_passwd, path: Path) -> bool:
    result = subprocess.run(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
                             "cat", str(path)], capture_output=True, timeout=30)
    return result.returncode == 0 and len(result.stdout) > 0


def test_files_written_by_root_belong_to_the_service_user(service_user):
    user, state = service_user
    config = state / "sdnctl.toml"
    config.write_text(f'cert_dir = "{state / "certs"}"\nstate_dir = "{state}"\n')
    for command in (["certs", "init"], ["certs", "rotate"]):
        result = subprocess.run([sys.executable, "-m", "sdnctl.cli", *command, "--config", str(config)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    PskStore(state).rotate("0e9d4c2a-1b3f-4c5d-8e7f-a1b2c3d4e5f6")   # as `network rekey` does, as root

    written = [*(state / "certs").iterdir(), *PskStore(state).dir.iterdir()]
    assert {p.name for p in written} >= {"ca-cert.pem", "ca-key.pem", "client-cert.pem", "client-key.pem",
                                         "0e9d4c2a-1b3f-4c5d-8e7f-a1b2c3d4e5f6.psk"}
    for path in [*written, state / "certs", PskStore(state).dir]:
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (user.pw_uid, user.pw_gid), path
    for path in written:
        assert readable_by(user, path), path
        if path.name.endswith((".psk", "-key.pem")):
            assert path.stat().st_mode & 0o777 == 0o600, path
