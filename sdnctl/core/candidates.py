"""PURE: where to look for a pool's master when (re)logging in."""

from __future__ import annotations

from collections.abc import Iterable


def login_order(last_master: str, configured: str, members: Iterable[str], *, master_unreachable: bool) -> list[str]:
    """The URLs to try, each once: the last master first, unless the transport to it just failed.

    A master that stopped answering is most likely dead, and a slave may have taken over: then
    the other pool members (and the configured URL) come first and the last master comes last.
    """
    order = list(dict.fromkeys([last_master, configured, *members]))
    if master_unreachable:
        order.remove(last_master)
        order.append(last_master)
    return order
