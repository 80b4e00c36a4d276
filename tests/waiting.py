"""Waiting on a condition with a deadline, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], T], *, timeout: float = 20.0, interval: float = 0.05,
             what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy; fail with the last value seen after `timeout`."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")


async def wait_until(probe: Callable[[], object], *, timeout: float = 20.0, interval: float = 0.02,
                     what: str | Callable[[], str] = "condition"):
    """wait_for's twin on an event loop: `probe` may be plain or async, `what` a string or a callable
    giving one at failure time (to show the state then)."""
    import asyncio
    import inspect

    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if inspect.isawaitable(last):
                last = await last
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(interval)
    what = what() if callable(what) else what
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")
