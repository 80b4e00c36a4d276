"""The os-ken side of the channel: one daemon thread that owns every connection and request.

Everything reaches this thread through one `queue.Queue` (its inbox): commands from the asyncio
side, OpenFlow replies forwarded by the os-ken app, and connection threads reporting a lost
connection. So the links and their pending requests have one owner and need no locks. Results
go back to the asyncio loop through `post` (the channel's `loop.call_soon_threadsafe`).

Drift: on every connect the runtime asks the switch for a flow monitor on sdnctl's tables, so the
switch reports what other connections change there (ovs-ofctl by hand, another controller) and
never what sdnctl's own flow-mods do; such a report goes to the channel as `drift`. A switch that
refuses the monitor is reported as drifted every POLL_INTERVAL instead.

Threads: os-ken's native hub spawns plain threads that inherit daemon-ness from their creator.
This thread, the per-switch connection threads and hence every thread os-ken starts for them
are daemon threads, so a stuck switch can never hold up process exit.
"""

from __future__ import annotations

import itertools
import logging
import queue
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sdnctl.core.model import FlowSpec
from sdnctl.openflow import codec, tls
from sdnctl.openflow._osken import (
    CONFIG_DISPATCHER, HANDSHAKE_DISPATCHER, app_manager, controller, ofp, ofp_event, ofp_handler, parser,
    set_ev_cls,
)
from sdnctl.errors import OpenFlowError
from sdnctl.retry import Backoff

log = logging.getLogger(__name__)

APP_NAME = "sdnctl_openflow"            # the os-ken app's name in os-ken's SERVICE_BRICKS
OFP_HANDLER_NAME = ofp_event.NAME       # "ofp_event": os-ken's Datapath looks its handler up by this name
CONNECT_TIMEOUT = 5.0                   # each of: TCP connect, TLS handshake, the switch's HELLO
# sdnctl's own keepalive, not os-ken's: Datapath._echo_request_loop ends a silent connection with
# close(), a half-close after which serve() waits for ever on its send thread under the native hub.
ECHO_INTERVAL = 5.0                     # idle this long: send an ECHO_REQUEST
ECHO_DEADLINE = 15.0                    # silent this long: the switch is gone, reconnect
# A switch that refuses the flow monitor (an OVS too old for it on OpenFlow 1.3) is checked this
# often instead: the channel reports drift, which makes the daemon dump and diff that bridge.
POLL_INTERVAL = 8.0
SEND_BATCH = 64 * 1024                  # bytes of OpenFlow messages per write
TICK = 0.5                              # the inbox wait, so the keepalive runs when nothing happens
STOP_TIMEOUT = 5.0
START_TIMEOUT = 5.0


class _PassiveOFPHandler(ofp_handler.OFPHandler):
    """os-ken's handshake handler (HELLO, FEATURES, ECHO) without its listening server.

    OFPHandler.start() would bind 0.0.0.0:6653 and 6633; sdnctl only dials out.
    """

    def start(self):
        return app_manager.OSKenApp.start(self)

    def send_event_to_observers(self, ev, state=None):
        # Datapath.__init__ announces itself here, synchronously, before it serves the socket:
        # the one moment the socket can learn which Datapath to wake when it closes.
        if isinstance(ev, ofp_event.EventOFPStateChange) and ev.state == HANDSHAKE_DISPATCHER:
            sock = ev.datapath.socket
            if isinstance(sock, tls.SwitchSocket):
                sock.datapath = ev.datapath
        super().send_event_to_observers(ev, state)


class _FlowApp(app_manager.OSKenApp):
    """Forwards what sdnctl needs from every switch to the runtime's inbox; decides nothing itself."""

    OFP_VERSIONS = [0x04]   # OpenFlow 1.3 only

    def __init__(self, *args, inbox: queue.Queue, **kwargs):
        super().__init__(*args, **kwargs)
        self.name = APP_NAME
        self._inbox = inbox

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev):
        self._inbox.put(("features", ev.msg.datapath, ev.msg))

    @set_ev_cls([ofp_event.EventOFPFlowStatsReply, ofp_event.EventOFPBarrierReply, ofp_event.EventOFPErrorMsg,
                 ofp_event.EventOFPEchoReply, ofp_event.EventOFPEchoRequest,
                 ofp_event.EventOFPExperimenterStatsReply, ofp_event.EventOFPExperimenter])
    def _message(self, ev):
        self._inbox.put(("message", ev.msg.datapath, ev.msg))


@dataclass(eq=False)
class Request:
    """A dump or an apply in flight; the runtime settles `future` on the asyncio loop."""

    kind: str                                   # "dump" | "apply"
    future: object                              # asyncio.Future, only touched on the loop
    add: tuple[FlowSpec, ...] = ()
    delete: tuple[FlowSpec, ...] = ()
    purge: tuple[int, ...] = ()                 # apply: cookies of another controller's flows to delete
    flows: list = field(default_factory=list)   # dump: FlowStats collected so far
    errors: list[str] = field(default_factory=list)
    xids: list[int] = field(default_factory=list)


@dataclass(eq=False)
class _Link:
    """One switch connection as the runtime tracks it; `gen` tells a re-ensured link from its predecessor."""

    key: str
    gen: int
    label: str                        # how log lines name it: "host p1h2 (a41fbb10)/xapi0"
    address: str
    port: int
    ctx: object                       # ssl.SSLContext
    pin_der: bytes
    datapath_id: int | None = None         # the bridge's datapath id from OVSDB, if known: FEATURES_REPLY must match
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    sock: socket.socket | None = None      # the current attempt's socket (set by the connection thread)
    datapath: object | None = None         # set on FEATURES_REPLY, cleared when the connection ends
    established: bool = False              # reached FEATURES_REPLY since the last attempt started
    last_rx: float = 0.0
    last_echo: float = 0.0
    monitor_xid: int | None = None         # the flow monitor request's xid on this connection
    monitor_barrier: int | None = None     # the barrier after it, until its reply
    monitoring: bool = False               # the switch accepted the flow monitor
    monitor_error: str | None = None
    poll_at: float | None = None           # the switch refused the monitor: when to report drift next
    pending: dict[int, Request] = field(default_factory=dict)
    xids: itertools.count = field(default_factory=lambda: itertools.count(random.randrange(1 << 30, 1 << 31)))


class Runtime:
    """os-ken (AppManager, the handshake handler, sdnctl's app) and every switch connection."""

    def __init__(self, client_cert: str, client_key: str, post: Callable[..., None], events):
        self.client_cert = client_cert
        self.client_key = client_key
        self._post = post                  # post(fn, *args): run fn(*args) on the asyncio loop
        self._events = events              # the channel: link_up, link_down, drift(key, gen, changes), settle
        self.inbox: queue.Queue = queue.Queue()
        self._links: dict[str, _Link] = {}
        self._thread = threading.Thread(target=self._main, name="sdnctl-openflow", daemon=True)
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._ofp = None
        self._app = None

    # --- life cycle (called from the asyncio side) ------------------------------------------
    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise OpenFlowError(f"os-ken did not start within {START_TIMEOUT}s")
        if self._start_error is not None:
            raise OpenFlowError(f"os-ken failed to start: {self._start_error}") from self._start_error

    def stop(self) -> None:
        """Close every connection and stop os-ken's apps; bounded by STOP_TIMEOUT."""
        if self._thread.is_alive():
            self.inbox.put(("stop",))
            self._thread.join(STOP_TIMEOUT + 1.0)
        else:
            self._teardown()   # the thread died: make sure nothing it owned survives it
        if self._thread.is_alive():
            log.error("the OpenFlow thread did not stop within %.0fs; abandoning it (a daemon thread)",
                      STOP_TIMEOUT + 1.0)

    def alive(self) -> bool:
        """The thread, and os-ken's app threads, still run and still receive OpenFlow events."""
        if not self._thread.is_alive() or self._app is None or self._ofp is None:
            return False
        if app_manager.lookup_service_brick(APP_NAME) is not self._app:
            return False
        if app_manager.lookup_service_brick(OFP_HANDLER_NAME) is not self._ofp:
            return False
        return all(t.is_alive() for app in (self._app, self._ofp) for t in app.threads)

    def command(self, *item) -> None:
        self.inbox.put(item)

    # --- the thread ----------------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._start_apps()
        except BaseException as exc:   # noqa: BLE001 - reported to start(), the thread ends
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                try:
                    item = self.inbox.get(timeout=TICK)
                except queue.Empty:
                    item = None
                if item is not None and item[0] == "stop":
                    break
                if item is not None:
                    try:
                        self._handle(item)
                    except Exception:
                        log.exception("OpenFlow runtime: handling %s failed", item[0])
                _tend(self._links.values(), self._post, self._events)
        finally:
            self._teardown()

    def _start_apps(self) -> None:
        manager = app_manager.AppManager.get_instance()
        for name in (APP_NAME, OFP_HANDLER_NAME):
            stale = app_manager.lookup_service_brick(name)
            if stale is None:
                continue
            if not isinstance(stale, (_FlowApp, _PassiveOFPHandler)):
                raise OpenFlowError(f"another os-ken app named {name!r} runs in this process")
            _retire(manager, stale)        # left over by a runtime that died
        # Apps started from this (daemon) thread: os-ken's threads inherit daemon=True.
        self._ofp = manager.instantiate(_PassiveOFPHandler)
        self._ofp.start()
        self._app = manager.instantiate(_FlowApp, inbox=self.inbox)
        self._app.start()

    def _teardown(self) -> None:
        links, self._links = list(self._links.values()), {}
        for link in links:
            self._close_link(link, "the OpenFlow channel stopped")
        deadline = time.monotonic() + STOP_TIMEOUT
        for link in links:
            if link.thread is not None:
                link.thread.join(max(0.0, deadline - time.monotonic()))
                if link.thread.is_alive():
                    log.warning("%s: connection thread did not end within %.0fs", link.label, STOP_TIMEOUT)
        manager = app_manager.AppManager.get_instance()
        for app in (self._app, self._ofp):
            if app is not None:
                _retire(manager, app)

    def _handle(self, item: tuple) -> None:
        kind = item[0]
        if kind == "ensure":
            self._ensure(*item[1:])
        elif kind == "forget":
            link = self._links.pop(item[1], None)
            if link is not None:
                self._close_link(link, "forgotten")
        elif kind == "features":
            self._on_features(item[1])
        elif kind == "message":
            self._on_message(item[1], item[2])
        elif kind == "down":
            self._on_down(item[1], item[2])
        elif kind in ("dump", "apply"):
            self._send_request(item[1], item[2], item[3])
        elif kind == "cancel":
            self._cancel(item[1], item[2])

    # --- links ---------------------------------------------------------------------------
    def _ensure(self, key: str, gen: int, address: str, port: int, pin_pem: str, pin_der: bytes,
                datapath_id: int | None) -> None:
        old = self._links.pop(key, None)
        if old is not None:
            self._close_link(old, "replaced by a new address or pin")
        try:
            ctx = tls.client_context(self.client_cert, self.client_key, pin_pem)
        except (OSError, ValueError) as exc:    # ssl.SSLError is an OSError
            self._post(self._events.link_down, key, gen, f"cannot load the TLS credentials: {exc}")
            return
        link = _Link(key=key, gen=gen, label=self._events.label(key), address=address, port=port, ctx=ctx,
                     pin_der=pin_der, datapath_id=datapath_id)
        link.thread = threading.Thread(target=_serve_link, args=(link, self.inbox), daemon=True,
                                       name=f"sdnctl-of-{key}")
        self._links[key] = link
        link.thread.start()

    def _close_link(self, link: _Link, why: str) -> None:
        link.stop.set()
        sock = link.sock
        if isinstance(sock, tls.SwitchSocket):
            sock.abort()
        elif sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._fail_pending(link, f"{link.key}: connection closed ({why})")
        link.datapath = None

    def _current(self, datapath) -> _Link | None:
        link = getattr(datapath.socket, "link", None)
        return link if link is not None and self._links.get(link.key) is link else None

    def _on_features(self, datapath) -> None:
        link = self._current(datapath)
        if link is None or link.stop.is_set():
            return
        if link.datapath_id is not None and datapath.id != link.datapath_id:
            # Another bridge's listener holds this port (e.g. a leftover `pssl:6653` of another controller):
            # programming it would put this bridge's flows on the wrong switch.
            datapath.socket.failure = (
                f"{link.address}:{link.port} answers as datapath {datapath.id or 0:016x}, not this bridge's "
                f"{link.datapath_id:016x}: another bridge's Controller row listens on this port; refusing to "
                "program it (remove the other row, e.g. a Xen Orchestra `pssl:` target, or let sdnctl move this one)")
            datapath.socket.abort()
            return
        link.datapath = datapath
        link.established = True
        link.last_rx = link.last_echo = time.monotonic()
        log.info("%s: connected to %s:%s (datapath %016x)", link.label, link.address, link.port, datapath.id or 0)
        _start_monitor(link, datapath)
        self._post(self._events.link_up, link.key, link.gen)

    def _on_down(self, link: _Link, why: str) -> None:
        self._fail_pending(link, f"{link.key}: {why}")
        link.datapath = None
        if self._links.get(link.key) is link:
            self._post(self._events.link_down, link.key, link.gen, why)

    # --- requests ------------------------------------------------------------------------
    def _send_request(self, key: str, gen: int, request: Request) -> None:
        link = self._links.get(key)
        if link is None or link.gen != gen or link.datapath is None:
            self._settle(request, error=f"{key}: not connected to the switch")
            return
        dp = link.datapath
        if request.kind == "dump":
            messages = [codec.flow_dump(dp)]
        else:
            messages = itertools.chain((codec.flow_delete(dp, spec) for spec in request.delete),
                                       (codec.flow_purge(dp, cookie) for cookie in request.purge),
                                       (codec.flow_add(dp, spec) for spec in request.add),
                                       [parser.OFPBarrierRequest(dp)])
        if not _send_batched(dp, messages, link, request):
            self._fail_pending(link, f"{link.key}: connection lost while sending")

    def _on_message(self, datapath, msg) -> None:
        link = self._current(datapath)
        if link is None:
            return
        link.last_rx = time.monotonic()
        changes = _monitor_message(link, msg)
        if changes is not None:
            if changes:
                self._post(self._events.drift, link.key, link.gen, changes)
            return
        request = link.pending.get(msg.xid)
        if request is None:
            if isinstance(msg, parser.OFPErrorMsg):
                log.warning("%s: the switch reported %s (xid %#x)", link.label, codec.describe_error(msg), msg.xid)
            return
        if isinstance(msg, parser.OFPErrorMsg):
            request.errors.append(codec.describe_error(msg))
            if request.kind == "dump":
                self._finish(link, request, error=f"{link.key}: the switch refused the flow dump: {request.errors[0]}")
        elif isinstance(msg, parser.OFPFlowStatsReply) and request.kind == "dump":
            request.flows.extend(msg.body)
            if not msg.flags & datapath.ofproto.OFPMPF_REPLY_MORE:
                self._finish(link, request, result=tuple(codec.observed_spec(s) for s in request.flows))
        elif isinstance(msg, parser.OFPBarrierReply) and request.kind == "apply":
            if request.errors:
                self._finish(link, request, error=(
                    f"{link.key}: the switch refused {len(request.errors)} flow-mod(s), first: {request.errors[0]}"))
            else:
                self._finish(link, request, result=None)

    def _finish(self, link: _Link, request: Request, *, result=None, error: str | None = None) -> None:
        for xid in request.xids:
            link.pending.pop(xid, None)
        self._settle(request, result=result, error=error)

    def _fail_pending(self, link: _Link, why: str) -> None:
        requests = {id(r): r for r in link.pending.values()}.values()
        link.pending.clear()
        for request in requests:
            self._settle(request, error=why)

    def _cancel(self, key: str, request: Request) -> None:
        link = self._links.get(key)
        if link is not None:
            for xid in request.xids:
                link.pending.pop(xid, None)

    def _settle(self, request: Request, *, result=None, error: str | None = None) -> None:
        self._post(self._events.settle, request.future, result, error)


def _tend(links: Iterable[_Link], post: Callable[..., None], events) -> None:
    """Each tick: sdnctl's keepalive, and drift reports for switches that refused the flow monitor."""
    now = time.monotonic()
    for link in links:
        if link.datapath is None:
            continue
        if link.poll_at is not None and now >= link.poll_at:
            link.poll_at = now + POLL_INTERVAL * random.uniform(0.8, 1.0)
            post(events.drift, link.key, link.gen, 0)
        if now - link.last_rx > ECHO_DEADLINE:
            log.warning("%s: no answer from the switch for %.0fs; reconnecting", link.label, ECHO_DEADLINE)
            sock = link.sock
            if isinstance(sock, tls.SwitchSocket):
                sock.failure = f"the switch stopped answering (nothing for {ECHO_DEADLINE:.0f}s)"
                sock.abort()
        elif now - link.last_rx > ECHO_INTERVAL and now - link.last_echo > ECHO_INTERVAL:
            link.last_echo = now
            echo = parser.OFPEchoRequest(link.datapath)
            echo.xid = next(link.xids)
            link.datapath.send_msg(echo)


def _start_monitor(link: _Link, datapath) -> None:
    """Ask the switch to report changes other connections make to sdnctl's tables (sent on every connect).

    A barrier follows: if the monitor's (empty) reply has not come before the barrier's, the switch
    refused it. OVS 3.1 refuses some monitors with an OpenFlow 1.0 error of xid 0, so the reply, not
    an error naming our xid, is what tells.
    """
    request, barrier = codec.flow_monitor(datapath), parser.OFPBarrierRequest(datapath)
    request.xid = link.monitor_xid = next(link.xids) & 0xFFFFFFFF
    barrier.xid = link.monitor_barrier = next(link.xids) & 0xFFFFFFFF
    link.monitoring, link.monitor_error, link.poll_at = False, None, None
    datapath.send_msg(request)
    datapath.send_msg(barrier)


def _monitor_message(link: _Link, msg) -> int | None:
    """How many changes a flow monitor message reports (0: none that matter); None if it is not one."""
    if isinstance(msg, parser.OFPExperimenterStatsReply):
        body = msg.body
        if body.experimenter != codec.ONF_EXPERIMENTER or body.exp_type != ofp.ONFMP_FLOW_MONITOR:
            return None
        if msg.xid == link.monitor_xid:
            link.monitoring = True      # the reply to the request itself: empty, no initial dump was asked for
            return 0
        try:
            return codec.drift(codec.flow_updates(body.data))
        except OpenFlowError as exc:
            log.warning("%s: %s; re-syncing to be sure", link.label, exc)
            return 1
    if isinstance(msg, parser.OFPExperimenter):
        if msg.experimenter == codec.ONF_EXPERIMENTER and msg.exp_type in (ofp.ONFT_FLOW_MONITOR_PAUSED,
                                                                           ofp.ONFT_FLOW_MONITOR_RESUMED):
            return 1     # the switch dropped updates (too many at once): whatever changed, re-sync
        return None
    if link.monitor_barrier is None:
        return None
    if isinstance(msg, parser.OFPErrorMsg) and msg.xid in (link.monitor_xid, 0):
        link.monitor_error = codec.describe_error(msg)
        return 0
    if isinstance(msg, parser.OFPBarrierReply) and msg.xid == link.monitor_barrier:
        link.monitor_barrier = None
        if not link.monitoring:
            log.warning("%s: the switch refused the flow monitor (%s); checking its flows every %.0fs instead",
                        link.label, link.monitor_error or "no reply", POLL_INTERVAL)
            link.poll_at = time.monotonic()
        return 0
    return None


def _serve_link(link: _Link, inbox: queue.Queue) -> None:
    """The connection thread: connect, let os-ken serve the connection, back off, again."""
    backoff = Backoff()   # reset on FEATURES_REPLY
    while not link.stop.is_set():
        link.established = False

        def track(s: socket.socket) -> None:
            link.sock = s

        try:
            sock = tls.open_switch(link.address, link.port, link.ctx, link.pin_der, CONNECT_TIMEOUT, track)
        except tls.SwitchRefused as exc:
            inbox.put(("down", link, str(exc)))
        except Exception as exc:    # noqa: BLE001 - a bug here must not end the reconnect loop
            log.exception("%s: connecting failed", link.label)
            inbox.put(("down", link, f"connecting failed: {exc}"))
        else:
            sock.link = link
            sock.on_close = lambda s=sock: _wake_send_loop(s)
            if not link.stop.is_set():
                try:
                    controller.datapath_connection_factory(sock, (link.address, link.port))
                except Exception:    # noqa: BLE001 - os-ken has logged it; the connection is over
                    pass
            sock.close()
            inbox.put(("down", link, sock.failure or _closed_by_switch(link)))
        if link.established:
            backoff.reset()
        link.stop.wait(backoff.next())


def _send_batched(dp, messages, link: _Link, request: Request) -> bool:
    """Serialize the messages under our own xids and hand them to os-ken's send queue in batches.

    One queue item, one TLS write and one thread hand-off per SEND_BATCH bytes instead of per
    flow-mod. Our own xids: os-ken's Datapath.set_xid is not thread-safe against its handshake sends.
    False if the connection was lost while sending.
    """
    batch = bytearray()
    for msg in messages:
        msg.xid = next(link.xids) & 0xFFFFFFFF
        request.xids.append(msg.xid)
        link.pending[msg.xid] = request
        msg.serialize()
        batch += msg.buf
        if len(batch) >= SEND_BATCH:
            if not dp.send(bytes(batch)):     # blocks while os-ken's send queue (16 items) is full
                return False
            batch.clear()
    return not batch or dp.send(bytes(batch))


def _closed_by_switch(link: _Link) -> str:
    where = f"{link.address}:{link.port}"
    if link.established:
        return f"{where}: the switch closed the OpenFlow connection"
    return f"{where}: the switch closed the OpenFlow connection before its FEATURES_REPLY"


def _wake_send_loop(sock: tls.SwitchSocket) -> None:
    """Unblock the Datapath's send thread once its receive loop has closed the socket.

    With the native hub, `hub.kill()` is a no-op: Datapath.serve() would otherwise wait forever
    for a send thread blocked on an empty queue, and never return nor report the datapath dead.
    The queued message fails to send on the closed socket, which ends that thread.
    """
    datapath = sock.datapath
    if datapath is not None:
        datapath.send(b"", close_socket=True)


def _retire(manager, app) -> None:
    """Unregister an os-ken app; only ask it to stop if its thread can still answer."""
    name = app.name
    registered = manager.applications.get(name) is app
    if not registered and app_manager.lookup_service_brick(name) is not app:
        return      # already retired (its name may belong to a successor by now)
    if registered and all(t.is_alive() for t in app.threads):
        manager.uninstantiate(name)
        return
    if registered:
        manager.applications.pop(name)
    if app_manager.lookup_service_brick(name) is app:
        app_manager.unregister_app(app)
    for other in list(app_manager.SERVICE_BRICKS.values()):
        other.unregister_observer_all_event(name)
    app.is_active = False
