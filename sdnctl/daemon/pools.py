"""One XAPI watcher per configured pool, each on its own task; pointed at a new pool list on reload."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from sdnctl.config import PoolConfig
from sdnctl.daemon.tasks import Tasks, cancel
from sdnctl.xapi.watcher import PoolWatcher


class PoolWatchers:
    """`by_name` holds the watchers (pool name -> PoolWatcher); `start` runs them, `follow` changes them."""

    def __init__(self, pools: Iterable[PoolConfig], make_watcher: Callable[..., PoolWatcher],
                 on_change: Callable[[str], None], tasks: Tasks):
        self._make_watcher, self._on_change, self._tasks = make_watcher, on_change, tasks
        self.by_name = {pool.name: make_watcher(pool, on_change) for pool in pools}
        self._running: dict[str, asyncio.Task] = {}

    def start(self) -> None:
        for name, watcher in self.by_name.items():
            if name not in self._running:
                self._running[name] = self._tasks.spawn(watcher.run(), name=f"pool:{name}")

    async def follow(self, pools: Iterable[PoolConfig]) -> list[str]:
        """Watch exactly these pools: one gone or changed is dropped (the next refresh stops its hosts'
        agents, their tunnels stay), a new or changed one is watched, an unchanged one keeps its session.
        Returns what changed, in words."""
        wanted = {pool.name: pool for pool in pools}
        changes = []
        for name in [n for n, w in self.by_name.items() if wanted.get(n) != w.config]:
            changes.append(f"pool {name} {'changed' if name in wanted else 'removed'}")
            if name in self._running:
                await cancel(self._running.pop(name))
            await self.by_name.pop(name).close()
        for name in sorted(set(wanted) - set(self.by_name)):
            if not any(c.startswith(f"pool {name} ") for c in changes):
                changes.append(f"pool {name} added")
            self.by_name[name] = self._make_watcher(wanted[name], self._on_change)
        self.start()
        return changes

    async def close(self) -> None:
        for watcher in self.by_name.values():
            await watcher.close()
