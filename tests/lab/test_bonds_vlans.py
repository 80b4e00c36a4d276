"""Bonds and VLANs in the XAPI simulator, over the wire with the real XenAPI client, and on real OVS."""

from __future__ import annotations

import pytest

from sdnctl.lab.ovshost import OvsHost
from tests.lab.simpool import SimPool, next_subnet
from tests.lab.test_xapi_sim import failure

NULL = "OpaqueRef:NULL"


def pool_with_two_nics(make_sim_pool, backends: list[OvsHost | None], subnet: str) -> SimPool:
    """Hosts h1, h2... with eth1 (an IP) and eth2 (none) besides the management eth0."""
    pool = make_sim_pool(0, subnet=subnet)
    for h, backend in enumerate(backends, 1):
        pool.addresses.append(f"{subnet}.{h}")
        pool.hosts.append(pool.sim.add_host(backend, name=f"h{h}", address=f"{subnet}.{h}",
                                            pifs={"eth1": f"10.{subnet.split('.')[1]}.99.{h}", "eth2": None}))
    return pool


@pytest.fixture
def api(make_sim_pool):
    """A logged-in session to an API-only pool of two hosts with two underlay NICs each."""
    session = pool_with_two_nics(make_sim_pool, [None, None], f"127.77.{next_subnet()}").login()
    yield session.xenapi
    session.xenapi.session.logout()


def pif(api, host_name: str, device: str, vlan: int = -1) -> str:
    host = api.host.get_by_name_label(host_name)[0]
    return next(p for p in api.host.get_PIFs(host) if api.PIF.get_device(p) == device
                and int(api.PIF.get_VLAN(p)) == vlan and not api.PIF.get_tunnel_access_PIF_of(p))


def new_network(api, name: str) -> str:
    return api.network.create({"name_label": name, "name_description": "", "other_config": {}})


def test_bond_create_moves_the_ip_to_a_bond0_master_and_destroy_moves_it_back(api):
    eth1, eth2 = pif(api, "h1", "eth1"), pif(api, "h1", "eth2")
    eth1_before = api.PIF.get_record(eth1)
    network = new_network(api, "bond")
    bond = api.Bond.create(network, [eth1, eth2, eth1], "", "active-backup", {})
    record = api.Bond.get_record(bond)
    master = api.PIF.get_record(record["master"])
    assert sorted(record["slaves"]) == sorted([eth1, eth2])
    assert (record["primary_slave"], record["mode"], record["properties"]) == (eth1, "active-backup", {})
    assert (master["device"], master["network"], master["MAC"], master["VLAN"]) == \
        ("bond0", network, eth1_before["MAC"], "-1")
    assert (master["IP"], master["ip_configuration_mode"], master["currently_attached"], master["MTU"]) == \
        (eth1_before["IP"], "Static", True, "1500")
    assert master["bond_master_of"] == [bond] and not master["physical"]
    for member in (eth1, eth2):
        slave = api.PIF.get_record(member)
        assert (slave["bond_slave_of"], slave["currently_attached"], slave["IP"],
                slave["ip_configuration_mode"]) == (bond, False, "", "None")

    api.Bond.destroy(bond)
    assert api.Bond.get_all() == [] and record["master"] not in api.PIF.get_all()
    eth1_after = api.PIF.get_record(eth1)
    assert (eth1_after["IP"], eth1_after["ip_configuration_mode"], eth1_after["currently_attached"],
            eth1_after["bond_slave_of"]) == (eth1_before["IP"], "Static", True, NULL)


def test_lacp_bonds_get_xapis_default_properties_and_bad_arguments_are_refused(api):
    eth1, eth2 = pif(api, "h1", "eth1"), pif(api, "h1", "eth2")
    assert failure(api.Bond.create, new_network(api, "n1"), [eth1, eth2], "zz", "balance-slb", {}) == \
        ["MAC_INVALID", "zz"]
    assert failure(api.Bond.create, new_network(api, "n2"), [eth1, eth2], "", "roundrobin", {})[:2] == \
        ["INVALID_VALUE", "mode"]
    assert failure(api.Bond.create, new_network(api, "n3"), [eth1, pif(api, "h2", "eth2")], "", "lacp", {}) == \
        ["PIF_CANNOT_BOND_CROSS_HOST"]
    bond = api.Bond.create(new_network(api, "n4"), [eth1, eth2], "02:00:00:00:00:01", "lacp", {"lacp-time": "fast"})
    assert api.Bond.get_properties(bond) == {"hashing_algorithm": "tcpudp_ports", "lacp-time": "fast",
                                             "lacp-fallback-ab": "true"}
    assert api.PIF.get_MAC(api.Bond.get_master(bond)) == "02:00:00:00:00:01"


def test_bond_slaves_refuse_bonds_vlans_tunnels_and_plugs(api):
    eth1, eth2 = pif(api, "h1", "eth1"), pif(api, "h1", "eth2")
    api.PIF.reconfigure_ip(eth2, "Static", "10.9.9.9", "255.255.255.0", "", "")
    assert failure(api.Bond.create, new_network(api, "b0"), [eth1, eth2], "", "balance-slb", {}) == \
        ["PIF_BOND_MORE_THAN_ONE_IP"]
    api.PIF.reconfigure_ip(eth2, "None", "", "", "", "")
    bond = api.Bond.create(new_network(api, "b1"), [eth1, eth2], "", "balance-slb", {})
    other = new_network(api, "b2")
    assert failure(api.Bond.create, other, [eth2], "", "balance-slb", {}) == ["PIF_ALREADY_BONDED", eth2]
    assert failure(api.VLAN.create, eth1, "10", other) == ["CANNOT_ADD_VLAN_TO_BOND_SLAVE", eth1]
    assert failure(api.tunnel.create, eth1, other, "gre") == ["CANNOT_ADD_TUNNEL_TO_BOND_SLAVE", eth1]
    assert failure(api.PIF.plug, eth1) == ["CANNOT_PLUG_BOND_SLAVE", eth1]
    master = api.Bond.get_master(bond)
    tunnel = api.tunnel.create(master, other, "vxlan")                          # Xapi_tunnel.create on a bond master
    assert api.tunnel.get_transport_PIF(tunnel) == master
    assert api.PIF.get_currently_attached(api.tunnel.get_access_PIF(tunnel)) is True


def test_vlan_pifs_carry_the_tag_on_the_tagged_device_and_are_checked_as_xapi_does(api):
    eth1 = pif(api, "h1", "eth1")
    network = new_network(api, "vlan100")
    vlan = api.VLAN.create(eth1, "100", network)
    record = api.VLAN.get_record(vlan)
    untagged = api.PIF.get_record(record["untagged_PIF"])
    assert (record["tagged_PIF"], record["tag"]) == (eth1, "100")
    assert (untagged["device"], untagged["VLAN"], untagged["network"], untagged["MAC"], untagged["VLAN_master_of"],
            untagged["currently_attached"], untagged["IP"]) == \
        ("eth1", "100", network, "fe:ff:ff:ff:ff:ff", vlan, True, "")
    assert api.PIF.get_VLAN_slave_of(eth1) == [vlan]
    spare = new_network(api, "spare")
    assert failure(api.VLAN.create, eth1, "4095", spare) == ["VLAN_TAG_INVALID", "4095"]
    assert failure(api.VLAN.create, eth1, "-1", spare) == ["VLAN_TAG_INVALID", "-1"]
    assert failure(api.VLAN.create, eth1, "100", spare) == ["PIF_VLAN_EXISTS", "eth1"]
    assert failure(api.VLAN.create, record["untagged_PIF"], "200", spare) == ["PIF_IS_VLAN", record["untagged_PIF"]]
    assert failure(api.VLAN.create, pif(api, "h1", "eth2"), "100", network)[0] == "NETWORK_ALREADY_CONNECTED"
    assert failure(api.Bond.create, spare, [record["untagged_PIF"]], "", "balance-slb", {}) == \
        ["PIF_VLAN_EXISTS", "eth1"]
    # A VLAN PIF is a transport once it has an IP (TRANSPORT_PIF_NOT_CONFIGURED before).
    private = new_network(api, "private")
    assert failure(api.tunnel.create, record["untagged_PIF"], private, "gre")[0] == "TRANSPORT_PIF_NOT_CONFIGURED"
    api.PIF.reconfigure_ip(record["untagged_PIF"], "Static", "10.100.0.1", "255.255.255.0", "", "")
    access = api.tunnel.get_access_PIF(api.PIF.get_tunnel_transport_PIF_of(record["untagged_PIF"])[0])
    api.PIF.plug(access)
    assert api.PIF.get_currently_attached(access) is True

    api.tunnel.destroy(api.PIF.get_tunnel_access_PIF_of(access)[0])
    api.VLAN.destroy(vlan)
    assert record["untagged_PIF"] not in api.PIF.get_all() and api.PIF.get_VLAN_slave_of(eth1) == []


def test_a_vlan_on_a_bond_master_has_device_bond0(api):
    bond = api.Bond.create(new_network(api, "b"), [pif(api, "h1", "eth1"), pif(api, "h1", "eth2")], "",
                           "active-backup", {})
    vlan = api.VLAN.create(api.Bond.get_master(bond), "7", new_network(api, "v7"))
    untagged = api.VLAN.get_untagged_PIF(vlan)
    assert (api.PIF.get_device(untagged), api.PIF.get_VLAN(untagged)) == ("bond0", "7")


def test_bonding_a_transport_pif_moves_its_tunnel_to_the_bond_master(api):
    eth1, eth2 = pif(api, "h1", "eth1"), pif(api, "h1", "eth2")
    private = new_network(api, "private")
    old = api.tunnel.create(eth1, private, "gre")
    bond = api.Bond.create(new_network(api, "b"), [eth1, eth2], "", "balance-slb", {})
    master = api.Bond.get_master(bond)
    assert old not in api.tunnel.get_all()                                      # Xapi_bond.move_tunnel
    (moved,) = api.PIF.get_tunnel_transport_PIF_of(master)
    assert api.tunnel.get_protocol(moved) == "gre"
    access = api.tunnel.get_access_PIF(moved)
    assert (api.PIF.get_network(access), api.PIF.get_currently_attached(access)) == (private, True)
    api.Bond.destroy(bond)
    (back,) = api.PIF.get_tunnel_transport_PIF_of(eth1)
    assert api.PIF.get_currently_attached(api.tunnel.get_access_PIF(back)) is True


def test_networkd_makes_an_ovs_bond_port_and_a_vlan_fake_bridge(make_sim_pool, ovs_hosts):
    subnet = f"127.78.{next_subnet()}"
    switch = ovs_hosts("h1", f"{subnet}.1")
    session = pool_with_two_nics(make_sim_pool, [switch], subnet).login()
    api = session.xenapi
    try:
        bond_net = new_network(api, "bond")
        bond = api.Bond.create(bond_net, [pif(api, "h1", "eth1"), pif(api, "h1", "eth2")], "", "active-backup", {})
        bridge = api.network.get_bridge(bond_net)
        assert switch.vsctl("list-ports", bridge).split() == ["bond0"]
        assert switch.vsctl("get", "Port", "bond0", "bond_mode").strip() == "active-backup"
        assert sorted(switch.vsctl("list-ifaces", bridge).split()) == ["eth1", "eth2"]
        assert not {"xenbr1", "xenbr2"} & set(switch.vsctl("list-br").split())    # the slaves' bridges went
        vlan_net = new_network(api, "vlan")
        vlan = api.VLAN.create(api.Bond.get_master(bond), "100", vlan_net)
        fake = api.network.get_bridge(vlan_net)
        assert (switch.vsctl("br-to-parent", fake).strip(), switch.vsctl("br-to-vlan", fake).strip()) == (bridge, "100")
        assert switch.vsctl("br-get-external-id", fake, "xs-network-uuids").strip() == api.network.get_uuid(vlan_net)
        api.VLAN.destroy(vlan)
        assert fake not in switch.vsctl("list-br").split()
        api.Bond.destroy(bond)
        assert bridge not in switch.vsctl("list-br").split()
        assert switch.vsctl("list-ports", "xenbr1").split() == ["eth1"]
    finally:
        api.session.logout()
