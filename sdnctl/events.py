"""sdnctl's state and events on MQTT, for dashboards and automation (topics: docs/events.md).

The daemon calls `state()` and `event()` without waiting; `run()` delivers them whenever the
broker is there. Retained states are held in memory and published again on every connect, so a
broker that restarted empty gets the whole picture back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable

import aiomqtt

from sdnctl.config import MqttConfig
from sdnctl.retry import Backoff

log = logging.getLogger(__name__)

TIMEOUT = 5.0               # seconds for a connect, a publish's acknowledgement, or a disconnect


def _json(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


class EventPublisher:
    """Publishes sdnctl's state to MQTT; never blocks or breaks the daemon when the broker is away."""

    def __init__(self, config: MqttConfig, *, client_id: str = "sdnctl", queue_size: int = 1000,
                 on_connection: Callable[[], None] = lambda: None):
        """`on_connection` is called whenever `connected` changes (the status shows it at once)."""
        self.config = config
        self.client_id = client_id
        self._connected = False
        self._on_connection = on_connection
        self.published = 0  # messages the broker acknowledged
        self.dropped = 0    # events dropped, oldest first, while the queue was full
        self._status = f"{config.topic_prefix}/status"
        self._bodies: dict[str, bytes] = {}    # topic -> its state without "time", to skip repeats
        self._retained: dict[str, bytes] = {}  # topic -> its state as published, with the time it changed
        self._unsent: dict[str, bytes] = {}    # topic -> state the broker has not acknowledged; b"" clears
        self._events: deque[tuple[str, bytes]] = deque(maxlen=queue_size)  # (topic, message)
        self._wake = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._connected

    @connected.setter
    def connected(self, value: bool) -> None:
        if value != self._connected:
            self._connected = value
            self._on_connection()

    def state(self, subtopic: str, payload: dict | None) -> None:
        """Set the retained state at <prefix>/<subtopic>, e.g. ("network/<uuid>", {...}); None clears it."""
        topic = self._topic(subtopic)
        body = None if payload is None else _json(payload)
        if body == self._bodies.get(topic):
            return
        if body is None:
            del self._bodies[topic], self._retained[topic]
            self._unsent[topic] = b""  # an empty retained message deletes the broker's copy
        else:
            self._bodies[topic] = body
            self._retained[topic] = self._unsent[topic] = _json({**payload, "time": time.time()})
        self._wake.set()

    def event(self, subtopic: str, payload: dict) -> None:
        """Queue a non-retained event at <prefix>/<subtopic>, e.g. ("events/center", {...})."""
        message = (self._topic(subtopic), _json({**payload, "time": time.time()}))
        if len(self._events) == self._events.maxlen:
            self.dropped += 1  # append() below pushes the oldest out
        self._events.append(message)
        self._wake.set()

    async def run(self) -> None:
        """Stay connected and publish, until cancelled; then say "offline" and disconnect cleanly."""
        backoff = Backoff()
        while True:
            try:
                async with self._client() as client:
                    backoff.reset()
                    self.connected = True
                    try:
                        await self._serve(client)
                    except asyncio.CancelledError:
                        with contextlib.suppress(aiomqtt.MqttError):  # then the broker sends the will instead
                            await client.publish(self._status, b"offline", qos=1, retain=True)
                        raise
                    finally:
                        self.connected = False
            except (aiomqtt.MqttError, OSError) as exc:  # OSError: the CA or password file
                if asyncio.current_task().cancelling():  # the disconnect on the way out failed: still stop
                    raise asyncio.CancelledError from exc
                delay = backoff.next()
                log.warning("MQTT broker %s:%d: %s; retrying in %.1fs", self.config.host, self.config.port, exc,
                            delay)
                await asyncio.sleep(delay)

    def _topic(self, subtopic: str) -> str:
        # Checked here, in the caller, so that a bad topic never reaches (and stops) run().
        if not subtopic or any(c in subtopic for c in "+#\0"):
            raise ValueError(f"MQTT subtopic {subtopic!r} is empty or holds + # or NUL")
        return f"{self.config.topic_prefix}/{subtopic}"

    def _client(self) -> aiomqtt.Client:
        """A client for one connection; the password is read now, so a rotated one needs no restart."""
        tls = ssl.create_default_context(cafile=self.config.tls_ca_file) if self.config.tls_ca_file else None
        return aiomqtt.Client(
            self.config.host, self.config.port, identifier=self.client_id, timeout=TIMEOUT, tls_context=tls,
            username=self.config.username, password=self.config.password(),
            will=aiomqtt.Will(self._status, b"offline", qos=1, retain=True))

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Say "online", publish every state held, then whatever comes; raises MqttError once disconnected."""
        await self._publish(client, self._status, b"online", retain=True)
        self._unsent = self._retained | self._unsent  # the broker may have restarted with nothing retained
        lost = asyncio.create_task(self._until_lost(client))
        try:
            while not lost.done():
                self._wake.clear()
                await self._flush(client)
                await self._wake.wait()
        finally:
            lost.cancel()
        raise lost.result()

    async def _until_lost(self, client: aiomqtt.Client) -> aiomqtt.MqttError:
        """Why the connection dropped, once it has: nothing is subscribed, so no message arrives before."""
        try:
            await anext(client.messages)
        except aiomqtt.MqttError as exc:  # "Disconnected during message iteration", from the reason
            return aiomqtt.MqttError(f"connection lost ({exc.__cause__ or exc})")
        finally:
            self._wake.set()

    async def _flush(self, client: aiomqtt.Client) -> None:
        """Publish the unsent states, then the queued events, oldest first."""
        while self._unsent:
            topic, message = next(iter(self._unsent.items()))
            await self._publish(client, topic, message, retain=True)
            if self._unsent.get(topic) == message:  # else it changed meanwhile: publish the new one
                del self._unsent[topic]
        while self._events:
            topic, message = oldest = self._events.popleft()
            try:
                await self._publish(client, topic, message)
            except aiomqtt.MqttError:
                if len(self._events) < self._events.maxlen:
                    self._events.appendleft(oldest)  # for the next connection
                else:
                    self.dropped += 1  # newer events filled the queue meanwhile
                raise

    async def _publish(self, client: aiomqtt.Client, topic: str, message: bytes, *, retain: bool = False) -> None:
        await client.publish(topic, message, qos=1, retain=retain)
        self.published += 1
