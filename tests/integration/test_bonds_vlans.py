"""Private networks whose transport is a bond master on one host and a NIC on another, or VLAN PIFs on
either: the daemon tunnels between each host's own transport IP, and guests ping across real OVS bonds
and 802.1Q tags on the lab's underlay."""

from __future__ import annotations

import subprocess

import pytest

from sdnctl.lab.netns import run
from tests.integration.conftest import run_cli, tunnel_ports, xapi
from tests.integration.test_dataplane import boot_guest, ping
from tests.integration.test_private_networks import network_id
from tests.waiting import wait_for

# network -> (--vlan, the transport IPs of p1h1 and p1h2, the guests' IPs on p1h1 and p1h2)
NETWORKS = {
    "overbond": (None, ("198.18.1.1", "198.18.1.2"), ("192.0.2.11", "192.0.2.12")),
    "overvlan": ("100", ("198.19.1.1", "198.19.1.2"), ("192.0.2.21", "192.0.2.22")),
}


def pif(api, host_name: str, device: str) -> str:
    host = api.host.get_by_name_label(host_name)[0]
    return next(p for p in api.host.get_PIFs(host) if api.PIF.get_device(p) == device
                and api.PIF.get_VLAN(p) == "-1" and not api.PIF.get_tunnel_access_PIF_of(p))


def build_transports(lab) -> None:
    """As an operator would (`xe bond-create`, `xe vlan-create`, `xe pif-reconfigure-ip`): p1h1 bonds eth1
    and eth2 into bond0, with VLAN 100 on bond0; p1h2 keeps eth1, with VLAN 100 on eth1."""
    session = xapi(lab)
    api = session.xenapi
    try:
        bond_net = api.network.create({"name_label": "bond", "name_description": "", "other_config": {}})
        bond = api.Bond.create(bond_net, [pif(api, "p1h1", "eth1"), pif(api, "p1h1", "eth2")], "",
                               "active-backup", {})
        vlan_net = api.network.create({"name_label": "vlan100", "name_description": "", "other_config": {}})
        tagged = {"p1h1": api.Bond.get_master(bond), "p1h2": pif(api, "p1h2", "eth1")}
        for (host_name, tagged_pif), ip in zip(tagged.items(), NETWORKS["overvlan"][1]):
            vlan = api.VLAN.create(tagged_pif, "100", vlan_net)
            api.PIF.reconfigure_ip(api.VLAN.get_untagged_PIF(vlan), "Static", ip, "255.255.0.0", "", "")
    finally:
        api.session.logout()


def tunnel_ends(lab, host_name: str, net_id: str) -> list[tuple[str, str | None]]:
    """(remote_ip, local_ip) of the host's sdnctl tunnels of that network, read back with ovs-vsctl."""
    return [(row["options"]["remote_ip"], row["options"].get("local_ip"))
            for row in tunnel_ports(lab, host_name).values() if row["external_ids"]["sdnctl-network"] == net_id]


def bond_members(lab) -> str:
    host = lab.host("p1h1")
    return run(["ovs-appctl", "-t", str(host.dir / "ovs-vswitchd.ctl"), "bond/show", "bond0"]).stdout


def tunnels_are(lab, net_id: str, expected: dict[str, list]) -> bool:
    observed = {host_name: tunnel_ends(lab, host_name, net_id) for host_name in expected}
    assert observed == expected, observed
    return True


def failed_over(lab, down: str, up: str) -> bool:
    shown = bond_members(lab)
    assert f"member {down}: disabled" in shown and f"member {up}: enabled" in shown, shown
    return True


def set_link(lab, device: str, state: str) -> None:
    subprocess.run(["ip", "-n", lab.host("p1h1").netns, "link", "set", device, state], check=True)


@pytest.mark.netns
def test_guests_ping_over_a_bond_a_nic_and_vlans_each_host_with_its_own_transport(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=2, dataplane=True, nics=2)
    build_transports(lab)
    make_daemon(lab)
    guests = {}
    for name, (vlan, _, ips) in NETWORKS.items():
        run_cli("network", "create", "--name", name, "--pool", "pool1", "--pif-device", "eth1",
                "--pif-device", "p1h1=bond0", *(["--vlan", vlan] if vlan else []), config=lab.config_path)
        guests[name] = [boot_guest(lab, name, host_name, ip)[0] for host_name, ip in zip(("p1h1", "p1h2"), ips)]

    for name, (_, (ip1, ip2), _) in NETWORKS.items():
        net_id = network_id(lab, name)
        expected = {"p1h1": [(ip2, ip1)], "p1h2": [(ip1, ip2)]}
        wait_for(lambda: tunnels_are(lab, net_id, expected), timeout=30,
                 what=f"{name}: each host tunnels from its own transport IP to the other's")

    def all_ping() -> bool:
        return all(ping(vms[0], ips[1]) and ping(vms[1], ips[0])
                   for (_, _, ips), vms in zip(NETWORKS.values(), guests.values()))

    wait_for(all_ping, timeout=45, what="guests ping over the bond, the NIC and both VLAN PIFs")
    # The bond carries the packets: take down each member in turn and the other carries them.
    for down, up in (("eth1", "eth2"), ("eth2", "eth1")):
        set_link(lab, down, "down")
        wait_for(lambda: failed_over(lab, down, up), timeout=15, what=f"bond0 fails over to {up}")
        wait_for(all_ping, timeout=30, what=f"guests ping with only {up} in bond0")
        set_link(lab, down, "up")


def test_network_create_says_which_host_lacks_which_device_or_vlan(make_lab):
    lab = make_lab(pools=1, hosts=2, nics=2)
    build_transports(lab)
    missing_vlan = run_cli("network", "create", "--name", "v200", "--pool", "pool1", "--pif-device", "eth1",
                           "--pif-device", "p1h1=bond0", "--vlan", "200", config=lab.config_path, check=False)
    assert missing_vlan.returncode != 0
    assert "pool1/p1h1 has PIF bond0 but no VLAN 200 on it (VLANs 100)" in missing_vlan.stderr + missing_vlan.stdout
    assert "pool1/p1h2 has PIF eth1 but no VLAN 200 on it (VLANs 100)" in missing_vlan.stderr + missing_vlan.stdout
    slave = run_cli("network", "create", "--name", "s", "--pool", "pool1", "--pif-device", "eth1",
                    config=lab.config_path)
    assert "warning: pool1/p1h1 has eth1 in bond bond0 (tunnels cannot leave from a bond slave); use bond0" \
        in slave.stdout and "with 1 tunnel(s)" in slave.stdout
    unknown = run_cli("network", "create", "--name", "u", "--pool", "pool1", "--pif-device", "eth1",
                      "--pif-device", "p9h9=bond0", config=lab.config_path, check=False)
    assert unknown.returncode != 0 and "--pif-device p9h9=...: no such host" in unknown.stderr
    assert "HOST=DEVICE" in run_cli("network", "create", "--help", config=lab.config_path).stdout
