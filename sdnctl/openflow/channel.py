"""FlowChannel: the daemon's asyncio face of the OpenFlow channel.

os-ken runs in a daemon thread (`runtime.Runtime`); this side keeps what should be connected,
what is, and supervises that thread: if it or os-ken's app dies, a new runtime is started and
every ensured switch is dialled again, which fires `on_connect` so the caller re-applies flows.
When a switch reports that someone else changed sdnctl's flows, `on_drift` fires (at most once per
burst and once per DRIFT_HOLDOFF per switch), and the caller re-syncs them the same way.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import itertools
import logging
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sdnctl.core.model import FlowSpec
from sdnctl.openflow import codec, runtime
from sdnctl.errors import OpenFlowError

log = logging.getLogger(__name__)

SUPERVISE_INTERVAL = 0.5
DRIFT_SETTLE = 0.05     # a burst of drift reports (one per flow deleted) within this is one on_drift
DRIFT_HOLDOFF = 1.0     # at most one on_drift per switch this often, even if another controller fights us

_owner_lock = threading.Lock()
_owner: FlowChannel | None = None   # os-ken's AppManager is a process singleton: one channel at a time


@dataclass
class _Target:
    address: str
    port: int
    pin_pem: str
    pin_der: bytes
    gen: int
    datapath_id: int | None = None    # the bridge's, from OVSDB: FEATURES_REPLY must name it


@dataclass
class _Status:
    connected: bool = False
    error: str | None = None


def _settle(future: asyncio.Future, result, error: str | None) -> None:
    """A request's outcome, from the runtime: its result, or an OpenFlowError."""
    if future.done():
        return
    if error is not None:
        future.set_exception(OpenFlowError(error))
    else:
        future.set_result(result)


class FlowChannel:
    """os-ken in a daemon thread; one outgoing mutual-TLS connection per switch (bridge), host cert pinned."""

    def __init__(self, client_cert: str, client_key: str):
        self.client_cert = str(client_cert)
        self.client_key = str(client_key)
        self.on_connect: Callable[[str], None] | None = None   # called on the loop on every (re)connect
        self.on_drift: Callable[[str], None] | None = None     # called on the loop when others changed our flows
        self.label: Callable[[str], str] = lambda key: key     # a switch's key as log lines name it
        self.restarts = 0                                      # times supervision restarted os-ken
        self.drift_reports: Counter[str] = Counter()           # per switch: reports of drift (before coalescing)
        self._drift = _DriftGate()
        self._targets: dict[str, _Target] = {}
        self._status: dict[str, _Status] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._gens = itertools.count(1)
        self._runtime: runtime.Runtime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._supervisor: asyncio.Task | None = None
        self._started = False
        self._callbacks: set[asyncio.Future] = set()

    # --- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start os-ken (AppManager) in a daemon thread; idempotent.

        Supervision runs on the asyncio loop, from the first call made on it (or this one, if on it).
        """
        if self._started:
            return
        _check_credentials(self.client_cert, self.client_key)
        global _owner
        with _owner_lock:
            if _owner is not None and _owner is not self:
                raise OpenFlowError("another FlowChannel already runs os-ken in this process; stop it first")
            _owner = self
        try:
            self._runtime = self._spawn_runtime()
            self._dial_all(self._runtime)
        except BaseException:
            with _owner_lock:
                _owner = None
            raise
        self._started = True
        self._bind_loop()

    def stop(self) -> None:
        """Close every connection and stop os-ken; ensured switches are kept for a later start().

        Call it on the loop's thread (or with no loop); it blocks until os-ken's thread ends, at most
        runtime.STOP_TIMEOUT + 1 s.
        """
        global _owner
        self._started = False
        self._drift.clear()
        if self._supervisor is not None:
            self._supervisor.cancel()
            self._supervisor = None
        rt, self._runtime = self._runtime, None
        if rt is not None:
            rt.stop()
        for status in self._status.values():
            status.connected, status.error = False, "the OpenFlow channel is stopped"
        with _owner_lock:
            if _owner is self:
                _owner = None

    def _spawn_runtime(self) -> runtime.Runtime:
        """A started runtime with no switches yet (safe to call from a worker thread)."""
        rt = runtime.Runtime(self.client_cert, self.client_key, self._post, self)
        rt.start()
        return rt

    def _dial_all(self, rt: runtime.Runtime) -> None:
        """Hand every ensured switch to `rt`, each under a new generation (older reports are ignored)."""
        for key, target in self._targets.items():
            target.gen = next(self._gens)
            rt.command("ensure", key, target.gen, target.address, target.port, target.pin_pem, target.pin_der,
                       target.datapath_id)

    def _bind_loop(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if loop is not self._loop:
            self._loop = loop
            if self._supervisor is not None:
                self._supervisor.cancel()
            self._supervisor = None
        if self._started and self._supervisor is None:
            self._supervisor = loop.create_task(self._supervise(), name="sdnctl-openflow-supervisor")

    def _post(self, fn, *args) -> None:
        """From the os-ken thread: run fn(*args) on the asyncio loop (dropped if the loop is gone)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(SUPERVISE_INTERVAL)
            rt = self._runtime
            if not self._started or rt is None or rt.alive():
                continue
            log.error("the OpenFlow runtime (os-ken) died; restarting it and reconnecting %d switch(es)",
                      len(self._targets))
            self.restarts += 1
            await asyncio.to_thread(rt.stop)
            if not self._started or self._runtime is not rt:
                continue
            for status in self._status.values():
                status.connected, status.error = False, "os-ken restarted; reconnecting"
            try:
                new = await asyncio.to_thread(self._spawn_runtime)   # waits (bounded) for os-ken's thread
            except OpenFlowError as exc:
                log.error("restarting the OpenFlow runtime failed (will retry): %s", exc)
                continue
            if self._started and self._runtime is rt:
                self._runtime = new
                self._dial_all(new)   # includes switches ensured (into the dead runtime) meanwhile
            else:
                await asyncio.to_thread(new.stop)

    # --- switches --------------------------------------------------------------------------
    async def ensure(self, key: str, address: str, port: int, pinned_cert_pem: str,
                     datapath_id: int | None = None) -> None:
        """Keep a connection to that switch's `pssl:` listener (reconnecting with capped, jittered backoff).

        Returns at once; `connected(key)` turns True after the switch's FEATURES_REPLY. With
        `datapath_id` (the bridge's, from OVSDB), a switch whose FEATURES_REPLY names another
        datapath is refused: the listener belongs to another bridge, which sdnctl must never program.
        Calling it again with another address, port, pin or datapath id dials anew.
        """
        pin_der = _checked_target(key, address, port, pinned_cert_pem)
        self.start()
        self._bind_loop()
        target = self._targets.get(key)
        if target is not None and (target.address, target.port, target.pin_der, target.datapath_id) == (
                address, port, pin_der, datapath_id):
            return
        gen = next(self._gens)
        self._targets[key] = _Target(address, port, pinned_cert_pem, pin_der, gen, datapath_id)
        self._status[key] = _Status()
        self._runtime.command("ensure", key, gen, address, port, pinned_cert_pem, pin_der, datapath_id)

    async def forget(self, key: str) -> None:
        """Close the connection to that switch and stop dialling it."""
        self._targets.pop(key, None)
        self._status.pop(key, None)
        self._drift.forget(key)
        lock = self._locks.get(key)
        if lock is not None and not lock.locked():
            del self._locks[key]
        if self._runtime is not None:
            self._runtime.command("forget", key)

    def connected(self, key: str) -> bool:
        """True once the switch sent its FEATURES_REPLY, until the connection drops."""
        status = self._status.get(key)
        return status is not None and status.connected

    def error(self, key: str) -> str | None:
        """Why the switch is not connected, in words (None when connected or still dialling)."""
        status = self._status.get(key)
        return status.error if status is not None else None

    # --- flows -----------------------------------------------------------------------------
    async def sync(self, key: str, desired: Iterable[FlowSpec], timeout: float = 10.0, purge=()) -> tuple[int, int]:
        """Make the switch's sdnctl flows (tables 0 and 1) exactly `desired`; return (added, deleted).

        Dumps the flows carrying sdnctl's cookie prefix, sends only the difference (ADD for missing,
        cookie-limited DELETE_STRICT for extra) and waits for a barrier. A flow whose action changed is
        overwritten by its ADD and counts as one of each. Flows with other cookies are never touched,
        but for the cookies in `purge` (Xen Orchestra's leftovers), deleted in the same batch."""
        return await self._flows(key, desired, timeout, apply=True, purge=tuple(purge))

    async def pending(self, key: str, desired: Iterable[FlowSpec], timeout: float = 10.0) -> codec.FlowPlan:
        """The flow-mods `sync` would send now, sending nothing."""
        return await self._flows(key, desired, timeout, apply=False)

    async def _flows(self, key: str, desired: Iterable[FlowSpec], timeout: float, *, apply: bool, purge=()):
        loop = asyncio.get_running_loop()
        self._bind_loop()
        index = codec.validate(desired)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with asyncio.timeout(timeout):
                async with lock:
                    observed = await self._request(key, runtime.Request("dump", loop.create_future()))
                    plan = codec.plan(index, observed)
                    if not apply:
                        return plan
                    if plan.empty and not purge:
                        return 0, 0
                    await self._request(key, runtime.Request("apply", loop.create_future(),
                                                             add=plan.add, delete=plan.delete, purge=purge))
                    log.info("%s: flows synced: %d added, %d deleted", self.label(key), len(plan.add),
                             len(plan.delete) + len(plan.replaced))
                    return len(plan.add), len(plan.delete) + len(plan.replaced)
        except TimeoutError:
            raise OpenFlowError(f"{key}: flow sync did not finish within {timeout}s (the switch is slow or gone); "
                                "the next sync repairs whatever was half applied") from None

    async def _request(self, key: str, request: runtime.Request):
        target, status, rt = self._targets.get(key), self._status.get(key), self._runtime
        if target is None or status is None:
            raise OpenFlowError(f"{key}: unknown switch; ensure() it first")
        if rt is None:
            raise OpenFlowError(f"{key}: the OpenFlow channel is stopped")
        if not status.connected:
            raise OpenFlowError(f"{key}: not connected to the switch ({status.error or 'still connecting'})")
        rt.command(request.kind, key, target.gen, request)
        try:
            return await request.future
        except asyncio.CancelledError:
            rt.command("cancel", key, request)
            raise

    # --- called on the loop by the runtime -------------------------------------------------
    def link_up(self, key: str, gen: int) -> None:
        target, status = self._targets.get(key), self._status.get(key)
        if target is None or status is None or target.gen != gen:
            return
        status.connected, status.error = True, None
        _call_back(self.on_connect, key, self._callbacks)

    def drift(self, key: str, gen: int, changes: int) -> None:
        """The switch's sdnctl flows changed without sdnctl (`changes` of them; 0: a periodic check)."""
        target, status = self._targets.get(key), self._status.get(key)
        if target is None or status is None or target.gen != gen or not status.connected:
            return
        self.drift_reports[key] += 1
        log.log(logging.INFO if changes else logging.DEBUG, "%s: %s; re-syncing its flows", key,
                f"{changes} flow change(s) not made by sdnctl" if changes else "periodic flow check")
        self._drift.report(key, lambda: key in self._targets and _call_back(self.on_drift, key, self._callbacks))

    def link_down(self, key: str, gen: int, why: str) -> None:
        target, status = self._targets.get(key), self._status.get(key)
        if target is None or status is None or target.gen != gen:
            return
        if status.connected or status.error != why:
            log.warning("%s: OpenFlow connection to %s:%s down: %s", self.label(key), target.address, target.port, why)
        status.connected, status.error = False, why

    settle = staticmethod(_settle)      # called on the loop by the runtime


def _call_back(callback: Callable[[str], object] | None, key: str, tasks: set[asyncio.Future]) -> None:
    """Call an on_connect / on_drift callback; an async one runs as a task kept in `tasks`."""
    if callback is None:
        return
    try:
        result = callback(key)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            tasks.add(task)                  # a task nobody references can vanish mid-run
            task.add_done_callback(tasks.discard)
    except Exception:
        log.exception("%s: callback %s failed", key, getattr(callback, "__name__", callback))


class _DriftGate:
    """One call per burst of drift reports, and at most one per DRIFT_HOLDOFF per switch (on the loop)."""

    def __init__(self) -> None:
        self._due: dict[str, asyncio.TimerHandle] = {}
        self._last: dict[str, float] = {}

    def report(self, key: str, fire: Callable[[], object]) -> None:
        if key in self._due:
            return      # already due: this report joins it
        loop = asyncio.get_running_loop()
        wait = max(DRIFT_SETTLE, self._last.get(key, -DRIFT_HOLDOFF) + DRIFT_HOLDOFF - loop.time())
        self._due[key] = loop.call_later(wait, self._fire, key, fire)

    def _fire(self, key: str, fire: Callable[[], object]) -> None:
        del self._due[key]
        self._last[key] = asyncio.get_running_loop().time()
        fire()

    def forget(self, key: str) -> None:
        handle = self._due.pop(key, None)
        if handle is not None:
            handle.cancel()
        self._last.pop(key, None)

    def clear(self) -> None:
        for key in list(self._due):
            self.forget(key)
        self._last.clear()


def _check_credentials(cert_file: str, key_file: str) -> None:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert_file, key_file)
    except (OSError, ValueError) as exc:
        raise OpenFlowError(f"cannot load the client certificate {cert_file} / key {key_file}: "
                            f"{exc}; fix: `sdnctl certs` recreates them") from exc


def _checked_target(key: str, address: str, port: int, pinned_cert_pem: str) -> bytes:
    """The pinned certificate in DER, once the switch's address, port and pin are known to be usable."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise OpenFlowError(f"{key}: switch address {address!r} is not an IP address") from None
    if not isinstance(port, int) or not 0 < port < 65536:
        raise OpenFlowError(f"{key}: OpenFlow port {port!r} is not a TCP port")
    try:
        return ssl.PEM_cert_to_DER_cert(pinned_cert_pem.strip())
    except (ValueError, AttributeError) as exc:
        raise OpenFlowError(f"{key}: the pinned host certificate is not a PEM certificate: {exc}") from None
