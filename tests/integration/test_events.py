"""The MQTT publisher against a real mosquitto broker, read back by a separate MQTT client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from sdnctl.config import MqttConfig
from sdnctl.events import EventPublisher
from tests.waiting import wait_for, wait_until

MOSQUITTO = "/usr/sbin/mosquitto"
PREFIX = "test/sdnctl"
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not os.access(MOSQUITTO, os.X_OK), reason=f"needs {MOSQUITTO}")


class Broker:
    """mosquitto on a loopback port, stopped by pid; restarts keep the port (and, like a crash, lose retained)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        with open(self.workdir / "mosquitto.log", "a") as log:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._accepting, timeout=5, what=f"mosquitto accepting on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _accepting(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited ({self.proc.returncode}): {self.log_text()}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def log_text(self) -> str:
        return (self.workdir / "mosquitto.log").read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def broker(tmp_path):
    broker = Broker(tmp_path)
    try:
        for attempt in range(5):  # another process may take the free port before mosquitto binds it
            broker.port = free_port()
            try:
                broker.start()
                break
            except RuntimeError:
                if attempt == 4:
                    raise
        yield broker
    finally:
        broker.stop()


def config(broker: Broker, **overrides) -> MqttConfig:
    return MqttConfig(host="127.0.0.1", port=broker.port, topic_prefix=PREFIX, **overrides)


@contextlib.asynccontextmanager
async def running(publisher: EventPublisher) -> AsyncIterator[asyncio.Task]:
    """publisher.run() as a task, cancelled (and awaited) on the way out."""
    task = asyncio.create_task(publisher.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=15)


@contextlib.asynccontextmanager
async def subscribed(broker: Broker) -> AsyncIterator[list[tuple[str, bytes]]]:
    """A separate client on everything under PREFIX; yields the list of (topic, payload) it receives."""
    received: list[tuple[str, bytes]] = []

    async def collect(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            received.append((message.topic.value, message.payload))

    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=f"watcher-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(f"{PREFIX}/#", qos=1)
        task = asyncio.create_task(collect(client))
        try:
            yield received
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def retained(broker: Broker) -> dict[str, bytes]:
    """What a new subscriber gets under PREFIX: every retained message, by topic."""
    barrier = f"barrier/{uuid.uuid4().hex}"
    found: dict[str, bytes] = {}
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=f"late-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(f"{PREFIX}/#", qos=1)
        await client.subscribe(barrier, qos=1)
        # The broker sends the retained messages on SUBSCRIBE, so ours comes back after all of them.
        await client.publish(barrier, b"", qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                if message.topic.matches(barrier):
                    break
                found[message.topic.value] = message.payload
    return found


async def retained_at(broker: Broker, subtopic: str) -> bytes | None:
    return (await retained(broker)).get(f"{PREFIX}/{subtopic}")


def on(received: list[tuple[str, bytes]], subtopic: str) -> list[bytes]:
    return [payload for topic, payload in received if topic == f"{PREFIX}/{subtopic}"]


def without_time(message: bytes) -> dict:
    payload = json.loads(message)
    assert isinstance(payload.pop("time"), float), message
    return payload


async def test_status_is_online_while_running_and_offline_after_cancel(broker):
    publisher = EventPublisher(config(broker), client_id="pub-status")
    async with running(publisher) as task:
        assert await wait_until(lambda: retained_at(broker, "status"), what="a retained status") == b"online"
        assert publisher.connected
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=15)
    assert not publisher.connected
    assert await retained_at(broker, "status") == b"offline"


async def test_a_killed_publisher_leaves_its_last_will(broker):
    code = ("import asyncio, sys\n"
            "from sdnctl.config import MqttConfig\n"
            "from sdnctl.events import EventPublisher\n"
            "config = MqttConfig(host='127.0.0.1', port=int(sys.argv[1]), topic_prefix=sys.argv[2])\n"
            "asyncio.run(EventPublisher(config, client_id='pub-crash').run())\n")
    crashing = await asyncio.create_subprocess_exec(sys.executable, "-c", code, str(broker.port), PREFIX, cwd=REPO)
    try:
        async with subscribed(broker) as received:
            await wait_until(lambda: on(received, "status") == [b"online"], what="online from the subprocess")
            crashing.kill()  # SIGKILL: no "offline" of its own, no DISCONNECT
            await asyncio.wait_for(crashing.wait(), timeout=5)
            await wait_until(lambda: on(received, "status") == [b"online", b"offline"], what="the last will")
        assert await retained_at(broker, "status") == b"offline"
    finally:
        if crashing.returncode is None:
            crashing.kill()
            await asyncio.wait_for(crashing.wait(), timeout=5)


async def test_retained_state_reaches_late_subscribers_once_per_change_and_clears(broker):
    publisher = EventPublisher(config(broker), client_id="pub-state")
    async with subscribed(broker) as received, running(publisher):
        for _ in range(3):
            publisher.state("network/n1", {"name": "net1", "vni": 7})
        late = await wait_until(lambda: retained_at(broker, "network/n1"), what="retained network/n1")
        assert without_time(late) == {"name": "net1", "vni": 7}
        assert late == json.dumps(json.loads(late), sort_keys=True, separators=(",", ":")).encode()
        assert abs(json.loads(late)["time"] - time.time()) < 60

        publisher.state("network/n1", {"vni": 7, "name": "net1"})  # the same state again
        publisher.state("host/h1", {"name": "h1"})  # published after any network/n1 message: a barrier
        await wait_until(lambda: on(received, "host/h1"), what="host/h1")
        assert on(received, "network/n1") == [late]
        assert publisher.published == 3  # status, network/n1, host/h1

        publisher.state("network/n1", {"name": "net1", "vni": 8})
        await wait_until(lambda: len(on(received, "network/n1")) == 2, what="the changed state")
        assert without_time(on(received, "network/n1")[1]) == {"name": "net1", "vni": 8}

        publisher.state("network/n1", None)
        publisher.state("network/n1", None)
        publisher.state("host/h2", {"name": "h2"})  # the barrier again
        await wait_until(lambda: on(received, "host/h2"), what="host/h2")
        assert on(received, "network/n1")[2:] == [b""]  # the empty retained message that clears
        assert set(await retained(broker)) == {f"{PREFIX}/status", f"{PREFIX}/host/h1", f"{PREFIX}/host/h2"}


async def test_events_wait_for_a_broker_that_is_down(broker, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # every record, whatever its level
    password = "mqtt-s3cret-never-logged"
    (tmp_path / "mqtt.password").write_text(password + "\n")
    publisher = EventPublisher(config(broker, username="sdnctl", password_file=tmp_path / "mqtt.password"),
                               client_id="pub-queue")
    async with running(publisher):
        await wait_until(lambda: publisher.connected, what="the publisher connected")
        broker.stop()
        await wait_until(lambda: not publisher.connected, what="the publisher to notice the broker is gone")
        for n in range(5):
            publisher.event("events/center", {"n": n})
        # The publisher retries 0.5 s or more after it noticed; the subscriber is there well before.
        broker.start()
        async with subscribed(broker) as received:
            await wait_until(lambda: len(on(received, "events/center")) == 5, what="the queued events")
    assert [without_time(m) for m in on(received, "events/center")] == [{"n": n} for n in range(5)]
    assert publisher.dropped == 0
    assert "as pub-queue (p2, c1, k60, u'sdnctl')" in broker.log_text()  # it logged in with the password
    assert "retrying in" in caplog.text
    assert password not in caplog.text


async def test_a_full_queue_drops_the_oldest_events(broker, caplog):
    broker.stop()
    publisher = EventPublisher(config(broker), client_id="pub-tiny", queue_size=2)
    async with running(publisher):
        await wait_until(lambda: "Connection refused; retrying in" in caplog.text, what="a refused connect")
        for n in range(5):
            publisher.event("events/host", {"n": n})
        assert publisher.dropped == 3
        broker.start()
        async with subscribed(broker) as received:
            await wait_until(lambda: len(on(received, "events/host")) == 2, what="the two newest events")
    assert [without_time(m) for m in on(received, "events/host")] == [{"n": 3}, {"n": 4}]


async def test_a_restarted_broker_gets_every_retained_state_back(broker):
    publisher = EventPublisher(config(broker), client_id="pub-restart")
    publisher.state("network/n1", {"name": "net1"})
    publisher.state("host/h1", {"name": "h1"})
    async with running(publisher):
        before = await wait_until(lambda: _all_states(broker), what="both states retained")
        broker.restart()  # persistence false: it comes back with nothing retained
        after = await wait_until(lambda: _all_states(broker), what="both states retained again")
    assert after == before


async def _all_states(broker: Broker) -> dict[str, bytes] | None:
    found = await retained(broker)
    wanted = {f"{PREFIX}/{subtopic}" for subtopic in ("status", "network/n1", "host/h1")}
    return found if set(found) == wanted else None
