"""Building the World of one refresh from the pools' mirrors and the IPsec key store."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping

from sdnctl.config import Config
from sdnctl.core.hostplan import World
from sdnctl.core.inventory import Inventory, build_inventory
from sdnctl.core.topology import bfd_settings, desired_tunnels
from sdnctl.ipsec import DELETED_KEY_GRACE, REDACTOR, PskStore
from sdnctl.xapi.watcher import PoolWatcher

log = logging.getLogger(__name__)


def read_psks(inventory: Inventory, store: PskStore, *, create: bool) -> tuple[dict[str, str], dict[str, str]]:
    """(network id -> PSK, network id -> why it has none) for every encrypted network; with `create`, a key
    is made on first sight. A network whose key cannot be read or made is frozen with that error in status
    (a full disk, a read-only state dir); the others go on."""
    psks, errors = {}, {}
    for network in inventory.networks:
        if not network.encrypted or network.error:
            continue
        try:
            psk = store.get_or_create(network.id) if create else store.get(network.id)
        except OSError as exc:   # KeyCorrupt too, without `create`
            errors[network.id] = (f"cannot read or create its IPsec key in {store.dir}: {exc}; its tunnels are "
                                  "left as they are")
            log.error("network %s (%s): %s", network.name, network.id, errors[network.id])
            continue
        if psk:
            REDACTOR.add(psk)
            psks[network.id] = psk
    return psks, errors


def build_world(watchers: Iterable[PoolWatcher], store: PskStore, config: Config, *, create_keys: bool,
                avoid: Mapping[str, frozenset[str]] | None = None, reclaim: frozenset[str] = frozenset()) -> World:
    """The desired picture of every pool as mirrored now, with the config's defaults (topology, fail_mode, BFD).

    `avoid`: hosts per network that must not be its star's center (dead by BFD, daemon.health);
    `reclaim`: networks whose preferred center takes the role back now (daemon.centers)."""
    pools = list(watchers)
    inventory = build_inventory({w.name: w.records for w in pools if w.records}, config.topology)
    psks, key_errors = read_psks(inventory, store, create=create_keys)
    if key_errors:   # frozen like a malformed network, and status says why
        inventory = dataclasses.replace(inventory, networks=tuple(
            dataclasses.replace(n, error=key_errors[n.id]) if n.id in key_errors else n for n in inventory.networks))
    desired = desired_tunnels(inventory.snapshot, psks,
                              bfd=bfd_settings(config.bfd, config.bfd_min_rx_ms, config.bfd_min_tx_ms), avoid=avoid,
                              reclaim=reclaim)
    return World(inventory=inventory, desired=desired, complete=all(w.resyncs for w in pools),
                 fail_mode=config.fail_mode, network_fail_modes=inventory.fail_modes)


def prune_keys(world: World, store: PskStore, now: float) -> None:
    """Set aside the keys of networks that are gone, and remove those set aside for DELETED_KEY_GRACE; only
    on a complete picture (a pool not heard from may still hold the network)."""
    if not world.complete:
        return
    try:
        removed = store.prune((n.id for n in world.inventory.networks), DELETED_KEY_GRACE, now)
    except OSError as exc:
        log.error("cannot tidy the IPsec keys in %s: %s", store.dir, exc)
        return
    for network_id in removed:
        log.info("removed the IPsec key of network %s, deleted over %d days ago", network_id,
                 DELETED_KEY_GRACE // 86400)
