"""PreferredCenters: a star's preferred center takes the role back once it has been eligible for a hold time.

The one time-dependent thing, since when each preferred center has been waiting, lives here;
`core.topology.preferred_waits` and `reclaims` decide, with `now` passed in. A host that flaps
never waits long enough, so it cannot make the network's center flap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sdnctl.core.hostplan import World
from sdnctl.core.topology import preferred_waits, reclaims


class PreferredCenters:
    """Tracks the waiting preferred centers after each refresh, and wakes the refresh when a hold ends."""

    def __init__(self, hold: float, *, on_due: Callable[[], None]):
        self.hold = hold
        self._on_due = on_due
        self._waits: dict[str, float] = {}     # network id -> since when its preferred center waits (monotonic)
        self._fired: set[str] = set()           # networks whose hold ended and were handed to the refresh
        self._changed = asyncio.Event()

    def reclaim(self) -> frozenset[str]:
        """Networks whose preferred center takes the role back in this refresh."""
        return reclaims(self._waits, time.monotonic(), self.hold)

    def update(self, world: World) -> None:
        """Follow the World a refresh just built."""
        self._waits = preferred_waits(world.inventory.networks, world.desired.centers, world.desired.avoided,
                                      self._waits, time.monotonic())
        self._fired &= set(self._waits)
        self._changed.set()

    async def run(self) -> None:
        while True:
            pending = {network: start + self.hold for network, start in self._waits.items()
                       if network not in self._fired}
            due = min(pending.values(), default=None)
            try:
                await asyncio.wait_for(self._changed.wait(), None if due is None else max(0.0, due - time.monotonic()))
                self._changed.clear()
            except asyncio.TimeoutError:
                self._fired |= {network for network, at in pending.items() if at <= time.monotonic()}
                self._on_due()
