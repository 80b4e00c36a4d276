"""Async.*: a message run as a xapi task, the object's current_operations naming it meanwhile.

The call returns the task at once (Server_helpers.exec_with_new_task): status `pending`, the object's
`current_operations` holding {task: operation}. A worker thread then runs the message under the
state lock and ends the task `success` (result as XML-RPC `<value>`) or `failure` (error_info).
"""

from __future__ import annotations

import functools
import threading
import xmlrpc.client
from typing import Any

from sdnctl.lab.xapi import vif, vm  # noqa: F401  (they register the messages made Async here)
from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import MESSAGES, Message
from sdnctl.lab.xapi.schema import now

# The Async messages the lab has: message -> (class, operation it puts in current_operations).
ASYNC_MESSAGES = {"VM.start": ("VM", "start"), "VM.pool_migrate": ("VM", "pool_migrate"),
                  "VIF.plug": ("VIF", "plug")}


def register(name: str) -> None:
    """`Async.<name>`, with the parameters of `name` (registered by its verb module)."""
    cls, operation = ASYNC_MESSAGES[name]
    run = MESSAGES[name].handler

    @functools.wraps(run)
    def start(ctx: Context, self_: Any, *args: Any) -> str:
        current = ctx.store.record(cls, self_)["current_operations"]
        if current:
            raise XapiFailure("OTHER_OPERATION_IN_PROGRESS", cls, self_)
        task = ctx.store.create("task", name_label=f"Async.{name}", created=now(), resident_on=ctx.pool()["master"])
        ctx.store.update(self_, current_operations={task: operation})
        threading.Thread(target=_finish, args=(ctx, task, cls, self_, functools.partial(run, ctx, self_, *args)),
                         daemon=True, name=f"xapi-sim task {name}").start()
        return task

    MESSAGES[f"Async.{name}"] = Message(start)         # wraps: dispatch counts the message's parameters


def _finish(ctx: Context, task: str, cls: str, ref: str, run: functools.partial) -> None:
    with ctx.state():
        try:
            result = run()
            outcome = {"status": "success", "result": _result(result)}
        except XapiFailure as failure:
            outcome = {"status": "failure", "error_info": failure.details}
        if ref in ctx.store.refs(cls):
            ctx.store.update(ref, current_operations={})
        ctx.store.update(task, **outcome, progress=1.0, finished=now())


def _result(value: Any) -> str:
    """task.result: the value as XML-RPC `<value>` (empty for a message that returns nothing)."""
    if value is None:
        return ""
    return xmlrpc.client.dumps((value,)).split("<param>")[1].split("</param>")[0].strip()


for _name in ASYNC_MESSAGES:
    register(_name)
