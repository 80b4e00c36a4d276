"""ActionExecutor: one XAPI writer per star center, which survives a concurrent writer of the same key."""

from __future__ import annotations

import asyncio

from sdnctl.core.writeback import CENTER_KEY, RecordCenter, SetTunnelStatus
from sdnctl.daemon.executor import CENTER_WRITE_TRIES, ActionExecutor
from sdnctl.daemon.tasks import Tasks
from sdnctl.errors import XapiError


class OtherConfig:
    """A network's other_config with XAPI's per-key semantics; `racer` adds the key between our remove and add."""

    def __init__(self, races: int):
        self.map: dict[str, str] = {}
        self.races = races
        self.calls: list[str] = []

    async def call(self, pool, method, ref, key, value=None):
        self.calls.append(method)
        await asyncio.sleep(0)
        if method == "network.remove_from_other_config":
            self.map.pop(key, None)
            if self.races:
                self.races -= 1
                self.map[key] = "someone-else"
        elif key in self.map:
            raise XapiError("MAP_DUPLICATE_KEY", code="MAP_DUPLICATE_KEY")
        else:
            self.map[key] = value


async def _record(races: int) -> OtherConfig:
    xapi, tasks = OtherConfig(races), Tasks()
    executor = ActionExecutor(xapi.call, tasks)
    action = RecordCenter("n1", "net1", "h2", None, (("pool1", "OpaqueRef:n"),))
    assert executor.submit(action)
    assert not executor.submit(RecordCenter("n1", "net1", "h3", None, (("pool1", "OpaqueRef:n"),)))  # one writer
    for _ in range(100):
        await asyncio.sleep(0)
    return xapi


async def test_a_racing_writer_is_retried_and_the_center_recorded():
    xapi = await _record(races=1)
    assert xapi.map == {CENTER_KEY: "h2"}
    assert xapi.calls.count("network.add_to_other_config") == 2


async def test_a_writer_that_never_stops_racing_costs_a_bounded_number_of_tries():
    xapi = await _record(races=100)
    assert xapi.calls.count("network.add_to_other_config") == CENTER_WRITE_TRIES
    assert xapi.map == {CENTER_KEY: "someone-else"}


async def test_a_status_for_a_tunnel_gone_meanwhile_is_no_warning(caplog):
    async def gone(pool, method, ref, status):
        raise XapiError("HANDLE_INVALID", details=("HANDLE_INVALID", "tunnel", ref))

    tasks = Tasks()
    executor = ActionExecutor(gone, tasks)
    with caplog.at_level("DEBUG", logger="sdnctl.daemon.executor"):
        assert executor.submit(SetTunnelStatus("pool1", "OpaqueRef:t", True, 1))
        for _ in range(100):
            await asyncio.sleep(0)
    assert "tunnel OpaqueRef:t is gone" in caplog.text
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    # and any other failure still is one
    async def refused(pool, method, ref, status):
        raise XapiError("boom", details=("INTERNAL_ERROR",))

    executor = ActionExecutor(refused, tasks)
    with caplog.at_level("DEBUG", logger="sdnctl.daemon.executor"):
        assert executor.submit(SetTunnelStatus("pool1", "OpaqueRef:t", True, 1))
        for _ in range(100):
            await asyncio.sleep(0)
    assert [r for r in caplog.records if r.levelname == "WARNING"]


async def test_a_tunnel_status_asked_for_while_another_is_in_flight_is_written_after_it():
    written, release = [], asyncio.Event()

    async def slow(pool, method, ref, status):
        if not written:
            await release.wait()     # the first write is still in flight when the second is asked for
        written.append(status["active"])

    tasks = Tasks()
    executor = ActionExecutor(slow, tasks)
    assert executor.submit(SetTunnelStatus("pool1", "OpaqueRef:t", False, 1))
    await asyncio.sleep(0)
    assert not executor.submit(SetTunnelStatus("pool1", "OpaqueRef:t", True, 1))   # in flight: deferred
    release.set()
    for _ in range(100):
        await asyncio.sleep(0)
    assert written == ["false", "true"]
