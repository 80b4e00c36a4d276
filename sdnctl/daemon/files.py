"""Watching the files a running daemon must follow: the client certificate and the IPsec keys."""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable

from sdnctl import certs
from sdnctl.errors import CertError
from sdnctl.ipsec import PskStore

log = logging.getLogger(__name__)

FILE_POLL = 2.0   # how often the client certificate and the PSK files are checked for changes


async def watch_files(paths: certs.ControllerCerts, psks: PskStore, *, keys_changed: Callable[[], None],
                      certificate_rotated: Callable[[], Awaitable[None]]) -> None:
    """Pick up a rotated client certificate (once it checks out) and new or rotated PSKs."""
    def cert_version():
        return paths.client_cert.stat().st_mtime_ns, paths.client_key.stat().st_mtime_ns

    cert_seen, psk_seen = cert_version(), psks.version()
    while True:
        await asyncio.sleep(FILE_POLL)
        if psks.version() != psk_seen:
            psk_seen = psks.version()
            log.info("IPsec keys changed; re-applying")
            keys_changed()
        if cert_version() != cert_seen:
            cert_seen = cert_version()
            try:
                certs.check_controller_certs(paths, datetime.datetime.now(datetime.timezone.utc))
            except CertError as exc:
                log.error("not using the new client certificate: %s", exc)
                continue
            log.info("client certificate rotated; reconnecting host by host")
            await certificate_rotated()
