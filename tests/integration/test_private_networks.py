"""Private networks converge on the real OVSDB of every lab host, and stay converged as pools change."""

from __future__ import annotations

import pytest

from sdnctl.model import tunnel_port_name
from tests.integration.conftest import run_cli, tunnel_ports, xapi
from tests.waiting import wait_for


def hosts_by_name(lab) -> dict[str, dict]:
    return {h["name"]: {**h, "pool": p["name"]} for p in lab.status()["pools"] for h in p["hosts"]}


def transport_ip(lab, host_name: str, device: str) -> str:
    return lab.host(host_name).pif_ips[device]


def expected_ports(lab, net_id: str, names: list[str], topology: str, center: str | None,
                   device: str = "eth0") -> dict[str, dict[str, str]]:
    """host name -> {port name: remote_ip} for a network over these hosts."""
    hosts = hosts_by_name(lab)
    pairs = ([(a, b) for a in names for b in names if a != b] if topology == "mesh"
             else [(center, x) for x in names if x != center] + [(x, center) for x in names if x != center])
    expected: dict[str, dict[str, str]] = {name: {} for name in names}
    for local, remote in pairs:
        expected[local][tunnel_port_name(net_id, hosts[remote]["uuid"])] = transport_ip(lab, remote, device)
    return expected


def observed_ports(lab, names: list[str]) -> dict[str, dict[str, str]]:
    return {name: {port: row["options"]["remote_ip"] for port, row in tunnel_ports(lab, name).items()}
            for name in names}


def converged(lab, expected):
    observed = observed_ports(lab, list(expected))
    assert observed == expected, observed
    return True


def network_id(lab, name: str, pool: str = "pool1") -> str:
    session = xapi(lab, pool)
    try:
        ref = session.xenapi.network.get_by_name_label(name)[0]
        return session.xenapi.network.get_other_config(ref)["sdnctl:private-network-uuid"]
    finally:
        session.xenapi.session.logout()


@pytest.mark.parametrize("encapsulation,topology", [("gre", "star"), ("vxlan", "mesh")], ids=["gre-star", "vxlan-mesh"])
def test_network_converges_in_one_pool(make_lab, make_daemon, encapsulation, topology):
    lab = make_lab(pools=1, hosts=3)
    daemon = make_daemon(lab)
    run_cli("network", "create", "--name", "net1", "--pool", "pool1", "--pif-device", "eth0",
            "--encapsulation", encapsulation, "--topology", topology, "--preferred-center", "p1h2",
            config=lab.config_path)
    net_id = network_id(lab, "net1")
    names = ["p1h1", "p1h2", "p1h3"]
    expected = expected_ports(lab, net_id, names, topology, "p1h2")
    wait_for(lambda: converged(lab, expected), what="tunnel ports", timeout=30)
    row = next(iter(tunnel_ports(lab, "p1h2").values()))
    assert row["type"] == encapsulation
    assert row["options"]["key"] == "1"
    assert row["external_ids"]["sdnctl-network"] == net_id
    assert daemon.proc.poll() is None
