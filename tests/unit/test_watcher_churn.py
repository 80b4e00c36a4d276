"""Which XAPI events wake the daemon: everything but the memory monitor's churn."""

from __future__ import annotations

import pytest

from sdnctl.xapi.watcher import matters

METRICS = {"uuid": "m1", "live": True, "memory_free": "100", "memory_total": "200", "last_updated": "t1"}


@pytest.mark.parametrize(("cls", "old", "new", "expected"), [
    ("host_metrics", METRICS, {**METRICS, "memory_free": "99", "last_updated": "t2"}, False),
    ("host_metrics", METRICS, {**METRICS, "live": False}, True),
    ("host_metrics", None, METRICS, True),
    ("host", {"name_label": "a", "memory_free": "1"}, {"name_label": "a", "memory_free": "2"}, True),
    ("vm", {"resident_on": "r1"}, {"resident_on": "r1"}, False),
], ids=["memory-churn", "liveness", "new-record", "churn-names-only-count-for-host-metrics", "unchanged"])
def test_only_changes_that_can_matter_wake_the_daemon(cls, old, new, expected):
    assert matters(cls, old, new) is expected
