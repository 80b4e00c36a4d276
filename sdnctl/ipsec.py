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
from pathlib import Path

from sdnctl.certs import make_private_dir, own_like_parent, write_private

PSK_BYTES = 32


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
        try:
            return self._path(network_id).read_text().strip() or None
        except FileNotFoundError:
            return None

    def get_or_create(self, network_id: str) -> str:
        """The network's PSK; created (exclusively, so concurrent creators agree) if it has none."""
        self._ensure_dir()
        path = self._path(network_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self.get(network_id)
        own_like_parent(path)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(PSK_BYTES) + "\n")
        return self.get(network_id)

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
