"""What a change costs, counted (bench/ times it): a join, a center failover, and nothing at rest.

- A host joining a mesh costs one OVSDB transaction on each member, one or two on the joiner (its new
  bridge is secured as soon as it appears), none on hosts outside the network.
- A star's center crash changes only the dead center's tunnels: each survivor's port to it goes (N-1),
  the new center gains one per other survivor and each of them one to it (2(N-2)), nothing else.
- At rest the daemon plans nothing: XAPI's host_metrics ticks (every few seconds per host) wake no agent.
Counted from the daemon's per-host counters (transactions, ports added and deleted, plans made).
"""

from __future__ import annotations

import time

from tests.integration.conftest import run_cli, tunnel_ports, xapi
from tests.waiting import wait_for


def counters(daemon, key: str) -> dict[str, int]:
    """host name -> the daemon's counter `key` for it."""
    return {h["name"]: h[key] for h in daemon.status().get("hosts", {}).values()}


def create(lab, name: str, topology: str, pools: tuple[str, ...], center: str | None = None) -> None:
    args = ["network", "create", "--name", name, "--pif-device", "eth0", "--topology", topology]
    for pool in pools:
        args += ["--pool", pool]
    run_cli(*args, *(["--preferred-center", center] if center else []), config=lab.config_path)


def settled(daemon, key: str, total: int) -> dict[str, int]:
    """The counters once they add up to `total` (the status follows the commits)."""
    return wait_for(lambda: sum((seen := counters(daemon, key)).values()) == total and seen,
                    what=f"the status counting {total} {key}")


def test_a_join_costs_one_transaction_on_each_affected_host_and_none_elsewhere(make_lab, make_daemon):
    lab = make_lab(pools=2, hosts=2)
    daemon = make_daemon(lab)
    wait_for(lambda: len(counters(daemon, "transactions")) == 4, what="every host connected")
    create(lab, "mesh", "mesh", ("pool1",))
    wait_for(lambda: all(len(tunnel_ports(lab, h)) == 1 for h in ("p1h1", "p1h2")), what="the two-host mesh")
    settled(daemon, "ports_added", 2)
    before = counters(daemon, "transactions")
    joiner = lab.host_join("pool1")
    wait_for(lambda: all(len(tunnel_ports(lab, h)) == 2 for h in ("p1h1", "p1h2", joiner)), what="the joined mesh")
    settled(daemon, "ports_added", 6)
    after = counters(daemon, "transactions")
    cost = {h: after[h] - before.get(h, 0) for h in after}
    # The joiner may take two: its network's bridge appears with the access PIF's plug, before XAPI
    # reports the plug (which makes it eligible), and a new bridge is secured (controller, fail_mode) at once.
    assert cost.pop(joiner) in (1, 2)
    assert cost == {"p1h1": 1, "p1h2": 1, "p2h1": 0, "p2h2": 0}


def test_a_center_crash_changes_only_the_dead_centers_tunnels(make_lab, make_daemon):
    lab = make_lab(pools=2, hosts=3)
    daemon = make_daemon(lab)
    n = 6
    create(lab, "star", "star", ("pool1", "pool2"), center="p1h2")
    settled(daemon, "ports_added", 2 * (n - 1))
    added, deleted = counters(daemon, "ports_added"), counters(daemon, "ports_deleted")
    lab.host_crash("p1h2")
    settled(daemon, "ports_added", 2 * (n - 1) + 2 * (n - 2))
    now_added = settled(daemon, "ports_deleted", n - 1) and counters(daemon, "ports_added")
    now_deleted = counters(daemon, "ports_deleted")
    new = next(n["center_name"] for n in daemon.status()["networks"] if n["name"] == "star")
    survivors = {"p1h1", "p1h3", "p2h1", "p2h2", "p2h3"}
    assert {h: now_deleted[h] - deleted[h] for h in survivors} == dict.fromkeys(survivors, 1)
    assert {h: now_added[h] - added[h] for h in survivors} == {h: (n - 2 if h == new else 1) for h in survivors}


def test_at_rest_host_metrics_ticks_wake_no_agent(make_lab, make_daemon):
    lab = make_lab(pools=2, hosts=2)
    daemon = make_daemon(lab)
    create(lab, "star", "star", ("pool1", "pool2"))
    settled(daemon, "ports_added", 6)
    wait_for(lambda: all(h["openflow_synced"] for h in daemon.status()["hosts"].values()), what="flows synced")
    before = counters(daemon, "steps")
    session = xapi(lab)
    try:
        def ticks() -> dict[str, str]:
            return {r["uuid"]: r["last_updated"] for r in session.xenapi.host_metrics.get_all_records().values()}

        first = ticks()
        second = wait_for(lambda: (now := ticks()) and all(now[u] != first[u] for u in first) and now, timeout=30,
                          what="every host's host_metrics updated by the memory monitor")
        wait_for(lambda: all(ticks()[u] != second[u] for u in second), timeout=30, what="a second tick")
    finally:
        session.xenapi.session.logout()
    ticked = time.time()
    # A status written after them (the heartbeat: at most 5 s) still counts no plan made.
    wait_for(lambda: daemon.status()["generated_at"] > ticked, what="a status written after the ticks")
    assert counters(daemon, "steps") == before
