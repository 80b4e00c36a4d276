"""What a client asks the server about itself: system.listMethods and session.get_this_host."""

from __future__ import annotations

from typing import Any

from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.db_actions import generated_names
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import MESSAGES, api
from sdnctl.lab.xapi.schema import SCHEMA


@api("system.listMethods", needs_session=False)
def list_methods(ctx: Context, session: Any = "") -> list[str]:
    """Xapi's system.listMethods (both wires): every message, hand-written and generated. It needs no
    session; the XenAPI SDK sends its own anyway, and xapi ignores it."""
    return sorted({*MESSAGES, *(name for cls in SCHEMA for name in generated_names(cls))})


@api("session.get_this_host")
def get_this_host(ctx: Context, session: Any) -> str:
    """Db.Session.get_this_host: the host the session logged in to, which is always the master here."""
    if session not in ctx.sessions:
        raise XapiFailure("HANDLE_INVALID", "session", session)
    return ctx.pool()["master"]
