"""The lab's handle on one simulated pool: start and stop its wire, and the scenario verbs."""

from __future__ import annotations

from sdnctl.lab.xapi import host, pool, session, vm
from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.networkd import SwitchBackend
from sdnctl.lab.xapi.server import Listeners


class PoolSimulator:
    """One simulated pool: xapi's API on every host's address, xcp-networkd on every host's switch."""

    def __init__(self, name: str, *, username: str = "root", password: str, http_port: int = 80,
                 https_port: int = 443, admin: object | None = None):
        self.name = name
        self._ctx = Context(name, (username, password), admin, Listeners(http_port, https_port))

    def start(self) -> None:
        """Listen on every host's address: HTTP on http_port, HTTPS (host certificate) on https_port."""
        with self._ctx.cond:
            try:
                self._ctx.listeners.start(self._ctx)
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        """Close every listener (blocked callers get their connection closed) and join its thread."""
        with self._ctx.cond:
            self._ctx.listeners.stop()
            self._ctx.cond.notify_all()

    @property
    def master_ref(self) -> str:
        with self._ctx.cond:
            return self._ctx.pool()["master"]

    def uuid_of(self, ref: str) -> str:
        """The uuid of any object of the pool."""
        with self._ctx.cond:
            return self._ctx.store.uuid_of(ref)

    def add_host(self, backend: SwitchBackend | None, *, name: str, address: str, pifs: dict[str, str | None],
                 master: bool = False) -> str:
        """A host joins (see `host.join`); the first one is the master."""
        with self._ctx.state():
            return host.join(self._ctx, backend, name=name, address=address, pifs=pifs, master=master)

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
        """Master change: the old master answers HOST_IS_SLAVE, every session is invalid."""
        with self._ctx.state():
            pool.designate_new_master(self._ctx, host_ref)

    def restart(self) -> None:
        """xapi restarts: every session is invalid (SESSION_INVALID), older event tokens are lost."""
        session.restart(self._ctx)

    def create_vm(self, name_label: str, guest_ip: str | None = None) -> str:
        """A halted guest VM; `guest_ip` is what its VIFs carry in the lab's data plane."""
        with self._ctx.state():
            return vm.create(self._ctx, name_label, guest_ip)
