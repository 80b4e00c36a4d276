"""session.*: logging in on the master, and what a xapi restart does to sessions."""

from __future__ import annotations

from typing import Any

from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import Call, api
from sdnctl.lab.xapi.store import new_ref


def check(ctx: Context, session: Any) -> None:
    if not isinstance(session, str) or session not in ctx.sessions:
        raise XapiFailure("SESSION_INVALID", session)


@api("session.login_with_password", needs_session=False, wants_call=True)
def login_with_password(ctx: Context, call: Call, username: Any, password: Any, version: Any = "1.0",
                        originator: Any = "") -> str:
    """Xapi_session.login_with_password: only the master logs in; a slave names it (HOST_IS_SLAVE)."""
    master = ctx.pool()["master"]
    if call.listener.host_ref != master:
        raise XapiFailure("HOST_IS_SLAVE", ctx.store.record("host", master)["address"])
    if (username, password) != ctx.credentials:
        raise XapiFailure("SESSION_AUTHENTICATION_FAILED", username, "Authentication failure")
    session = new_ref()
    ctx.sessions.add(session)
    return session


@api("session.logout", wants_call=True)
def logout(ctx: Context, call: Call) -> None:
    ctx.sessions.discard(call.session)
    ctx.cond.notify_all()


def restart(ctx: Context) -> None:
    """xapi restarts: every session is invalid (SESSION_INVALID), older event tokens are lost."""
    with ctx.cond:
        ctx.epoch += 1
        ctx.sessions.clear()
        ctx.cond.notify_all()
