"""Flow drift end to end: rule flows changed by hand with ovs-ofctl are put back by the daemon.

The switch's flow monitor tells the daemon; the repair is a dump and a diff, so the daemon's own
counters (flows_added / flows_deleted in status) must grow by exactly what was broken, and the
repair's own flow-mods must not read as more drift.
"""

from __future__ import annotations

import subprocess
import time

from tests.integration.conftest import run_cli
from tests.integration.test_rules import flows, rules_lab  # noqa: F401  (rules_lab is a fixture)
from tests.waiting import wait_for

OURS = "cookie=0x5dc1000000000000/0xffff000000000000"
DRIFT_NOTICE = "flow change(s) not made by sdnctl"


def ofctl(lab, host_name: str, bridge: str, *args: str) -> None:
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args[:1], lab.host(host_name).mgmt(bridge), *args[1:]],
                   check=True, timeout=10)


def counters(daemon, host_name: str) -> tuple[int, int]:
    """(flows_added, flows_deleted) the daemon reports for a host, once its flows are synced."""
    def synced():
        host = next((h for h in daemon.status().get("hosts", {}).values() if h["name"] == host_name), None)
        return host if host and host["connected"] and host.get("openflow_synced") else None

    host = wait_for(synced, what=f"{host_name} synced in status")
    return host["flows_added"], host["flows_deleted"]


def settled_counters(daemon, host_name: str, expected: tuple[int, int]) -> tuple[int, int]:
    wait_for(lambda: counters(daemon, host_name) == expected, what=f"{host_name}'s counters at {expected}")
    return expected


def quiet(lab, daemon, host_name: str, bridge: str) -> tuple[list[str], tuple[int, int]]:
    """The host's sdnctl flows and counters once a status written a second after them shows them unchanged
    (the agent may add flows in more than one sync, and status.json lags the counters)."""
    seen: dict[str, object] = {}

    def unchanged():
        now, current = time.time(), flows(lab, host_name, bridge)
        if seen.get("flows") != current:
            seen.update(flows=current, since=now, counters=None)
            return None
        if daemon.status().get("generated_at", 0) < seen["since"] + 1.0:
            return None
        totals = counters(daemon, host_name)
        if seen["counters"] != totals:
            seen.update(counters=totals, since=now)
            return None
        return current, totals

    return wait_for(unchanged, what=f"{host_name}'s flows and counters settled")


def test_rule_flows_deleted_or_modified_by_hand_are_repaired_with_only_the_difference(rules_lab):
    lab, daemon, guests, bridge = rules_lab
    vif = guests.start("vm1", "p1h1", "02:00:00:00:00:01")
    run_cli("rule", "add", "--vif", vif, "--deny", "--protocol", "tcp", "--port", "22", config=lab.config_path)
    run_cli("rule", "add", "--vif", vif, "--deny", "--protocol", "udp", "--port", "161", config=lab.config_path)
    wait_for(lambda: sum("tp_dst=22" in f for f in flows(lab, "p1h1", bridge)) >= 2
             and any("tp_dst=161" in f for f in flows(lab, "p1h1", bridge)), what="the rules' flows")
    wanted, (added, deleted) = quiet(lab, daemon, "p1h1", bridge)

    # del-flows of one rule's flows: exactly those come back, nothing else is touched.
    ofctl(lab, "p1h1", bridge, "del-flows", f"{OURS},tcp,tp_dst=22")
    missing = set(wanted) - set(flows(lab, "p1h1", bridge))
    assert missing and all("tp_dst=22" in f for f in missing)
    wait_for(lambda: flows(lab, "p1h1", bridge) == wanted, timeout=10, what="the deleted flows back")
    added, deleted = settled_counters(daemon, "p1h1", (added + len(missing), deleted))

    # mod-flows of another rule's flows: each is overwritten back (one ADD, counted as added and deleted).
    ofctl(lab, "p1h1", bridge, "mod-flows", f"{OURS},udp,tp_dst=161,actions=NORMAL")
    modified = set(wanted) - set(flows(lab, "p1h1", bridge))
    assert modified and all("tp_dst=161" in f for f in modified)
    wait_for(lambda: flows(lab, "p1h1", bridge) == wanted, timeout=10, what="the modified flows restored")
    added, deleted = settled_counters(daemon, "p1h1", (added + len(modified), deleted + len(modified)))

    # Bounded: the repairs' own flow-mods were not drift. A foreign flow added in table 0 is the marker
    # (the switch reports it after anything it had to say about the repairs); its check changes nothing.
    ofctl(lab, "p1h1", bridge, "add-flow", "cookie=0x1234,priority=5,dl_type=0x88cc,actions=drop")
    wait_for(lambda: daemon.log_text().count(DRIFT_NOTICE) >= 3, timeout=10, what="the marker's drift notice")
    assert daemon.log_text().count(DRIFT_NOTICE) == 3
    assert counters(daemon, "p1h1") == (added, deleted) and flows(lab, "p1h1", bridge) == wanted
