"""systemd's notify protocol (sd_notify(3)): READY, STATUS, WATCHDOG, RELOADING and STOPPING as datagrams.

Outside systemd (no NOTIFY_SOCKET) every call does nothing. The watchdog pings come from a task on
the daemon's event loop, so a wedged loop stops them and systemd restarts the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends `KEY=value` lines to $NOTIFY_SOCKET (a path, or `@name` in the abstract namespace)."""

    def __init__(self, environ: Mapping[str, str] = os.environ):
        address = environ.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._socket: socket.socket | None = None
        self._failed = False
        self.ready = False
        self.watchdog_interval = _watchdog_interval(environ) if address else None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, **fields: str) -> None:
        """One datagram, e.g. send(READY="1", STATUS="..."); a failure is logged once, never raised."""
        if not self._address:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto(message, self._address)
            self._failed = False
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd at %s: %s", self._address.replace("\0", "@"), exc)
            self._failed = True

    def status(self, ready: bool, summary: str) -> None:
        """STATUS= every time; READY=1 the first time `ready` holds (and again after a reload)."""
        if ready and not self.ready:
            self.ready = True
            self.send(READY="1", STATUS=summary)
        else:
            self.send(STATUS=summary)

    def reloading(self) -> None:
        self.ready = False
        self.send(RELOADING="1", MONOTONIC_USEC=str(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000))

    def stopping(self) -> None:
        self.send(STOPPING="1")

    async def watchdog(self) -> None:
        """WATCHDOG=1 at half the interval systemd asked for, until cancelled."""
        if self.watchdog_interval is None:
            return
        while True:
            self.send(WATCHDOG="1")
            await asyncio.sleep(self.watchdog_interval)


def _watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """Half of WATCHDOG_USEC (sd_watchdog_enabled(3)), if it is meant for this process."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = environ.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 2 / 1_000_000
