"""One call on the wire: the message resolved, its parameters counted, the session checked, run under the lock."""

from __future__ import annotations

import functools
import inspect
import logging
import xmlrpc.client
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# Every verb module registers its messages when imported.
from sdnctl.lab.xapi import (bond, certificate, event, host, introspection, network, pif,  # noqa: F401
                             plugin, pool, sdn_controller, session, task, tunnel, vif, vlan, vm)
from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.db_actions import generated
from sdnctl.lab.xapi.errors import Abandoned, XapiFailure
from sdnctl.lab.xapi.messages import MESSAGES, Call, Message
from sdnctl.lab.xapi.schema import SCHEMA

if TYPE_CHECKING:
    from sdnctl.lab.xapi.server import Listener

log = logging.getLogger(__name__)


def serve(ctx: Context, method: Any, params: list, listener: Listener) -> tuple[bool, Any]:
    """One call: (True, value) or (False, ErrorDescription). Never raises but Abandoned."""
    try:
        if not isinstance(method, str):
            raise XapiFailure("MESSAGE_METHOD_UNKNOWN", method)
        value = _call(ctx, method, params, listener)
        value = "" if value is None else value
        _check_wire(value)
        return True, value
    except XapiFailure as failure:
        return False, failure.details
    except Abandoned:
        raise
    except Exception as exc:            # a bug here must reach the client, not kill the thread
        log.exception("xapi simulator: %s failed", method)
        return False, ["INTERNAL_ERROR", f"{type(exc).__name__}: {exc}"]


def _call(ctx: Context, method: str, params: list, listener: Listener) -> Any:
    if method.startswith("lab."):
        return _call_admin(ctx, method, params)
    handler, message = _resolve(ctx, method)
    required, total = _arity(handler)
    # On the wire: the session (if needed), then the handler's parameters but the Call.
    offset = int(message.needs_session) - int(message.wants_call)
    if not required + offset <= len(params) <= total + offset:
        raise XapiFailure("MESSAGE_PARAMETER_COUNT_MISMATCH", method, total + offset, len(params))
    with ctx.state():
        call_session = ""
        if message.needs_session:
            call_session, params = params[0], params[1:]
            session.check(ctx, call_session)
        if message.wants_call:
            return handler(Call(call_session, listener), *params)
        return handler(*params)


def _call_admin(ctx: Context, method: str, params: list) -> Any:
    """`lab.<verb>`: loopback lab control, no session, run outside the state lock."""
    verb = method.removeprefix("lab.")
    action = getattr(ctx.admin, verb, None) if not verb.startswith("_") else None
    if not callable(action):
        raise XapiFailure("MESSAGE_METHOD_UNKNOWN", method)
    return action(*params)


def _resolve(ctx: Context, method: str) -> tuple[Callable, Message]:
    """The handler, bound to the pool's context: a hand-written message, else a generated one."""
    message = MESSAGES.get(method)
    if message is not None:
        return functools.partial(message.handler, ctx), message
    cls, _, name = method.partition(".")
    handler = generated(ctx.store, cls, name) if cls in SCHEMA else None
    if handler is None:
        raise XapiFailure("MESSAGE_METHOD_UNKNOWN", method)
    return handler, Message(handler)


def _arity(handler: Callable) -> tuple[int, int]:
    params = list(inspect.signature(handler).parameters.values())
    required = sum(1 for p in params if p.default is inspect.Parameter.empty)
    return required, len(params)


def _check_wire(value: Any) -> None:
    """Refuse what xapi never sends: None, and objects that are no wire value."""
    if isinstance(value, (str, bool, int, float, xmlrpc.client.DateTime)):
        return
    if isinstance(value, list):
        for item in value:
            _check_wire(item)
    elif isinstance(value, dict) and all(isinstance(k, str) for k in value):
        for item in value.values():
            _check_wire(item)
    else:
        raise TypeError(f"{value!r} is not a xapi wire value")
