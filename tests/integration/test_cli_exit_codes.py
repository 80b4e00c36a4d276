"""The CLI's exit codes and error lines, against a real lab and daemon (docs/cli.md).

0 all good, 1 error, 2 `plan` has changes pending, 3 `status` finds a problem; a closed pipe is no
traceback; an unknown pool is an error that names the candidates.
"""

from __future__ import annotations

import subprocess
import sys

from tests.integration.conftest import run_cli, tunnel_ports
from tests.waiting import wait_for


def test_status_exits_0_when_all_is_well_and_3_with_a_disconnected_host(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=2)
    daemon = make_daemon(lab)
    run_cli("network", "create", "--name", "net", "--pool", "pool1", "--pif-device", "eth0", config=lab.config_path)
    wait_for(lambda: all(len(tunnel_ports(lab, h)) == 1 for h in ("p1h1", "p1h2")), what="the star's tunnels")
    result = wait_for(lambda: (r := run_cli("status", config=lab.config_path, check=False)).returncode == 0 and r,
                      what="status exiting 0 once the tunnels are observed")
    assert result.stderr == ""
    wrong = run_cli("network", "show", "nett", config=lab.config_path, check=False)
    assert wrong.returncode == 1 and "did you mean 'net'?" in wrong.stderr and "Traceback" not in wrong.stderr

    lab.host_crash("p1h2")
    result = wait_for(lambda: (r := run_cli("status", config=lab.config_path, check=False)).returncode == 3 and r,
                      what="status exiting 3 with p1h2 down")
    assert "problem(s)" in result.stderr and "p1h2" in result.stderr
    assert daemon.proc.poll() is None


def test_a_closed_pipe_is_no_traceback(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=2)
    daemon = make_daemon(lab)
    wait_for(lambda: daemon.status().get("hosts"), what="a status file")
    # The reader is gone before sdnctl writes a byte: every write meets EPIPE, as `sdnctl status | head` can.
    proc = subprocess.Popen([sys.executable, "-m", "sdnctl.cli", "status", "--config", str(lab.config_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_an_unknown_pool_names_the_candidates(make_lab):
    lab = make_lab(pools=1, hosts=1)
    for command in (("certs", "show"), ("certs", "install")):
        result = run_cli(*command, "--pool", "pool", config=lab.config_path, check=False)
        assert result.returncode == 1
        assert "no pool named 'pool'" in result.stderr and "did you mean 'pool1'?" in result.stderr
        assert "Traceback" not in result.stderr
