"""The lab's OpenFlow reach into data-plane hosts: every listener vswitchd opens is forwarded, however many."""

from __future__ import annotations

import socket

import pytest

from tests.waiting import wait_for

BRIDGES = 12   # more than the 8 ports the lab used to forward


def _answers(address: str, port: int) -> bool:
    """A TCP connect from the root namespace reaches a listener (the forwarder only listens when vswitchd does)."""
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.netns
def test_every_openflow_listener_of_a_namespaced_host_is_forwarded(make_lab):
    lab = make_lab(pools=1, hosts=1, dataplane=True)
    host = lab.host("p1h1")
    ports = [6653 + i for i in range(BRIDGES)]
    for i, port in enumerate(ports):
        host.ensure_bridge(f"xapi{i}", f"network-{i}")
        host.vsctl("set-controller", f"xapi{i}", f"pssl:{port}:{host.address}")
    wait_for(lambda: [p for p in ports if not _answers(host.address, p)] == [], timeout=20,
             what=f"all {BRIDGES} OpenFlow listeners reachable from the root namespace")
    host.vsctl("del-controller", f"xapi{BRIDGES - 1}")
    wait_for(lambda: not _answers(host.address, ports[-1]), timeout=20,
             what="a removed listener no longer forwarded")
    assert _answers(host.address, ports[0])
