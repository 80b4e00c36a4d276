"""IPsec fail-closed on a host: ipsec_skb_mark while it carries an encrypted tunnel, egress marks on those tunnels."""

from __future__ import annotations

import pytest

from sdnctl.core.hostplan import ObservedHost, World, ipsec_mark
from sdnctl.core.model import IPSEC_SKB_MARK, ObservedPort, TunnelSpec
from sdnctl.core.topology import DesiredState


def _spec(psk: str | None) -> TunnelSpec:
    return TunnelSpec(name="sdn1", bridge="xapi1", network_id="n1", remote_host="h2", type="gre",
                      remote_ip="198.18.0.2", key=1, psk=psk)


def _world(*specs: TunnelSpec) -> World:
    return World(desired=DesiredState(tunnels={"h1": frozenset(specs)}, centers={}, frozen_networks=frozenset()),
                 complete=True)


def _observed(mark: str = "", ours: bool = False, ports=()) -> ObservedHost:
    return ObservedHost(address="127.0.0.1", bridges=frozenset({"xapi1"}), ports=tuple(ports), controllers={},
                        rstp_bridges=frozenset(), vif_ports=(), ipsec_mark=mark, ipsec_mark_ours=ours)


@pytest.mark.parametrize("world,observed,expected", [
    (_world(_spec("k")), _observed(), IPSEC_SKB_MARK),
    (_world(_spec("k")), _observed(IPSEC_SKB_MARK, True), None),
    (_world(_spec(None)), _observed(IPSEC_SKB_MARK, True), ""),
    (_world(_spec(None)), _observed("0/1", False), None),
    (_world(_spec(None)), _observed(), None),
    (_world(), _observed(ports=[ObservedPort("sdn1", "xapi1", "n1", "h2", "gre", (("psk", "k"),))]), IPSEC_SKB_MARK),
], ids=["encrypted-sets", "already-set", "last-encrypted-gone-removes-ours", "someone-elses-left-alone",
        "nothing-to-do", "frozen-encrypted-port-keeps-it"])
def test_the_mark_follows_the_hosts_encrypted_tunnels(world, observed, expected):
    assert ipsec_mark("h1", world, observed) == (expected, ())


def test_someone_elses_mark_on_an_encrypted_host_is_left_and_reported():
    mark, notes = ipsec_mark("h1", _world(_spec("k")), _observed("0/1", False))
    assert mark is None
    assert "ipsec_skb_mark is '0/1', set by someone else" in notes[0] and "may not fail closed" in notes[0]


def test_every_encrypted_tunnel_marks_its_packets_and_a_plain_one_does_not():
    assert _spec("k").options["egress_pkt_mark"] == "1"
    assert "egress_pkt_mark" not in _spec(None).options
