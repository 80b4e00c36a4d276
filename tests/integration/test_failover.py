"""A pool master that goes silent (no answer, no RST) and a slave that takes over, with the issue's targets:

the pool is resynced on the new master within 15 s of the silence, the first CLI call answers
within 10 s, and meanwhile a network change in another pool converges within 2 s.
"""

from __future__ import annotations

import time
import urllib.parse

from tests.integration.conftest import run_cli
from tests.integration.test_private_networks import converged, create_network, expected_ports
from tests.waiting import wait_for

RESYNC_TARGET = 15.0
CLI_TARGET = 10.0
OTHER_POOL_TARGET = 2.0


def pool_status(daemon, name: str) -> dict:
    return next((p for p in daemon.status().get("pools", []) if p["name"] == name), {})


def test_a_silent_master_replaced_by_a_slave_holds_back_no_other_pool(make_lab, make_daemon):
    lab = make_lab(pools=2, hosts=3)
    daemon = make_daemon(lab)
    p1, p2 = ["p1h1", "p1h2", "p1h3"], ["p2h1", "p2h2", "p2h3"]
    net1 = create_network(lab, "net1", pools=("pool1",), topology="mesh")
    net2 = create_network(lab, "net2", pools=("pool2",), topology="mesh")
    wait_for(lambda: converged(lab, expected_ports(lab, net1, p1, "mesh", None)), what="pool1's mesh")
    wait_for(lambda: converged(lab, expected_ports(lab, net2, p2, "mesh", None)), what="pool2's mesh")
    resyncs = wait_for(lambda: pool_status(daemon, "pool1").get("resyncs"), what="pool1 in status")
    new_master = lab.host("p1h2").address

    silenced = time.monotonic()
    lab.host_crash("p1h1", silent=True)                 # powered off: connects and reads hang
    lab.emergency_transition_to_master("p1h2")
    changed = time.monotonic()
    lab.host_eject("p2h3")                              # meanwhile, in the other pool
    wait_for(lambda: converged(lab, expected_ports(lab, net2, p2[:2], "mesh", None)), timeout=OTHER_POOL_TARGET,
             interval=0.02, what="pool2's change while pool1's master is silent")
    other_pool = time.monotonic() - changed

    def resynced_on_the_new_master():
        pool = pool_status(daemon, "pool1")
        return pool.get("synced") and pool["resyncs"] > resyncs \
            and urllib.parse.urlsplit(pool["master_url"]).hostname == new_master and pool
    wait_for(resynced_on_the_new_master, timeout=RESYNC_TARGET - (time.monotonic() - silenced), interval=0.05,
             what="pool1 resynced on p1h2")
    resync = time.monotonic() - silenced

    started = time.monotonic()
    listed = run_cli("network", "list", config=lab.config_path)
    cli = time.monotonic() - started
    assert "net1" in listed.stdout and "net2" in listed.stdout
    print(f"\nfailover: other pool converged in {other_pool:.2f}s, pool1 resynced on the new master "
          f"{resync:.2f}s after the silence, first CLI call {cli:.2f}s")
    assert cli < CLI_TARGET, f"the first CLI call took {cli:.1f}s"
