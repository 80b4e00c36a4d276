"""What every message works on, as xapi hands each call its `__context`: one pool's state, behind one lock."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.store import Store

if TYPE_CHECKING:
    from sdnctl.lab.xapi.networkd import SwitchBackend
    from sdnctl.lab.xapi.server import Listeners


@dataclasses.dataclass
class Dom0:
    """What a host runs besides xapi: its switch (None: API semantics only) and the next domid it hands out."""

    backend: SwitchBackend | None
    next_domid: int = 1

    def take_domid(self) -> int:
        domid = self.next_domid
        self.next_domid += 1
        return domid


@dataclasses.dataclass
class Ha:
    """The lab's HA (xapi's Xapi_ha with xhad): on after `pool.enable_ha` in xapi, here from the start if `delay`."""

    delay: float | None                 # seconds from the master's death to a new master; None: HA is off
    due: float | None = None            # when (monotonic) the surviving hosts elect a new master

    @property
    def enabled(self) -> bool:
        return self.delay is not None


# Seconds xenopsd takes to build a domain and plug its devices, between xapi scheduling a VM on a host and its
# VIF ports appearing there (real hosts: seconds). The database is free meanwhile, as in xapi.
DOMAIN_BUILD = 1.0


class Context:
    """One pool: database, sessions, CA certificates, each host's dom0 and listeners; `event.from` waits on `cond`.

    Each listener serves a view of it (`serving`) that knows its host, as xapi's __context knows localhost.
    """

    def __init__(self, name: str, credentials: tuple[str, str], admin: object | None, listeners: Listeners,
                 *, ha_delay: float | None = None, on_master_change: Callable[[], None] = lambda: None):
        self.name = name
        self.credentials = credentials
        self.admin = admin                                # serves the `lab.*` verbs
        self.cond = threading.Condition(threading.RLock())
        self.store = Store()
        self.sessions: dict[str, str | None] = {}         # session -> the host it is local to (None: a pool session)
        self.dom0s: dict[str, Dom0] = {}
        self.guest_ips: dict[str, str | None] = {}
        self.ca_certs: dict[str, str] = {}
        self.listeners = listeners                        # opened as hosts join or recover, closed as they go
        self.ha = Ha(ha_delay)
        self.on_master_change = on_master_change          # told after pool.master changed (under the lock)
        self.host: str | None = None                      # the host serving the call (see `serving`)
        self.domain_build = DOMAIN_BUILD                  # seconds from VM scheduled on a host to its VIF ports there
        self.pool_ref = self.store.create("pool", name_label=name)

    def serving(self, host: str) -> Context:
        """This pool as `host`'s listeners serve it: every container is shared, only `host` differs."""
        view = copy.copy(self)
        view.host = host
        return view

    @contextlib.contextmanager
    def state(self) -> Iterator[None]:
        """Hold the state lock; wake event.from callers if the database changed meanwhile."""
        with self.cond:
            before = self.store.generation
            try:
                yield
            finally:
                if self.store.generation != before:
                    self.cond.notify_all()

    def pause(self, seconds: float) -> None:
        """Let go of the state lock for `seconds` (held by the calling message), as xapi does slow work outside
        the database: event.from callers see what changed so far, other calls run. Not before the wire is up."""
        if seconds <= 0 or not self.listeners.started:
            return
        self.cond.notify_all()
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.cond.wait(left)

    def pool(self) -> dict[str, Any]:
        return self.store.record("pool", self.pool_ref)

    def records(self, cls: str, **match: Any) -> list[dict[str, Any]]:
        return [self.store.record(cls, ref) for ref in self.store.find(cls, **match)]

    def is_live(self, host: str) -> bool:
        return self.store.record("host_metrics", self.store.record("host", host)["metrics"])["live"]

    def assert_live(self, host: str) -> None:
        if not self.is_live(host):
            raise XapiFailure("HOST_OFFLINE", host)

    def switch(self, host: str) -> SwitchBackend | None:
        """The host's switch if it has one and is live (nobody reaches a dead host's switch)."""
        if not self.is_live(host):
            return None
        dom0 = self.dom0s.get(host)
        return dom0.backend if dom0 is not None else None

    def master_address(self) -> str:
        return self.store.record("host", self.pool()["master"])["address"]

    def sdn_controller(self) -> dict[str, Any] | None:
        refs = self.store.refs("SDN_controller")
        return self.store.record("SDN_controller", refs[0]) if refs else None


def free_name(prefix: str, taken: list[str]) -> str:
    """The first `<prefix>N` not taken, as xapi picks `tunnelN` and `xapiN`."""
    return next(f"{prefix}{n}" for n in range(len(taken) + 1) if f"{prefix}{n}" not in taken)
