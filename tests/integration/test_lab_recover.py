"""A recovered data-plane host keeps its underlay MACs, as a real NIC does: neighbours' tunnel-neighbour
entries (ovs-appctl tnl/neigh) stay right, so traffic through it needs no flush."""

from __future__ import annotations

import subprocess

import pytest

from tests.waiting import wait_for


def _macs(lab, host_name: str) -> dict[str, str]:
    """The MAC of eth1 (the NIC) and of xenbr1 (where the transport IP lives) inside the host's namespace."""
    host = lab.host(host_name)
    macs = {}
    for link in ("eth1", "xenbr1"):
        out = subprocess.run(["ip", "-n", host.netns, "-o", "link", "show", link], capture_output=True, text=True,
                             timeout=10, check=True).stdout
        macs[link] = out.split("link/ether ")[1].split()[0]
    return macs


@pytest.mark.netns
@pytest.mark.parametrize("silent", [False, True], ids=["crash", "silent-crash"])
def test_a_recovered_host_keeps_its_underlay_macs(make_lab, silent):
    lab = make_lab(pools=1, hosts=2, dataplane=True)
    before = _macs(lab, "p1h2")
    lab.host_crash("p1h2", silent=silent)
    wait_for(lambda: not lab.host("p1h2").running, what="p1h2's daemons gone")
    lab.host_recover("p1h2")
    wait_for(lambda: lab.host("p1h2").running, what="p1h2's daemons back")
    wait_for(lambda: _macs(lab, "p1h2") == before, timeout=10, what=f"p1h2's MACs unchanged ({before})")
