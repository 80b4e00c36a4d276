"""IPsec pre-shared keys: one strong random secret per private network, kept in the state dir only.

Secrets never go into XAPI `other_config` (every XAPI reader can see it), logs or `status`.
One key per network rather than per host pair: every tunnel of the network is rekeyed at once,
a joining host needs no new secret, and the secret is as exposed as the network itself (any
host of it holds it in its OVSDB either way).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from sdnctl.certs import make_private_dir, write_private, write_synced

PSK_BYTES = 32
DELETED_KEY_GRACE = 7 * 86400   # seconds a deleted network's key is kept aside (a pool may only be away)
log = logging.getLogger(__name__)


class KeyCorrupt(OSError):
    """A key file that is empty or holds no key (a crash or a full disk at the wrong moment, before sdnctl
    wrote keys atomically)."""


def _looks_like_a_key(text: str) -> bool:
    """What `secrets.token_urlsafe(PSK_BYTES)` makes: 43 characters of [A-Za-z0-9_-] (at least 16 accepted)."""
    return len(text) >= 16 and all(c.isascii() and (c.isalnum() or c in "-_") for c in text)


class PskStore:
    """`<state_dir>/ipsec/<private network uuid>.psk`, mode 0600, in a 0700 directory."""

    def __init__(self, state_dir: Path):
        self.dir = state_dir / "ipsec"

    def _path(self, network_id: str) -> Path:
        if not network_id or "/" in network_id or network_id.startswith("."):
            raise ValueError(f"not a network id: {network_id!r}")
        return self.dir / f"{network_id}.psk"

    def _ensure_dir(self) -> None:
        make_private_dir(self.dir)

    def get(self, network_id: str) -> str | None:
        """The network's PSK; None if it has none. KeyCorrupt for a key file that is empty or not a key."""
        try:
            psk = self._path(network_id).read_text().strip()
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            psk = ""
        if not _looks_like_a_key(psk):
            raise KeyCorrupt(f"{self._path(network_id)} is {'empty' if not psk else 'not a key'}")
        return psk

    def get_or_create(self, network_id: str) -> str:
        """The network's PSK, made on first sight; a corrupt key file is replaced with a new key (and logged).

        Made atomically and exclusively: written and fsynced under a temporary name, then linked into
        place, which fails if another creator got there first (both then use the same key). A full disk
        leaves no file at all, never an empty one.
        """
        self._ensure_dir()
        try:
            psk = self.get(network_id)
        except KeyCorrupt as exc:
            log.error("IPsec key of network %s: %s; making a new one (every tunnel of it gets it)", network_id, exc)
            self.rotate(network_id)
            return self.get(network_id) or ""
        if psk is not None:
            return psk
        path = self._path(network_id)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            write_synced(tmp, secrets.token_urlsafe(PSK_BYTES) + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass    # another creator won: its key is the network's
        finally:
            tmp.unlink(missing_ok=True)
        return self.get(network_id) or ""

    def prune(self, network_ids: Iterable[str], grace: float, now: float) -> list[str]:
        """Keys of networks no longer in `network_ids` are set aside (`.psk.deleted`), and removed once set
        aside for `grace` seconds; a network that comes back within it gets its key back. Returns the
        network ids whose keys were removed. Call it only with a complete picture of every pool."""
        known, removed = set(network_ids), []
        try:
            entries = list(self.dir.iterdir())
        except FileNotFoundError:
            return []
        for path in entries:
            if path.name.endswith(".psk") and path.name[:-4] not in known:
                os.replace(path, path.with_name(path.name + ".deleted"))
                os.utime(path.with_name(path.name + ".deleted"), (now, now))
            elif path.name.endswith(".psk.deleted"):
                network_id = path.name[:-len(".psk.deleted")]
                if network_id in known:
                    os.replace(path, self._path(network_id))
                elif now - path.stat().st_mtime > grace:
                    path.unlink()
                    removed.append(network_id)
        return removed

    def rotate(self, network_id: str) -> None:
        """A new PSK for the network; the daemon applies it to both ends of every tunnel."""
        self._ensure_dir()
        write_private(self._path(network_id), secrets.token_urlsafe(PSK_BYTES) + "\n")

    def version(self) -> tuple:
        """Changes whenever a key file is added, replaced or removed (for polling)."""
        try:
            return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in self.dir.iterdir()))
        except FileNotFoundError:
            return ()


class RedactSecrets(logging.Filter):
    """Masks every registered secret in log records, a last line of defence behind never logging them."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        self._secrets.add(secret)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            record.msg, record.args = self.redact(message), None
        return True


REDACTOR = RedactSecrets()
