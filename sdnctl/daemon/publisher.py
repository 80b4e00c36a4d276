"""The status writer: status.json, the metrics collector and retained MQTT states, from one status document."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from sdnctl import certs
from sdnctl.config import Config, MqttConfig
from sdnctl.core.status import mqtt_states, network_states, service_summary
from sdnctl.daemon.systemd import Notifier
from sdnctl.daemon.tasks import Tasks, cancel
from sdnctl.events import EventPublisher
from sdnctl.metrics import MetricsServer

log = logging.getLogger(__name__)
T = TypeVar("T")

STATUS_INTERVAL = 0.5       # at most two status.json writes a second
STATUS_HEARTBEAT = 5.0      # and at least one every 5 s, so `status` can tell a stopped daemon
STATUS_SHARE = 0.1          # and never more than a tenth of the event loop's time: a write that took
                            # 80 ms (a 200-host mesh) waits 0.8 s before the next one


class Reuse(Generic[T]):
    """`build` memoized on its last inputs alone: called again with equal ones, it returns the same object."""

    def __init__(self, build: Callable[..., T]):
        self._build = build
        self._last: tuple | None = None

    def __call__(self, *inputs) -> T:
        if self._last is None or self._last[0] != inputs:
            self._last = (inputs, self._build(*inputs))
        return self._last[1]


class StatusPublisher:
    """Writes the status when something changed (at most every STATUS_INTERVAL) and on a heartbeat."""

    def __init__(self, path: Path, document: Callable[[], dict], *, notifier: Notifier):
        self._path = path
        self.notifier = notifier
        self._document = document
        self.metrics: MetricsServer | None = None
        self.events: EventPublisher | None = None
        self._listen: str | None = None            # what `metrics` and `events` were made from
        self._mqtt: MqttConfig | None = None
        self._mqtt_task: asyncio.Task | None = None
        self._published: set[str] = set()
        self._encoded: dict[str, tuple[object, str]] = {}   # top-level key -> (its value, that value's JSON)
        self._network_states: tuple[object, dict] = (None, {})
        self.due = False

    async def configure(self, config: Config, tasks: Tasks) -> list[str]:
        """Start, replace or stop the metrics server and the MQTT publisher to match `config`; one that did
        not change is left as it is. Returns what changed; ConfigError if the metrics address is taken."""
        changes = [what for what, changed in (("metrics", config.metrics_listen != self._listen),
                                              ("mqtt", config.mqtt != self._mqtt)) if changed]
        if config.metrics_listen != self._listen:
            metrics = MetricsServer(config.metrics_listen) if config.metrics_listen else None
            if self.metrics is not None:
                self.metrics.close()
            self.metrics, self._listen = metrics, config.metrics_listen
            if metrics is not None:
                log.info("metrics on http://%s/metrics", config.metrics_listen)
        if config.mqtt != self._mqtt:
            if self._mqtt_task is not None:
                await cancel(self._mqtt_task)     # says "offline" on the old broker
            self.events = EventPublisher(config.mqtt, on_connection=lambda: setattr(self, "due", True)) \
                if config.mqtt is not None else None
            self._mqtt_task = tasks.spawn(self.events.run(), name="mqtt") if self.events is not None else None
            self._published, self._mqtt = set(), config.mqtt
        self.due = True
        return changes

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()

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
            certs.write_public(self._path, self._encode(status))
        except OSError as exc:  # e.g. a full disk: keep serving metrics and MQTT, and say so
            log.error("cannot write %s: %s", self._path, exc)
        self.notifier.status(status["ready"], service_summary(status))
        if self.metrics is not None:
            self.metrics.collector.status = status
        if self.events is not None:
            if self._network_states[0] is not status["networks"]:
                self._network_states = (status["networks"], network_states(status["networks"]))
            states = mqtt_states(status) | self._network_states[1]
            for topic in self._published - set(states):
                self.events.state(topic, None)
            for topic, payload in states.items():
                self.events.state(topic, payload)
            self._published = set(states)

    def _encode(self, status: dict) -> str:
        """The document as compact JSON, each top-level value encoded again only when it is a new object:
        the networks section (most of the bytes) is reused as long as the World and the ports are."""
        parts = []
        for key in sorted(status):
            value = status[key]
            if key not in self._encoded or self._encoded[key][0] is not value:
                # Compact: json's C encoder (indent= falls back to pure Python, 6x slower at 200 hosts).
                self._encoded[key] = (value, json.dumps(value, sort_keys=True, separators=(",", ":")))
            parts.append(f"{json.dumps(key)}:{self._encoded[key][1]}")
        return "{" + ",".join(parts) + "}\n"
