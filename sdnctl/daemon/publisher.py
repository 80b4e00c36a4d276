"""The status writer: status.json, the metrics collector and retained MQTT states, from one status document."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from sdnctl import certs
from sdnctl.core.status import mqtt_states
from sdnctl.events import EventPublisher
from sdnctl.metrics import MetricsServer

log = logging.getLogger(__name__)

STATUS_INTERVAL = 0.5       # at most two status.json writes a second
STATUS_HEARTBEAT = 5.0      # and at least one every 5 s, so `status` can tell a stopped daemon
STATUS_SHARE = 0.1          # and never more than a tenth of the event loop's time: a write that took
                            # 80 ms (a 200-host mesh) waits 0.8 s before the next one


class StatusPublisher:
    """Writes the status when something changed (at most every STATUS_INTERVAL) and on a heartbeat."""

    def __init__(self, path: Path, document: Callable[[], dict], *, metrics: MetricsServer | None,
                 events: EventPublisher | None):
        self._path = path
        self._document = document
        self.metrics = metrics
        self._events = events
        self._published: set[str] = set()
        self.due = False

    async def run(self) -> None:
        last, interval = 0.0, STATUS_INTERVAL
        while True:
            await asyncio.sleep(interval)
            if self.due or time.monotonic() - last > STATUS_HEARTBEAT:
                self.due = False
                last = time.monotonic()
                self.publish(self._document())
                interval = max(STATUS_INTERVAL, (time.monotonic() - last) / STATUS_SHARE)

    def publish(self, status: dict) -> None:
        try:
            # Compact: json's C encoder (indent= falls back to pure Python: 0.8 s instead of 0.14 s at 200 hosts).
            certs.write_public(self._path, json.dumps(status, sort_keys=True, separators=(",", ":")) + "\n")
        except OSError as exc:  # e.g. a full disk: keep serving metrics and MQTT, and say so
            log.error("cannot write %s: %s", self._path, exc)
        if self.metrics is not None:
            self.metrics.collector.status = status
        if self._events is not None:
            states = mqtt_states(status)
            for topic in self._published - set(states):
                self._events.state(topic, None)
            for topic, payload in states.items():
                self._events.state(topic, payload)
            self._published = set(states)
