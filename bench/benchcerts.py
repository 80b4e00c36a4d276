"""A throwaway CA and client certificate for a bench run, in its own directory."""

from __future__ import annotations

import datetime
from pathlib import Path

from sdnctl import certs


def bench_certs(workdir: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, client certificate, client key) written under `workdir` (the key mode 0600)."""
    workdir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = certs.make_ca("bench CA", now)
    client = certs.issue_leaf(ca, "sdnctl bench", now, client=True, server=False)
    certs.write_public(workdir / "ca.pem", ca.cert_pem)
    certs.write_public(workdir / "client.crt", client.cert_pem)
    certs.write_private(workdir / "client.key", client.key_pem)
    return workdir / "ca.pem", workdir / "client.crt", workdir / "client.key"
