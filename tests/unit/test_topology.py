"""sdnctl.core.inventory and topology: XAPI records -> private networks -> tunnel ports per host -> one host's port plan."""

from __future__ import annotations

import uuid as uuidlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sdnctl.core.model import (
    MAX_KEY, ClusterSnapshot, Endpoint, ObservedPort, PortPlan, PrivateNetwork, TunnelSpec, tunnel_port_name,
)
from sdnctl.core.inventory import private_networks
from sdnctl.core.topology import DesiredState, desired_tunnels, elect_center, plan_ports, preferred_waits, reclaims

NULL_REF = "OpaqueRef:NULL"


def _uuid(n: int) -> str:
    """A valid uuid whose string order is the order of `n` (elections pick the lowest)."""
    return str(uuidlib.UUID(int=n))


H1, H2, H3, H4 = (_uuid(0xA0 + i) for i in range(1, 5))
NET = "6f1c0c2e-8d0b-4d5e-9a57-3f2d1c0b0a01"
NET2 = "6f1c0c2e-8d0b-4d5e-9a57-3f2d1c0b0a02"
SDN = "sdnctl:"
XO = "xo:sdn-controller:"


# --- XAPI-shaped records -------------------------------------------------------------------------

class PoolBuilder:
    """One pool's records as get_all_records gives them: lower-case class -> ref -> record.

    Every host gets one transport PIF (eth1) on the pool's physical network; `join` gives a host
    a tunnel, and with it an access PIF, on a private network, as tunnel.create does.
    """

    def __init__(self, name: str = "pool-a") -> None:
        self.name = name
        self.records: dict[str, dict[str, dict]] = {c: {} for c in ("host", "host_metrics", "pif", "network", "tunnel")}
        self._transport: dict[str, str] = {}  # host ref -> transport PIF ref
        self.physical = self.network({}, name="Pool-wide network associated with eth1", bridge="xenbr1")

    def _add(self, cls: str, **record) -> str:
        ref = f"OpaqueRef:{self.name}-{cls}-{len(self.records[cls])}"
        self.records[cls][ref] = record
        return ref

    def host(self, uuid: str, *, live: bool | str | None = True, ip: str | None = None,
             transport_attached: bool = True, management: bool = True, address: str | None = None) -> str:
        """A host and its transport PIF; `live=None` leaves it without a host_metrics record."""
        n = len(self.records["host"]) + 1
        ip = f"10.0.0.{n}" if ip is None else ip
        # The management PIF's IP is the host's address; a separate transport network has its own.
        address = address or (ip if management and ip else f"192.0.2.{n}")
        metrics = NULL_REF if live is None else self._add("host_metrics", uuid=_uuid(0xF000 + n), live=live)
        host = self._add("host", uuid=uuid, name_label=f"host-{n}", address=address, metrics=metrics, PIFs=[])
        transport = self._pif(host, self.physical, device="eth1", IP=ip, currently_attached=transport_attached,
                              management=management)
        self._transport[host] = transport
        return host

    def network(self, other_config: Mapping[str, str], *, name: str = "private", bridge: str = "xapi1") -> str:
        n = len(self.records["network"])
        return self._add("network", uuid=_uuid(0xE000 + n), name_label=name, bridge=bridge,
                         other_config=dict(other_config), PIFs=[])

    def join(self, network: str, host: str, *, attached: bool = True, protocol: str = "gre") -> str:
        """The host's tunnel on `network` (its access PIF plugged or not); returns the tunnel ref."""
        access = self._pif(host, network, device="tunnel0", IP="", currently_attached=attached, management=False)
        transport = self._transport[host]
        tunnel = self._add("tunnel", access_PIF=access, transport_PIF=transport, protocol=protocol,
                           status={"active": "false"})
        self.records["pif"][access]["tunnel_access_PIF_of"].append(tunnel)
        self.records["pif"][transport]["tunnel_transport_PIF_of"].append(tunnel)
        return tunnel

    def _pif(self, host: str, network: str, **fields) -> str:
        pif = self._add("pif", host=host, network=network, VLAN="-1", tunnel_access_PIF_of=[],
                        tunnel_transport_PIF_of=[], **fields)
        self.records["host"][host]["PIFs"].append(pif)
        self.records["network"][network]["PIFs"].append(pif)
        return pif


def config(prefix: str = SDN, **settings: str | None) -> dict[str, str]:
    """A network's other_config: `private-network-uuid` NET and `vni` 100 unless given; None drops a key."""
    values = {"private_network_uuid": NET, "vni": "100"} | settings
    return {prefix + k.replace("_", "-"): v for k, v in values.items() if v is not None}


def one_pool(other_config: Mapping[str, str], hosts: Iterable[str] = (H1, H2, H3), *, pool: str = "pool-a",
             bridge: str = "xapi1", **host_kw) -> dict[str, Mapping]:
    """`{pool: records}` with one network that every host has joined."""
    b = PoolBuilder(pool)
    net = b.network(other_config, bridge=bridge)
    for uuid in hosts:
        b.join(net, b.host(uuid, **host_kw))
    return {pool: b.records}


def only_network(snapshot: ClusterSnapshot) -> PrivateNetwork:
    assert len(snapshot.networks) == 1, snapshot
    return snapshot.networks[0]


# --- records -> private networks -----------------------------------------------------------------

@pytest.mark.parametrize(("other_config", "default_topology", "expected"), [
    (config(), "star",
     {"id": NET, "name": "private", "encapsulation": "gre", "vni": 100, "topology": "star", "origin": "sdnctl",
      "preferred_center": None, "center": None, "encrypted": False, "error": None}),
    (config(encapsulation="vxlan", vni="5000", topology="mesh", preferred_center=H2, center=H1, encrypted="true"),
     "star",
     {"encapsulation": "vxlan", "vni": 5000, "topology": "mesh", "preferred_center": H2, "center": H1,
      "encrypted": True, "origin": "sdnctl", "error": None}),
    (config(), "mesh", {"topology": "mesh", "error": None}),
    (config(encapsulation="VXLAN", encrypted="TRUE"), "star", {"encapsulation": "vxlan", "encrypted": True}),
    (config(XO, encapsulation="vxlan", vni="7", preferred_center=H2, encrypted="true"), "mesh",
     {"id": NET, "origin": "xo", "topology": "star", "encapsulation": "vxlan", "vni": 7, "preferred_center": H2,
      "encrypted": True, "error": None}),
    (config(XO, topology="mesh"), "mesh", {"origin": "xo", "topology": "star", "error": None}),
    (config(XO) | {SDN + "center": H3}, "star", {"origin": "xo", "center": H3}),
    (config(XO, vni="20", encapsulation="vxlan") | config(vni="10"), "star",
     {"origin": "sdnctl", "vni": 10, "encapsulation": "vxlan", "error": None}),
], ids=["sdnctl-defaults", "sdnctl-every-key", "sdnctl-default-topology", "sdnctl-values-case-insensitive",
        "xo-keys", "xo-forced-star", "xo-center-recorded-by-sdnctl", "sdnctl-key-wins-over-xo"])
def test_settings_from_other_config(other_config, default_topology, expected):
    network = only_network(private_networks(one_pool(other_config), default_topology))
    assert {k: getattr(network, k) for k in expected} == expected


def test_endpoints_carry_host_pool_bridge_and_transport_ip():
    b = PoolBuilder("p")
    net = b.network(config(), bridge="xapi4")
    b.join(net, b.host(H2, ip="10.0.0.2", management=False))
    b.join(net, b.host(H1, ip="10.0.0.1", management=True))
    network = only_network(private_networks({"p": b.records}))
    assert network.endpoints == (  # sorted by host uuid
        Endpoint(H1, "p", "xapi4", "10.0.0.1", eligible=True, multi_homed=False),
        Endpoint(H2, "p", "xapi4", "10.0.0.2", eligible=True, multi_homed=True),
    )


def test_same_private_network_in_two_pools_merges():
    pools = one_pool(config(), [H1, H3], pool="pool-a", bridge="xapi1") | \
        one_pool(config(), [H2], pool="pool-b", bridge="xapi7")
    network = only_network(private_networks(pools))
    assert network.error is None
    assert [(ep.host_uuid, ep.pool, ep.bridge) for ep in network.endpoints] == [
        (H1, "pool-a", "xapi1"), (H2, "pool-b", "xapi7"), (H3, "pool-a", "xapi1")]


def test_distinct_private_networks_stay_apart():
    b = PoolBuilder()
    hosts = [b.host(h) for h in (H1, H2)]
    for net_id, bridge in ((NET2, "xapi2"), (NET, "xapi1")):
        net = b.network(config(private_network_uuid=net_id), bridge=bridge)
        for host in hosts:
            b.join(net, host)
    snapshot = private_networks({"pool-a": b.records})
    assert [(n.id, {ep.bridge for ep in n.endpoints}) for n in snapshot.networks] == [
        (NET, {"xapi1"}), (NET2, {"xapi2"})]


@pytest.mark.parametrize(("key", "a", "b"), [
    ("vni", config(vni="100"), config(vni="101")),
    ("encapsulation", config(encapsulation="gre"), config(encapsulation="vxlan")),
    ("topology", config(topology="star"), config(topology="mesh")),
    ("topology", config(XO), config(topology="mesh")),
], ids=["vni", "encapsulation", "topology", "xo-star-vs-sdnctl-mesh"])
def test_pools_disagreeing_is_an_error(key, a, b):
    pools = one_pool(a, [H1], pool="pool-a") | one_pool(b, [H2], pool="pool-b")
    network = only_network(private_networks(pools))
    assert f"pools disagree on {key}" in network.error
    assert NET in network.error
    assert {ep.host_uuid for ep in network.endpoints} == {H1, H2}


@pytest.mark.parametrize(("other_config", "message"), [
    (config(vni="abc"), "sdnctl:vni 'abc' is not an integer"),
    (config(vni=None), "sdnctl:vni None is not an integer"),
    (config(vni="0"), "sdnctl:vni 0 is out of range for gre"),
    (config(vni=str(2**32), encapsulation="gre"), f"sdnctl:vni {2**32} is out of range for gre"),
    (config(vni=str(2**24), encapsulation="vxlan"), f"sdnctl:vni {2**24} is out of range for vxlan"),
    (config(encapsulation="geneve"), "sdnctl:encapsulation 'geneve' is not one of gre, vxlan"),
    (config(topology="ring"), "sdnctl:topology 'ring' is not one of star, mesh"),
    (config(private_network_uuid="not-a-uuid"), "sdnctl:private-network-uuid 'not-a-uuid' is not a uuid"),
    (config(private_network_uuid=""), "sdnctl:private-network-uuid '' is not a uuid"),
    (config(XO, vni="abc"), "xo:sdn-controller:vni 'abc' is not an integer"),
    (config(XO, encapsulation="geneve"), "xo:sdn-controller:encapsulation 'geneve'"),
    (config(XO, private_network_uuid="x"), "xo:sdn-controller:private-network-uuid 'x' is not a uuid"),
], ids=["vni-not-integer", "vni-missing", "vni-zero", "vni-gre-2^32", "vni-vxlan-2^24", "encapsulation-geneve",
        "topology-ring", "uuid-malformed", "uuid-empty", "xo-vni-not-integer", "xo-encapsulation-geneve",
        "xo-uuid-malformed"])
def test_malformed_setting_names_the_key(other_config, message):
    network = only_network(private_networks(one_pool(other_config, [H1, H2])))
    assert message in network.error
    assert "pool pool-a, network 'private'" in network.error
    assert len(network.endpoints) == 2  # its hosts stay known, so their ports can be frozen


def test_malformed_setting_names_the_key_when_keys_mix_origins():
    network = only_network(private_networks(one_pool(config(vni=None) | {XO + "vni": "abc"}, [H1])))
    assert "xo:sdn-controller:vni 'abc'" in network.error


@pytest.mark.parametrize(("encapsulation", "vni"), [
    ("gre", 1), ("gre", MAX_KEY["gre"]), ("vxlan", 1), ("vxlan", MAX_KEY["vxlan"]),
], ids=["gre-min", "gre-max", "vxlan-min", "vxlan-max"])
def test_vni_bounds_accepted(encapsulation, vni):
    network = only_network(private_networks(one_pool(config(encapsulation=encapsulation, vni=str(vni)))))
    assert (network.error, network.vni) == (None, vni)


@given(encapsulation=st.sampled_from(["gre", "vxlan"]), vni=st.integers(-2, 2**33))
def test_vni_parses_iff_in_range(encapsulation, vni):
    network = only_network(private_networks(one_pool(config(encapsulation=encapsulation, vni=str(vni)), [H1])))
    if 1 <= vni <= MAX_KEY[encapsulation]:
        assert (network.error, network.vni) == (None, vni)
    else:
        assert f"sdnctl:vni {vni} is out of range for {encapsulation}" in network.error


@pytest.mark.parametrize(("host_kw", "join_kw", "eligible"), [
    ({}, {}, True),
    ({"live": "true"}, {}, True),
    ({"live": False}, {}, False),
    ({"live": None}, {}, False),
    ({"transport_attached": False}, {}, False),
    ({}, {"attached": False}, False),
    ({"ip": ""}, {}, False),
], ids=["all-up", "live-as-xmlrpc-string", "host-not-live", "no-host-metrics", "transport-pif-unplugged",
        "access-pif-unplugged", "transport-pif-without-ip"])
def test_endpoint_eligibility(host_kw, join_kw, eligible):
    b = PoolBuilder()
    b.join(b.network(config()), b.host(H1, **host_kw), **join_kw)
    (endpoint,) = only_network(private_networks({"pool-a": b.records})).endpoints
    assert endpoint.eligible is eligible
    if host_kw.get("ip") == "":
        assert endpoint.transport_ip is None


@pytest.mark.parametrize(("management", "multi_homed"), [(True, False), (False, True)],
                         ids=["transport-is-management", "separate-transport-network"])
def test_multi_homed_when_transport_is_not_management(management, multi_homed):
    (endpoint,) = only_network(private_networks(one_pool(config(), [H1], management=management))).endpoints
    assert endpoint.multi_homed is multi_homed


@pytest.mark.parametrize("other_config", [
    {}, {"automatic": "false"}, {XO + "vni": "5", SDN + "encapsulation": "gre"},
], ids=["empty", "unrelated-keys", "settings-without-private-network-uuid"])
def test_unmanaged_networks_ignored(other_config):
    assert private_networks(one_pool(other_config)) == ClusterSnapshot()


def test_only_tunnel_access_pifs_are_endpoints():
    """A network's physical or VLAN PIFs, and PIFs of hosts missing from the records, are not endpoints."""
    b = PoolBuilder()
    net = b.network(config())
    b.join(net, b.host(H1))
    b._pif(b.host(H2), net, device="eth1", IP="10.9.9.9", currently_attached=True, management=False)
    ghost = b.records["tunnel"][b.join(net, b.host(H3))]["access_PIF"]
    b.records["pif"][ghost]["host"] = "OpaqueRef:gone"
    network = only_network(private_networks({"pool-a": b.records}))
    assert [ep.host_uuid for ep in network.endpoints] == [H1]


# --- elect_center ------------------------------------------------------------------------------

def endpoint(host: str, eligible: bool = True, *, multi_homed: bool = False, bridge: str = "xapi1") -> Endpoint:
    return Endpoint(host_uuid=host, pool="pool-a", bridge=bridge, transport_ip=f"10.0.0.{int(host[-2:], 16)}",
                    eligible=eligible, multi_homed=multi_homed)


def network(*endpoints: Endpoint, net_id: str = NET, topology: str = "star", **fields) -> PrivateNetwork:
    return PrivateNetwork(id=net_id, name="private", encapsulation="gre", vni=100, topology=topology,
                          endpoints=tuple(endpoints), **fields)


@pytest.mark.parametrize(("eligible", "current", "preferred", "center"), [
    ({H1, H2, H3}, H3, H1, H3),
    ({H1, H2, H3}, H3, None, H3),
    ({H1, H2, H3}, None, H2, H2),
    ({H1, H2, H3}, None, None, H1),
    ({H2, H3}, None, H1, H2),
    ({H2, H3}, H1, H3, H3),
    ({H2, H3}, H1, None, H2),
    ({H1, H2, H3}, H4, None, H1),
    (set(), H1, H2, None),
], ids=["sticky-over-preferred", "sticky-over-lowest", "preferred-when-no-current", "lowest-uuid-otherwise",
        "preferred-ineligible-lowest", "current-ineligible-preferred", "current-ineligible-lowest",
        "current-not-an-endpoint", "nobody-eligible"])
def test_elect_center(eligible, current, preferred, center):
    net = network(*(endpoint(h, h in eligible) for h in (H3, H1, H2)), center=current, preferred_center=preferred)
    assert elect_center(net) == center


def test_elect_center_without_endpoints():
    assert elect_center(network(center=H1, preferred_center=H1)) is None


# --- desired_tunnels ---------------------------------------------------------------------------

def links(desired: DesiredState, net_id: str = NET) -> Counter:
    """(local host, remote host) -> how many of the network's tunnels join them."""
    return Counter((host, spec.remote_host) for host, specs in desired.tunnels.items()
                   for spec in specs if spec.network_id == net_id)


def both_ways(*pairs: tuple[str, str]) -> Counter:
    return Counter([(a, b) for a, b in pairs] + [(b, a) for a, b in pairs])


@pytest.mark.parametrize(("topology", "eligible", "current", "expected_center", "expected"), [
    ("star", {H1, H2, H3}, None, H1, both_ways((H1, H2), (H1, H3))),
    ("star", {H1, H2, H3}, H2, H2, both_ways((H2, H1), (H2, H3))),
    ("star", {H2, H3, H4}, H1, H2, both_ways((H2, H3), (H2, H4))),
    ("star", {H3}, None, H3, Counter()),
    ("star", set(), None, None, Counter()),
    ("mesh", {H1, H2, H3, H4}, None, None, both_ways((H1, H2), (H1, H3), (H1, H4), (H2, H3), (H2, H4), (H3, H4))),
    ("mesh", {H1, H3, H4}, None, None, both_ways((H1, H3), (H1, H4), (H3, H4))),
    ("mesh", {H2}, None, None, Counter()),
], ids=["star", "star-sticky-center", "star-center-ineligible", "star-alone", "star-nobody", "mesh",
        "mesh-one-ineligible", "mesh-alone"])
def test_tunnel_shapes(topology, eligible, current, expected_center, expected):
    net = network(*(endpoint(h, h in eligible) for h in (H1, H2, H3, H4)), topology=topology, center=current)
    desired = desired_tunnels(ClusterSnapshot((net,)))
    assert links(desired) == expected
    assert desired.centers == {NET: expected_center}
    assert set(desired.tunnels) == {H1, H2, H3, H4}  # ineligible hosts too: their stale ports get swept
    assert desired.frozen_networks == frozenset()


def test_tunnel_spec_fields_from_records():
    """remote_ip is the remote's transport IP (not its address); local_ip only on a multi-homed host."""
    a = PoolBuilder("pool-a")
    net_a = a.network(config(encapsulation="vxlan", vni="4242", topology="mesh"), bridge="xapi1")
    a.join(net_a, a.host(H1, ip="10.0.0.1", address="192.0.2.1", management=False))
    b = PoolBuilder("pool-b")
    net_b = b.network(config(encapsulation="vxlan", vni="4242", topology="mesh"), bridge="xapi3")
    b.join(net_b, b.host(H2, ip="10.0.0.2", management=True))
    desired = desired_tunnels(private_networks({"pool-a": a.records, "pool-b": b.records}))
    assert desired.tunnels == {
        H1: frozenset({TunnelSpec(name=tunnel_port_name(NET, H2), bridge="xapi1", network_id=NET, remote_host=H2,
                                  type="vxlan", remote_ip="10.0.0.2", key=4242, local_ip="10.0.0.1", protected=True)}),
        H2: frozenset({TunnelSpec(name=tunnel_port_name(NET, H1), bridge="xapi3", network_id=NET, remote_host=H1,
                                  type="vxlan", remote_ip="10.0.0.1", key=4242, local_ip=None, protected=True)}),
    }
    (to_h2,) = desired.tunnels[H1]
    assert to_h2.options == {"remote_ip": "10.0.0.2", "key": "4242", "local_ip": "10.0.0.1"}


def test_port_names_short_unique_and_deterministic():
    hosts = (H1, H2, H3, H4)
    snapshot = ClusterSnapshot(tuple(network(*(endpoint(h) for h in hosts), net_id=n, topology="mesh")
                                     for n in (NET, NET2)))
    desired = desired_tunnels(snapshot)
    for host in hosts:
        names = [spec.name for spec in desired.tunnels[host]]
        assert len(names) == 6 and len(set(names)) == 6
        assert all(len(name) <= 15 and name.startswith("sdn") for name in names)
        assert {spec.name for spec in desired.tunnels[host]} == {
            tunnel_port_name(spec.network_id, spec.remote_host) for spec in desired.tunnels[host]}
    assert desired_tunnels(snapshot) == desired


def test_errored_network_is_frozen_but_its_hosts_stay_keys():
    b = PoolBuilder()
    hosts = {h: b.host(h) for h in (H1, H2, H3)}
    bad = b.network(config(private_network_uuid=NET, vni="abc", topology="mesh"), bridge="xapi1")
    good = b.network(config(private_network_uuid=NET2, topology="mesh"), bridge="xapi2")
    for h in (H1, H2):
        b.join(bad, hosts[h])
    for h in (H2, H3):
        b.join(good, hosts[h])
    desired = desired_tunnels(private_networks({"pool-a": b.records}))
    assert desired.frozen_networks == frozenset({NET})
    assert NET not in desired.centers
    assert desired.tunnels[H1] == frozenset()
    assert {(s.network_id, s.remote_host) for s in desired.tunnels[H2]} == {(NET2, H3)}
    assert {(s.network_id, s.remote_host) for s in desired.tunnels[H3]} == {(NET2, H2)}


@pytest.mark.parametrize(("second_hosts", "clash"), [((H2, H3), True), ((H3,), False)], ids=["common-host", "apart"])
def test_two_networks_with_one_vni_on_a_common_host_are_both_in_error(second_hosts, clash):
    b = PoolBuilder()
    hosts = {h: b.host(h) for h in (H1, H2, H3)}
    first = b.network(config(private_network_uuid=NET, vni="7"), name="first", bridge="xapi1")
    second = b.network(config(private_network_uuid=NET2, vni="7"), name="second", bridge="xapi2")
    for h in (H1, H2):
        b.join(first, hosts[h])
    for h in second_hosts:
        b.join(second, hosts[h])
    networks = {n.id: n for n in private_networks({"pool-a": b.records}).networks}
    if clash:
        assert f"gre VNI 7 is also that of network second ({NET2})" in networks[NET].error
        assert f"network first ({NET})" in networks[NET2].error
    else:
        assert networks[NET].error is None and networks[NET2].error is None


# --- plan_ports --------------------------------------------------------------------------------

def observed(spec: TunnelSpec, **changes) -> ObservedPort:
    """The port `spec` becomes once applied, as read back from OVSDB."""
    port = ObservedPort(name=spec.name, bridge=spec.bridge, network_id=spec.network_id,
                        remote_host=spec.remote_host, type=spec.type, options=tuple(sorted(spec.options.items())),
                        protected=spec.protected)
    return replace(port, **changes)


def apply(ports: Iterable[ObservedPort], plan: PortPlan) -> list[ObservedPort]:
    """What a host's OVSDB holds after the plan's transaction: deletes first, then adds and modifies."""
    by_name = {p.name: p for p in ports}
    for port in plan.delete:
        assert by_name.pop(port.name) == port, "deleting a port that is not there"
    for spec in plan.add:
        assert spec.name not in by_name, f"adding {spec.name}, which exists"
        by_name[spec.name] = observed(spec)
    for spec in plan.modify:
        assert spec.name in by_name, f"modifying {spec.name}, which does not exist"
        by_name[spec.name] = observed(spec)
    return list(by_name.values())


def normalized(plan: PortPlan) -> PortPlan:
    return PortPlan(*(tuple(sorted(ports, key=lambda p: (p.name, p.bridge))) for ports in
                      (plan.add, plan.delete, plan.modify)))


FROZEN = "0d9e6b43-5c1a-4f7e-8a2b-000000000f00"
A = TunnelSpec(name=tunnel_port_name(NET, H2), bridge="xapi1", network_id=NET, remote_host=H2, type="gre",
               remote_ip="10.0.0.2", key=100)
B = replace(A, name=tunnel_port_name(NET, H3), remote_host=H3, remote_ip="10.0.0.3")
F = replace(A, name=tunnel_port_name(FROZEN, H2), network_id=FROZEN, bridge="xapi9")
A2 = replace(A, bridge="xapi2")

PLAN_CASES = {
    "in-sync": ([A, B], [observed(A, ofport=3), observed(B, ofport=4)], {"xapi1"}, (), PortPlan()),
    "nothing-yet": ([A, B], [], {"xapi1"}, (), PortPlan(add=(A, B))),
    "one-missing": ([A, B], [observed(A)], {"xapi1"}, (), PortPlan(add=(B,))),
    "stale-deleted": ([A], [observed(A), observed(B)], {"xapi1"}, (), PortPlan(delete=(observed(B),))),
    "all-stale": ([], [observed(A), observed(B)], {"xapi1"}, (), PortPlan(delete=(observed(A), observed(B)))),
    "remote-ip-changed": ([replace(A, remote_ip="10.9.9.9")], [observed(A)], {"xapi1"}, (),
                          PortPlan(modify=(replace(A, remote_ip="10.9.9.9"),))),
    "key-changed": ([replace(A, key=7)], [observed(A)], {"xapi1"}, (), PortPlan(modify=(replace(A, key=7),))),
    "type-changed": ([replace(A, type="vxlan")], [observed(A)], {"xapi1"}, (),
                     PortPlan(modify=(replace(A, type="vxlan"),))),
    "local-ip-added": ([replace(A, local_ip="10.0.0.1")], [observed(A)], {"xapi1"}, (),
                       PortPlan(modify=(replace(A, local_ip="10.0.0.1"),))),
    "local-ip-removed": ([A], [observed(replace(A, local_ip="10.0.0.1"))], {"xapi1"}, (), PortPlan(modify=(A,))),
    "owner-ids-changed": ([A], [observed(A, remote_host=H4)], {"xapi1"}, (), PortPlan(modify=(A,))),
    "options-order-irrelevant": ([replace(A, local_ip="10.0.0.1")],
                                 [observed(replace(A, local_ip="10.0.0.1"),
                                           options=(("remote_ip", "10.0.0.2"), ("local_ip", "10.0.0.1"),
                                                    ("key", "100")))], {"xapi1"}, (), PortPlan()),
    "bridge-changed": ([A2], [observed(A)], {"xapi1", "xapi2"}, (), PortPlan(add=(A2,), delete=(observed(A),))),
    "frozen-kept": ([], [observed(F)], {"xapi1"}, {FROZEN}, PortPlan()),
    "frozen-kept-others-swept": ([], [observed(F), observed(B)], {"xapi1"}, {FROZEN},
                                 PortPlan(delete=(observed(B),))),
    "bridge-absent-waits": ([A2, B], [], {"xapi1"}, (), PortPlan(add=(B,))),
    "bridge-absent-old-port-kept": ([A2], [observed(A)], {"xapi1"}, (), PortPlan()),
}


@pytest.mark.parametrize(("desired", "ports", "bridges", "frozen", "expected"), PLAN_CASES.values(),
                         ids=PLAN_CASES.keys())
def test_plan_ports(desired, ports, bridges, frozen, expected):
    plan = plan_ports(desired, ports, bridges=bridges, frozen_networks=frozen)
    assert normalized(plan) == normalized(expected)
    assert plan.empty is expected.empty


@pytest.mark.parametrize(("desired", "ports", "bridges", "frozen", "expected"), PLAN_CASES.values(),
                         ids=PLAN_CASES.keys())
def test_plan_applied_then_replanned_is_empty(desired, ports, bridges, frozen, expected):
    after = apply(ports, plan_ports(desired, ports, bridges=bridges, frozen_networks=frozen))
    assert plan_ports(desired, after, bridges=bridges, frozen_networks=frozen).empty


# --- properties over random clusters -------------------------------------------------------------

@dataclass(frozen=True)
class HostDraw:
    uuid: str
    pool: int
    live: bool
    has_ip: bool
    transport_attached: bool
    access_attached: bool
    management: bool
    on_second_network: bool

    @property
    def eligible(self) -> bool:
        return self.live and self.has_ip and self.transport_attached and self.access_attached


@dataclass(frozen=True)
class ClusterDraw:
    pools: int
    hosts: tuple[HostDraw, ...]
    topology: str
    encapsulation: str
    vni: int
    preferred: str | None

    def records(self, center: str | None = None) -> dict[str, Mapping]:
        """Every pool's records: NET (this topology) on every host, NET2 (mesh) on some; `center` as recorded."""
        builders = [PoolBuilder(f"pool-{i}") for i in range(self.pools)]
        nets = []
        for b in builders:
            oc = config(private_network_uuid=NET, vni=str(self.vni), encapsulation=self.encapsulation,
                        topology=self.topology, preferred_center=self.preferred, center=center)
            nets.append((b.network(oc, bridge="xapi1"),
                         b.network(config(private_network_uuid=NET2, vni="9", topology="mesh"), bridge="xapi2")))
        for i, h in enumerate(self.hosts):
            b = builders[h.pool]
            host = b.host(h.uuid, live=h.live, ip=f"10.0.0.{i + 1}" if h.has_ip else "",
                          transport_attached=h.transport_attached, management=h.management)
            b.join(nets[h.pool][0], host, attached=h.access_attached)
            if h.on_second_network:
                b.join(nets[h.pool][1], host, attached=h.access_attached)
        return {b.name: b.records for b in builders}

    def ip(self, uuid: str) -> str:
        return next(f"10.0.0.{i + 1}" for i, h in enumerate(self.hosts) if h.uuid == uuid)


mostly = st.sampled_from([True, True, True, False])


@st.composite
def clusters(draw, topologies=("star", "mesh")) -> ClusterDraw:
    pools = draw(st.integers(1, 3))
    uuids = draw(st.lists(st.uuids().map(str), min_size=1, max_size=8, unique=True))
    hosts = tuple(HostDraw(u, draw(st.integers(0, pools - 1)), draw(mostly), draw(mostly), draw(mostly),
                           draw(mostly), draw(st.booleans()), draw(st.booleans())) for u in uuids)
    encapsulation = draw(st.sampled_from(["gre", "vxlan"]))
    return ClusterDraw(pools, hosts, draw(st.sampled_from(topologies)), encapsulation,
                       draw(st.integers(1, MAX_KEY[encapsulation])), draw(st.none() | st.sampled_from(uuids)))


def snapshot_and_desired(cluster: ClusterDraw, center: str | None = None) -> tuple[ClusterSnapshot, DesiredState]:
    snapshot = private_networks(cluster.records(center))
    return snapshot, desired_tunnels(snapshot)


@settings(deadline=None)
@given(clusters())
def test_tunnels_connect_exactly_the_eligible_hosts(cluster):
    snapshot, desired = snapshot_and_desired(cluster)
    net, net2 = snapshot.networks
    assert (net.id, net2.id, net.error, net2.error) == (NET, NET2, None, None)
    assert {ep.host_uuid: ep.eligible for ep in net.endpoints} == {h.uuid: h.eligible for h in cluster.hosts}
    eligible = {h.uuid for h in cluster.hosts if h.eligible}
    eligible2 = {h.uuid for h in cluster.hosts if h.eligible and h.on_second_network}

    assert links(desired, NET2) == Counter({(a, b): 1 for a in eligible2 for b in eligible2 if a != b})
    if cluster.topology == "mesh":
        assert links(desired, NET) == Counter({(a, b): 1 for a in eligible for b in eligible if a != b})
    else:
        center = desired.centers[NET]
        assert (center in eligible) if eligible else (center is None)
        assert links(desired, NET) == both_ways(*((center, h) for h in eligible - {center}))

    assert set(desired.tunnels) == {h.uuid for h in cluster.hosts}
    for h in cluster.hosts:
        specs = desired.tunnels[h.uuid]
        assert all(s.remote_host in eligible for s in specs)
        if not h.eligible:
            assert specs == frozenset()
        names = [s.name for s in specs]
        assert len(names) == len(set(names)) and all(len(n) <= 15 for n in names)
        for s in specs:
            assert s.remote_ip == cluster.ip(s.remote_host)
            assert s.local_ip == (None if h.management else cluster.ip(h.uuid))
            assert s.key == (cluster.vni if s.network_id == NET else 9)


@settings(deadline=None)
@given(clusters())
def test_plan_against_its_own_result_is_empty(cluster):
    _, desired = snapshot_and_desired(cluster)
    for host, specs in desired.tunnels.items():
        plan = plan_ports(specs, [observed(s, ofport=1) for s in specs], bridges={"xapi1", "xapi2"},
                          frozen_networks=desired.frozen_networks)
        assert plan.empty, (host, plan)


@settings(deadline=None)
@given(clusters(topologies=("star",)), st.data())
def test_center_stable_when_another_host_toggles(cluster, data):
    _, before = snapshot_and_desired(cluster)
    center = before.centers[NET]
    others = [h for h in cluster.hosts if h.uuid != center]
    assume(center is not None and others)
    toggled = data.draw(st.sampled_from(others))
    flipped = replace(toggled, live=not toggled.eligible, has_ip=True, transport_attached=True,
                      access_attached=True)
    cluster2 = replace(cluster, hosts=tuple(flipped if h is toggled else h for h in cluster.hosts))

    snapshot, after = snapshot_and_desired(cluster2, center=center)  # the shell recorded it in sdnctl:center
    assert after.centers[NET] == center
    # In the star, only the toggled host and the center change tunnels.
    for h in cluster.hosts:
        if h.uuid not in (center, toggled.uuid):
            assert {s for s in after.tunnels[h.uuid] if s.network_id == NET} == \
                {s for s in before.tunnels[h.uuid] if s.network_id == NET}


port_names = st.sampled_from([f"sdn00000000000{i}" for i in range(5)])
specs = st.builds(TunnelSpec, name=port_names, bridge=st.sampled_from(["xapi1", "xapi2", "xapi3"]),
                  network_id=st.sampled_from([NET, NET2, FROZEN]), remote_host=st.sampled_from([H1, H2]),
                  type=st.sampled_from(["gre", "vxlan"]), remote_ip=st.sampled_from(["10.0.0.1", "10.0.0.2"]),
                  key=st.integers(1, 2), local_ip=st.none() | st.just("10.0.0.9"))


@settings(deadline=None)
@given(desired=st.lists(specs, unique_by=lambda s: s.name),
       ports=st.lists(specs.map(observed), unique_by=lambda p: p.name),
       bridges=st.sets(st.sampled_from(["xapi1", "xapi2", "xapi3"])),
       frozen=st.sets(st.sampled_from([NET2, FROZEN])))
def test_plan_converges_in_one_step(desired, ports, bridges, frozen):
    """Apply the plan, plan again: nothing to do. Frozen and waiting ports survive; adds land on real bridges."""
    plan = plan_ports(desired, ports, bridges=bridges, frozen_networks=frozen)
    after = apply(ports, plan)
    assert plan_ports(desired, after, bridges=bridges, frozen_networks=frozen).empty
    waiting = {s.name for s in desired if s.bridge not in bridges}
    for port in plan.delete:
        assert port.network_id not in frozen or port.name in {s.name for s in desired}
        assert port.name not in waiting
    assert all(s.bridge in bridges for s in (*plan.add, *plan.modify))


# --- loops in a mesh: split horizon (RSTP where the switch cannot) ---------------------------

@pytest.mark.parametrize(("topology", "expected"), [
    ("mesh", {H1: frozenset({"xapi1"}), H2: frozenset({"xapi1"}), H3: frozenset({"xapi1"})}),
    ("star", {}),
], ids=["mesh-has-loops", "star-is-a-tree"])
def test_only_mesh_tunnels_are_protected_and_only_mesh_bridges_listed(topology, expected):
    snapshot = ClusterSnapshot((network(endpoint(H1), endpoint(H2), endpoint(H3), topology=topology),))
    desired = desired_tunnels(snapshot)
    assert dict(desired.mesh_bridges) == expected
    assert {s.protected for specs in desired.tunnels.values() for s in specs} == {topology == "mesh"}


@pytest.mark.parametrize(("no_rstp", "enabled", "expected"), [
    ({"xapi1"}, {"xapi1"}, ("xapi1",)), ({"xapi1"}, set(), ()), (set(), {"xapi1"}, ())],
    ids=["turned-off", "already-off", "not-a-mesh"])
def test_rstp_is_turned_off_where_split_horizon_breaks_the_loops(no_rstp, enabled, expected):
    assert plan_ports([], [], bridges={"xapi1"}, no_rstp=no_rstp, observed_rstp=enabled).disable_rstp == expected


@pytest.mark.parametrize(("wanted", "present", "enabled", "expected"), [
    ({"xapi1"}, {"xapi1"}, set(), ("xapi1",)),
    ({"xapi1"}, {"xapi1"}, {"xapi1"}, ()),
    ({"xapi1"}, set(), set(), ()),
], ids=["enable", "already-on", "bridge-not-there-yet"])
def test_plan_enables_rstp_once(wanted, present, enabled, expected):
    plan = plan_ports((), (), bridges=present, rstp=wanted, observed_rstp=enabled)
    assert plan.enable_rstp == expected
    assert plan.empty == (not expected)


# --- a network's life: being created, let go ---------------------------------------------------

def test_a_network_still_being_created_gets_no_tunnels_and_no_center():
    network = only_network(private_networks(one_pool(config(creating="true"))))
    assert network.creating
    desired = desired_tunnels(ClusterSnapshot(networks=(network,)))
    assert NET in desired.frozen_networks and NET not in desired.centers
    assert all(not specs for specs in desired.tunnels.values())


@pytest.mark.parametrize("prefix", [SDN, XO], ids=["sdnctl-made", "xo-made"])
def test_a_network_let_go_is_not_a_private_network_of_sdnctl(prefix):
    assert private_networks(one_pool(config(prefix) | {SDN + "managed": "false"})).networks == ()


# --- the preferred center's word -----------------------------------------------------------------

def _star(center: str | None, preferred: str | None, eligible=(H1, H2, H3)) -> PrivateNetwork:
    return PrivateNetwork(id=NET, name="n", encapsulation="gre", vni=1, topology="star", center=center,
                          preferred_center=preferred,
                          endpoints=tuple(Endpoint(h, "pool-a", "xapi1", "10.0.0.1", h in eligible) for h in (H1, H2, H3)))


def test_the_current_center_is_kept_until_the_preferred_one_reclaims_the_role():
    network = _star(center=H1, preferred=H2)
    assert elect_center(network) == H1
    assert elect_center(network, reclaim=True) == H2
    assert elect_center(_star(center=H1, preferred=H2, eligible=(H1, H3)), reclaim=True) == H1


@pytest.mark.parametrize(("network", "since", "now", "waits"), [
    (_star(H1, H2), {}, 10.0, {NET: 10.0}),
    (_star(H1, H2), {NET: 3.0}, 10.0, {NET: 3.0}),
    (_star(H1, H2, eligible=(H1, H3)), {NET: 3.0}, 10.0, {}),
    (_star(H2, H2), {NET: 3.0}, 10.0, {}),
    (_star(H1, None), {}, 10.0, {}),
    (replace(_star(H1, H2), topology="mesh"), {}, 10.0, {}),
], ids=["starts-waiting", "keeps-its-start", "ineligible-starts-over", "is-the-center", "none-preferred", "mesh"])
def test_a_preferred_center_waits_only_while_eligible_and_not_the_center(network, since, now, waits):
    centers = {NET: network.center} if network.topology == "star" else {}
    assert preferred_waits([network], centers, {}, since, now) == waits


def test_a_preferred_center_dead_by_bfd_does_not_wait_and_the_hold_decides():
    network = _star(H1, H2)
    assert preferred_waits([network], {NET: H1}, {NET: frozenset({H2})}, {}, 0.0) == {}
    assert reclaims({NET: 0.0}, 59.9, 60.0) == frozenset()
    assert reclaims({NET: 0.0}, 60.0, 60.0) == {NET}
