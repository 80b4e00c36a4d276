"""Making a pool trust sdnctl's CA, compared by content (not by name, which is what Xen Orchestra does).

A pool's hosts accept sdnctl's client certificate only if the CA installed in the pool as
`sdn-controller-ca.pem` signed it. When another controller's CA holds that name, the hosts
end every TLS handshake early: the guide's "Client network socket disconnected before
secure TLS connection was established". sdnctl says so plainly instead of looping on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sdnctl import certs
from sdnctl.errors import XapiError

Call = Callable[..., Awaitable]


@dataclass(frozen=True)
class PoolTrust:
    """Where a pool stands: `state` is trusted, installed, replaced, conflict or unverifiable."""

    pool: str
    state: str
    ours: str
    theirs: str | None = None
    message: str | None = None

    @property
    def usable(self) -> bool:
        return self.state in ("trusted", "installed", "replaced", "unverifiable")


async def installed_fingerprint(call: Call) -> tuple[bool, str | None]:
    """(is `sdn-controller-ca.pem` installed?, its SHA-256 fingerprint if XAPI tells it)."""
    names = await call("pool.certificate_list")
    if certs.POOL_CA_NAME not in names:
        return False, None
    try:
        records = await call("Certificate.get_all_records")
    except XapiError:
        return True, None  # XAPI before 8.3 lists CA names only
    for record in records.values():
        if record.get("type") == "ca" and record.get("name") == certs.POOL_CA_NAME:
            return True, record.get("fingerprint_sha256") or record.get("fingerprint")
    return True, None


async def _install(call: Call, pem: str) -> None:
    try:
        await call("pool.install_ca_certificate", certs.POOL_CA_NAME, pem)
    except XapiError as exc:
        if exc.code != "MESSAGE_METHOD_UNKNOWN":  # older XAPI: fall back to the old verb
            raise
        await call("pool.certificate_install", certs.POOL_CA_NAME, pem)


async def _uninstall(call: Call) -> None:
    try:
        await call("pool.uninstall_ca_certificate", certs.POOL_CA_NAME)
    except XapiError as exc:
        if exc.code != "MESSAGE_METHOD_UNKNOWN":  # older XAPI: fall back to the old verb
            raise
        await call("pool.certificate_uninstall", certs.POOL_CA_NAME)


def conflict_message(pool: str, ours: str, theirs: str | None, config_path: str) -> str:
    return (f"pool {pool} trusts a different {certs.POOL_CA_NAME} (SHA-256 {theirs or 'unknown'}) than sdnctl's CA "
            f"(SHA-256 {ours}), probably installed by another controller such as Xen Orchestra; its hosts refuse "
            "sdnctl's client certificate (\"Client network socket disconnected before secure TLS connection was "
            f"established\"). Fix: set override_certs = true in {config_path}, or run "
            f"`sdnctl certs install --override --pool {pool}`")


async def ensure_trust(call: Call, pool: str, ca_pem: str, *, override: bool, config_path: str,
                       replace_unverifiable: bool = False) -> PoolTrust:
    """Install sdnctl's CA in the pool if absent, replace a different one only with `override`, then sync.

    A CA whose content this XAPI cannot show is replaced only when asked explicitly
    (`replace_unverifiable`, the CLI's --override): the daemon would otherwise reinstall it on every resync.
    """
    ours = certs.fingerprint(ca_pem)
    present, theirs = await installed_fingerprint(call)
    if present and certs.same_fingerprint(theirs, ours):
        return PoolTrust(pool, "trusted", ours, theirs)
    if present and (not override or theirs is None and not replace_unverifiable):
        if theirs is None:
            return PoolTrust(pool, "unverifiable", ours, None,
                             f"pool {pool} has a {certs.POOL_CA_NAME} but this XAPI cannot tell whose; if its hosts "
                             "refuse sdnctl, run `sdnctl certs install --override --pool " + pool + "`")
        return PoolTrust(pool, "conflict", ours, theirs, conflict_message(pool, ours, theirs, config_path))
    if present:
        await _uninstall(call)
    await _install(call, ca_pem)
    await call("pool.certificate_sync")
    return PoolTrust(pool, "replaced" if present else "installed", ours, theirs)


async def ensure_controller_introduced(call: Call) -> bool:
    """Introduce sdnctl as the pool's SDN controller (hosts' OVSDB listen on pssl:6640); True if it did."""
    if await call("SDN_controller.get_all"):
        return False
    await call("SDN_controller.introduce", "pssl", "", "0")
    return True
