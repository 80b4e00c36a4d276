"""network update's preview: which tunnel ports a change adds, deletes and modifies in place (pure)."""

from __future__ import annotations

import pytest

from sdnctl.core.model import ClusterSnapshot, Endpoint, PrivateNetwork
from sdnctl.core.netchange import NetworkChange, changed_network, totals, tunnel_changes


def _ep(n: int, pool: str = "pool1") -> Endpoint:
    return Endpoint(host_uuid=f"h{n}", pool=pool, bridge="xapi1", transport_ip=f"198.18.0.{n}", eligible=True)


def _snapshot(topology="star", encrypted=False, hosts=4, center="h1") -> ClusterSnapshot:
    network = PrivateNetwork(id="n1", name="net1", encapsulation="gre", vni=5, topology=topology,
                             center=center if topology == "star" else None, encrypted=encrypted,
                             endpoints=tuple(_ep(n) for n in range(1, hosts + 1)))
    return ClusterSnapshot(networks=(network,))


@pytest.mark.parametrize("change", [NetworkChange(name="renamed"), NetworkChange(mtu=1400)], ids=["rename", "mtu"])
def test_a_rename_or_an_mtu_change_touches_no_tunnel(change):
    assert tunnel_changes(_snapshot(), "n1", change) == ()
    assert not change.touches_tunnels


@pytest.mark.parametrize("encrypted", [True, False], ids=["on", "off"])
def test_encryption_on_or_off_modifies_every_port_in_place(encrypted):
    changes = tunnel_changes(_snapshot(encrypted=not encrypted), "n1", NetworkChange(encrypted=encrypted))
    assert totals(changes) == {"add": 0, "delete": 0, "modify": 6}   # a 4-host star: 2(K-1) ports


def test_star_to_mesh_keeps_the_centers_ports_and_adds_the_rest():
    changes = tunnel_changes(_snapshot(), "n1", NetworkChange(topology="mesh"))
    # K(K-1) - 2(K-1) new; the center's ports are kept, made split-horizon (protected) in place.
    assert totals(changes) == {"add": 12 - 6, "delete": 0, "modify": 6}


def test_mesh_to_star_deletes_the_spoke_to_spoke_ports():
    snapshot = _snapshot(topology="mesh")
    changes = tunnel_changes(snapshot, "n1", NetworkChange(topology="star"))
    assert totals(changes) == {"add": 0, "delete": 6, "modify": 6}


def test_adding_a_pool_adds_only_the_new_hosts_ports():
    joining = (_ep(11, "pool2"), _ep(12, "pool2"))
    changes = tunnel_changes(_snapshot(), "n1", NetworkChange(add_endpoints=joining))
    assert totals(changes) == {"add": 4, "delete": 0, "modify": 0}   # each new spoke: its port and the center's
    assert {c.host_uuid for c in changes} == {"h1", "h11", "h12"}


def test_removing_a_pool_deletes_only_its_hosts_ports():
    snapshot = _snapshot()
    network = snapshot.networks[0]
    two_pools = ClusterSnapshot(networks=(changed_network(network, NetworkChange(
        add_endpoints=(_ep(11, "pool2"),))),))
    changes = tunnel_changes(two_pools, "n1", NetworkChange(remove_pools=("pool2",)))
    assert totals(changes) == {"add": 0, "delete": 2, "modify": 0}


def test_clearing_the_preferred_center_is_an_empty_string():
    network = changed_network(_snapshot().networks[0], NetworkChange(preferred_center=""))
    assert network.preferred_center is None
    network = changed_network(network, NetworkChange(preferred_center="h3"))
    assert network.preferred_center == "h3"
