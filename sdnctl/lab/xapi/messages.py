"""The registry of hand-written xapi messages: each verb module registers its handlers with `@api`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sdnctl.lab.xapi.server import Listener


@dataclasses.dataclass(frozen=True)
class Message:
    handler: Callable               # called with the Context first (generated messages: without it)
    needs_session: bool = True
    wants_call: bool = False        # receives the Call (session, listener) after the Context


@dataclasses.dataclass(frozen=True)
class Call:
    session: str
    listener: Listener


MESSAGES: dict[str, Message] = {}


def api(*wire_names: str, needs_session: bool = True, wants_call: bool = False) -> Callable:
    """Register a function `(ctx, [call,] *params)` as the xapi message(s) `wire_names`."""
    def register(handler: Callable) -> Callable:
        for name in wire_names:
            MESSAGES[name] = Message(handler, needs_session, wants_call)
        return handler
    return register
