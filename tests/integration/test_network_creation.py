"""Creation is exact: a new network costs exactly its minimal port set, with no delete and no center change.

Counted from the daemon's own per-host counters (ports added and deleted by its transactions),
in one pool and across pools, for one network and for five created at once.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.conftest import run_cli, tunnel_ports, xapi, xapi_call
from tests.waiting import wait_for


def _counters(daemon) -> tuple[int, int]:
    hosts = daemon.status().get("hosts", {}).values()
    return sum(h.get("ports_added", 0) for h in hosts), sum(h.get("ports_deleted", 0) for h in hosts)


def _create(lab, name: str, vni: int, pools, topology: str, center: str | None) -> list[str]:
    args = [sys.executable, "-m", "sdnctl.cli", "network", "create", "--name", name, "--pif-device", "eth0",
            "--topology", topology, "--vni", str(vni), "--config", str(lab.config_path)]
    for pool in pools:
        args += ["--pool", pool]
    return args + (["--preferred-center", center] if center else [])


@pytest.mark.parametrize("pools,hosts,topology,networks", [
    (1, 3, "star", 1), (2, 3, "star", 1), (2, 3, "mesh", 1), (2, 3, "star", 5),
], ids=["one-pool-star", "cross-pool-star", "cross-pool-mesh", "five-at-once"])
def test_a_new_network_makes_exactly_its_minimal_ports(make_lab, make_daemon, pools, hosts, topology, networks):
    lab = make_lab(pools=pools, hosts=hosts)
    daemon = make_daemon(lab)
    names = [f"p{p}h{h}" for p in range(1, pools + 1) for h in range(1, hosts + 1)]
    wait_for(lambda: len(daemon.status().get("hosts", {})) == len(names), what="every host connected")
    k = len(names)
    minimal = (k * (k - 1) if topology == "mesh" else 2 * (k - 1)) * networks
    center = names[-1]   # the preferred center: the last host, never the lowest uuid by luck
    creates = [subprocess.Popen(_create(lab, f"net{i}", 100 + i, [f"pool{p}" for p in range(1, pools + 1)], topology,
                                        center if topology == "star" else None),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for i in range(networks)]
    for proc in creates:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
    wait_for(lambda: sum(len(tunnel_ports(lab, n)) for n in names) == minimal, timeout=60, what="every port")
    wait_for(lambda: _counters(daemon)[0] >= minimal, what="the daemon's counters")
    assert _counters(daemon) == (minimal, 0)
    if topology == "star":
        uuid = {h["name"]: h["uuid"] for p in lab.status()["pools"] for h in p["hosts"]}[center]
        wait_for(lambda: recorded_centers(lab, pools, networks) == {uuid}, what="the center recorded in every pool")
        statuses = {n["name"]: n["center_name"] for n in daemon.status()["networks"]}
        assert statuses == {f"net{i}": center for i in range(networks)}


def recorded_centers(lab, pools: int, networks: int) -> set[str | None]:
    """Every pool's recorded `sdnctl:center` of every network."""
    found = set()
    for p in range(1, pools + 1):
        session = xapi(lab, f"pool{p}")
        try:
            for i in range(networks):
                ref = session.xenapi.network.get_by_name_label(f"net{i}")[0]
                found.add(session.xenapi.network.get_other_config(ref).get("sdnctl:center"))
        finally:
            session.xenapi.session.logout()
    return found

def test_a_network_whose_create_never_finished_is_built_nowhere_and_said_so(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=2)
    daemon = make_daemon(lab)
    run_cli("network", "create", "--name", "net1", "--pool", "pool1", "--pif-device", "eth0", config=lab.config_path)
    ref = xapi_call(lab, "network.get_by_name_label", "net1")[0]
    wait_for(lambda: len(tunnel_ports(lab, "p1h1")) == 1, what="the network built")
    xapi_call(lab, "network.add_to_other_config", ref, "sdnctl:creating", "true")   # as a create killed mid-way
    shown = wait_for(lambda: next((n for n in daemon.status().get("networks", []) if n.get("creating")), None),
                     what="status saying it is being created")
    assert shown["name"] == "net1"
    assert "being created" in run_cli("status", config=lab.config_path, check=False).stdout
    assert len(tunnel_ports(lab, "p1h1")) == 1   # frozen: what was built stays, nothing is added or deleted
