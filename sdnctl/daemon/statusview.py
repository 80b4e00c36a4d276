"""The daemon's status document, read off a running Controller (the document itself is `core.status`)."""

from __future__ import annotations

import datetime
import time
from typing import TYPE_CHECKING

from sdnctl import certs
from sdnctl.config import tls_opt_out
from sdnctl.core.status import ClientCertificate, Facts, HostView, PoolView, status_document
from sdnctl.ovsdb.switch import COUNTERS

if TYPE_CHECKING:
    from sdnctl.daemon.controller import Controller


def daemon_status(controller: Controller) -> dict:
    """Everything `sdnctl status` shows: pools, hosts, and per network desired vs observed."""
    c = controller
    events = c.publisher.events
    hosts = {agent.host.uuid: agent.view() for agent in c.hosts}
    seen = {uuid: view.ports for uuid, view in hosts.items() if view.connected}
    networks: list[dict] = c.networks_section(c.world, seen)
    for uuid, host in c.world.inventory.hosts.items():   # hosts without an agent are shown too, with the reason
        if uuid not in hosts:
            hosts[uuid] = HostView(name=host.name, target=f"{host.address}:{c.config.ovsdb_port}", connected=False,
                                   error=c.hosts.errors.get(uuid) or _unmanaged(c, host.pool), openflow={},
                                   openflow_synced=False, stats=dict.fromkeys((*COUNTERS, "steps"), 0))
    facts = Facts(
        hosts=hosts,
        pools=tuple(PoolView(w.name, w.synced, w.master_url, w.resyncs, c.trust.errors.get(w.name) or w.error,
                             tls_opt_out(w.config)) for w in c.watchers.values()),
        trust=c.trust.view(), certificate=_client_certificate(c.certs),
        mqtt={"connected": events.connected, "published": events.published, "dropped": events.dropped}
        if events else {},
        last_event_at=c.last_event_at, last_commit_at=c.last_commit_at, ready=ready(c))
    return status_document(c.world, facts, time.time(), networks)


def ready(c: Controller) -> bool:
    """Every pool synced into the World (and judged for trust) or failed, and every host of a usable pool
    tried: systemd's READY=1."""
    if not all(w.error or (w.name in c.built and c.trust.decided(w.name)) for w in c.watchers.values()):
        return False
    return c.hosts.tried(uuid for uuid, host in c.world.inventory.hosts.items() if c.trust.usable(host.pool))


def _unmanaged(c: Controller, pool: str) -> str:
    """Why a host has no agent, when its certificate read did not fail: its pool's trust."""
    trust = c.trust.trust.get(pool)
    if c.trust.errors.get(pool):
        return f"not managed: {c.trust.errors[pool]}"
    if trust is not None and not trust.usable:
        return f"not managed: pool {pool} trusts another CA ({trust.message or trust.state})"
    return "not connected yet: waiting for its certificate from XAPI"


def _client_certificate(controller_certs: certs.ControllerCerts) -> ClientCertificate | None:
    try:
        info = certs.cert_info(controller_certs.client_cert, datetime.datetime.now(datetime.timezone.utc))
    except (OSError, ValueError, AttributeError):
        return None
    return ClientCertificate(info.fingerprint, info.not_after, info.days_left, info.expiring)
