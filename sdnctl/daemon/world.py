"""Building the World of one refresh from the pools' mirrors and the IPsec key store."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from sdnctl.config import Config
from sdnctl.core.hostplan import World
from sdnctl.core.inventory import Inventory, build_inventory
from sdnctl.core.topology import bfd_settings, desired_tunnels
from sdnctl.ipsec import REDACTOR, PskStore
from sdnctl.xapi.watcher import PoolWatcher

log = logging.getLogger(__name__)


def read_psks(inventory: Inventory, store: PskStore, *, create: bool) -> dict[str, str]:
    """The PSK of every encrypted network; with `create`, made on first sight.

    A key that cannot be read or made leaves its network frozen; the others go on.
    """
    psks = {}
    for network in inventory.networks:
        if not network.encrypted or network.error:
            continue
        try:
            psk = store.get_or_create(network.id) if create else store.get(network.id)
        except OSError as exc:
            log.error("network %s: cannot read or create its IPsec key in %s: %s", network.name, store.dir, exc)
            continue
        if psk:
            REDACTOR.add(psk)
            psks[network.id] = psk
    return psks


def build_world(watchers: Iterable[PoolWatcher], store: PskStore, config: Config, *, create_keys: bool,
                avoid: Mapping[str, frozenset[str]] | None = None, reclaim: frozenset[str] = frozenset()) -> World:
    """The desired picture of every pool as mirrored now, with the config's defaults (topology, fail_mode, BFD).

    `avoid`: hosts per network that must not be its star's center (dead by BFD, daemon.health);
    `reclaim`: networks whose preferred center takes the role back now (daemon.centers)."""
    pools = list(watchers)
    inventory = build_inventory({w.name: w.records for w in pools if w.records}, config.topology)
    desired = desired_tunnels(inventory.snapshot, read_psks(inventory, store, create=create_keys),
                              bfd=bfd_settings(config.bfd, config.bfd_min_rx_ms, config.bfd_min_tx_ms), avoid=avoid,
                              reclaim=reclaim)
    return World(inventory=inventory, desired=desired, complete=all(w.resyncs for w in pools),
                 fail_mode=config.fail_mode, network_fail_modes=inventory.fail_modes)
