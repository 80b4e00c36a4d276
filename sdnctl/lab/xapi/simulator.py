"""The lab's handle on one simulated pool: start and stop its wire, its monitor, and the scenario verbs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sdnctl.lab.xapi import host, pool, session, templates, vm
from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.networkd import SwitchBackend
from sdnctl.lab.xapi.server import Listeners

METRICS_INTERVAL = 5.0      # xcp-rrdd's memory monitor writes host_metrics about this often
JOIN_STEP = 0.3             # between a joining host's steps, so that each is its own event.from batch


class PoolSimulator:
    """One simulated pool: xapi's API on every host's address, xcp-networkd on every host's switch."""

    def __init__(self, name: str, *, username: str = "root", password: str, http_port: int = 80,
                 https_port: int = 443, admin: object | None = None, ha_delay: float | None = None,
                 on_master_change: Callable[[], None] = lambda: None):
        """`ha_delay`: HA on, a survivor takes over that long after the master dies. `on_master_change` is
        called (holding the pool's lock: hand the work to another thread) whenever pool.master moves."""
        self.name = name
        self._ctx = Context(name, (username, password), admin, Listeners(http_port, https_port),
                            ha_delay=ha_delay, on_master_change=on_master_change)
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        # host ref -> when each step of its join landed: introduced, PIFs, tunnels, start of day (benchmarks)
        self.join_steps: dict[str, tuple[float, ...]] = {}

    def start(self) -> None:
        """Listen on every host's address (HTTP, and HTTPS with the host certificate); start the monitor."""
        with self._ctx.cond:
            try:
                self._ctx.listeners.started = True
                for ref in filter(self._ctx.is_live, self._ctx.store.refs("host")):
                    host.listen(self._ctx, ref)
            except BaseException:
                self.stop()
                raise
        self._stopping.clear()
        self._monitor = threading.Thread(target=self._run_monitor, daemon=True, name=f"xapi-sim {self.name} monitor")
        self._monitor.start()

    def stop(self) -> None:
        """Close every listener (blocked callers get their connection closed) and join its thread."""
        self._stopping.set()
        if self._monitor is not None:
            self._monitor.join()
            self._monitor = None
        with self._ctx.cond:
            self._ctx.listeners.stop()
            self._ctx.cond.notify_all()

    def _run_monitor(self) -> None:
        """The pool's clockwork: host_metrics churn every METRICS_INTERVAL, HA's election when due."""
        next_metrics = time.monotonic() + METRICS_INTERVAL
        while True:
            due = min(next_metrics, self._ctx.ha.due or next_metrics)
            if self._stopping.wait(max(0.0, due - time.monotonic())):
                return
            now = time.monotonic()
            with self._ctx.state():
                pool.ha_elect(self._ctx, now)
                if now >= next_metrics:
                    host.refresh_metrics(self._ctx)
                    next_metrics = now + METRICS_INTERVAL

    @property
    def master_ref(self) -> str:
        with self._ctx.cond:
            return self._ctx.pool()["master"]

    def uuid_of(self, ref: str) -> str:
        """The uuid of any object of the pool."""
        with self._ctx.cond:
            return self._ctx.store.uuid_of(ref)

    def is_live(self, host_ref: str) -> bool:
        with self._ctx.cond:
            return self._ctx.is_live(host_ref)

    def add_host(self, backend: SwitchBackend | None, *, name: str, address: str, pifs: dict[str, str | None],
                 master: bool = False) -> str:
        """A host joins as xapi's pool.join lands on the master: host, PIFs, tunnels, then start of day, each
        step its own database change (a live pool's clients see them one by one). The first is the master."""
        with self._ctx.state():
            ref = host.introduce(self._ctx, backend, name=name, address=address, pifs=pifs, master=master)
        steps = (lambda: host.introduce_pifs(self._ctx, ref, pifs), lambda: host.sync_tunnels(self._ctx, ref),
                 lambda: host.start_of_day(self._ctx, ref))
        landed = [time.time()]
        for step in steps:
            if self._ctx.listeners.started:
                self._stopping.wait(JOIN_STEP)
            with self._ctx.state():
                step()
            landed.append(time.time())
        self.join_steps[ref] = tuple(landed)
        return ref

    def eject_host(self, host_ref: str) -> None:
        """pool.eject: the host's VMs halt, its bridges go, and it leaves the database and the wire."""
        with self._ctx.state():
            pool.eject(self._ctx, host_ref)

    def crash_host(self, host_ref: str) -> None:
        """The host dies: its switch is killed, it stops answering, host_metrics.live turns false."""
        with self._ctx.state():
            host.crash(self._ctx, host_ref)

    def recover_host(self, host_ref: str) -> None:
        """The host is back, switch and bridges too; a recovering master restarts xapi."""
        with self._ctx.state():
            host.recover(self._ctx, host_ref)

    def set_master(self, host_ref: str) -> None:
        """pool.designate_new_master: the old master answers HOST_IS_SLAVE, every session is invalid."""
        with self._ctx.state():
            pool.designate_new_master(self._ctx, host_ref)

    def restart(self) -> None:
        """xapi restarts: every session is invalid (SESSION_INVALID); event tokens stay good."""
        session.restart(self._ctx)

    def create_vm(self, name_label: str, guest_ip: str | None = None) -> str:
        """A halted guest VM; `guest_ip` is what its VIFs carry in the lab's data plane."""
        with self._ctx.state():
            return vm.create(self._ctx, name_label, guest_ip)

    def create_templates(self) -> None:
        """The templates and snapshots a real pool carries, so that a first event.from is as large."""
        with self._ctx.state():
            templates.create(self._ctx)
