"""session.*: pool sessions on the master, local sessions on one host, and what a xapi restart does to them."""

from __future__ import annotations

from typing import Any

from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import Call, api
from sdnctl.lab.xapi.store import new_ref


def check(ctx: Context, session: Any) -> None:
    """Session_check.check: a local session works on its own host only; a pool session only on the master
    (a slave answers HOST_IS_SLAVE with the master's address, whatever the call)."""
    if not isinstance(session, str) or session not in ctx.sessions:
        raise XapiFailure("SESSION_INVALID", session)
    local_to = ctx.sessions[session]
    if local_to is not None:
        if local_to != ctx.host:
            raise XapiFailure("SESSION_INVALID", session)
        return
    if ctx.host != ctx.pool()["master"]:
        raise XapiFailure("HOST_IS_SLAVE", ctx.master_address())


def _authenticate(ctx: Context, username: Any, password: Any) -> None:
    if (username, password) != ctx.credentials:
        raise XapiFailure("SESSION_AUTHENTICATION_FAILED", username, "Authentication failure")


@api("session.login_with_password", needs_session=False)
def login_with_password(ctx: Context, username: Any, password: Any, version: Any = "1.0",
                        originator: Any = "") -> str:
    """Xapi_session.login_with_password: only the master logs in; a slave names it (HOST_IS_SLAVE)."""
    if ctx.host != ctx.pool()["master"]:
        raise XapiFailure("HOST_IS_SLAVE", ctx.master_address())
    _authenticate(ctx, username, password)
    session = new_ref()
    ctx.sessions[session] = None
    return session


@api("session.slave_local_login_with_password", needs_session=False)
def slave_local_login_with_password(ctx: Context, uname: Any, pwd: Any) -> str:
    """Xapi_session.slave_local_login_with_password: root only, on any host; the session (in the host's local
    storage, Xapi_local_session) is good on that host alone, for emergency calls while the master is gone."""
    _authenticate(ctx, uname, pwd)
    session = new_ref()
    ctx.sessions[session] = ctx.host
    return session


@api("session.logout", wants_call=True)
def logout(ctx: Context, call: Call) -> None:
    ctx.sessions.pop(call.session, None)
    ctx.cond.notify_all()


@api("session.local_logout", wants_call=True)
def local_logout(ctx: Context, call: Call) -> None:
    """Xapi_session.local_logout: the end of a local session."""
    logout(ctx, call)


def restart(ctx: Context) -> None:
    """xapi restarts: sessions are not persisted (SESSION_INVALID); the database, hence event tokens, is."""
    with ctx.cond:
        ctx.sessions.clear()
        ctx.cond.notify_all()
