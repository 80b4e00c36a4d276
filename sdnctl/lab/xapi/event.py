"""event.from and event.inject: the store's event log, read with xapi's tokens and subscriptions."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from sdnctl.lab.xapi import session
from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import Abandoned, XapiFailure
from sdnctl.lab.xapi.messages import Call, api
from sdnctl.lab.xapi.schema import SCHEMA


@api("event.from", "event_from", wants_call=True)
def from_(ctx: Context, call: Call, classes: Any, token: Any, timeout: Any) -> dict[str, Any]:
    """Xapi_event.from: the events after `token`, waiting up to `timeout` seconds for one."""
    wanted = subscriptions(classes)
    since = _since(token)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
        raise XapiFailure("FIELD_TYPE_ERROR", "timeout")
    deadline = time.monotonic() + timeout
    while not (events := ctx.store.events_since(wanted, since)) and time.monotonic() < deadline:
        if call.listener.closed:        # checked before each wait: a close is never missed
            raise Abandoned()
        ctx.cond.wait(deadline - time.monotonic())
        session.check(ctx, call.session)
    # Xapi_event.from: valid_ref_counts counts every table, not only the classes asked for.
    return {"events": events, "valid_ref_counts": ctx.store.ref_counts(), "token": _token(ctx.store.generation)}


@api("event.inject")
def inject(ctx: Context, cls: Any, ref: Any) -> str:
    """Xapi_event.inject: the object counts as modified; the token returned comes just before it."""
    name = next((c for c in SCHEMA if isinstance(cls, str) and c.lower() == cls.lower()), None)
    if name is None:
        raise XapiFailure("HANDLE_INVALID", cls, ref)
    ctx.store.record(name, ref)
    token = _token(ctx.store.generation)
    ctx.store.touch(ref)
    return token


def subscriptions(classes: Any) -> Callable[[str, str], bool]:
    """xapi's subscription syntax: "*", "class" or "class/ref", class names in any case."""
    if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
        raise XapiFailure("EVENT_SUBSCRIPTION_PARSE_FAILURE", classes)
    everything = "*" in classes
    wanted_classes = {c.lower() for c in classes if "/" not in c}
    wanted_objects = {(c.lower(), r) for c, _, r in (c.partition("/") for c in classes if "/" in c)}
    return lambda cls, ref: (everything or cls.lower() in wanted_classes
                             or (cls.lower(), ref) in wanted_objects)


def _token(generation: int) -> str:
    """Xapi_event.Token.to_string: `%020Ld,%020Ld`, the database generation then the message generation
    (the simulator has no messages: 0). The database outlives a xapi restart, so old tokens stay good."""
    return f"{generation:020d},{0:020d}"


def _since(token: Any) -> int:
    """Xapi_event.Token.of_string: "" is the beginning; event.from never raises EVENTS_LOST."""
    if token == "":
        return 0
    match = re.fullmatch(r"(\d+),(\d+)", token) if isinstance(token, str) else None
    if match is None:
        raise XapiFailure("EVENT_FROM_TOKEN_PARSE_FAILURE", token)
    return int(match[1])
