"""The wire: each host's HTTP(S) listeners, XML-RPC on any path and JSON-RPC on /jsonrpc.

As xapi's: over JSON-RPC ints are JSON numbers; only XML-RPC carries them as decimal strings.
"""

from __future__ import annotations

import http.server
import json
import logging
import socketserver
import ssl
import threading
import xmlrpc.client
from typing import Any

from sdnctl.errors import LabError
from sdnctl.lab.xapi import dispatch
from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import Abandoned
from sdnctl.lab.xapi.schema import Int32

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.05                # how fast a listener notices it must stop
CONNECTION_TIMEOUT = 60.0           # idle client connections are dropped after this


class Listeners:
    """Every host's listeners while the pool is started: HTTP, and HTTPS with the host certificate."""

    def __init__(self, http_port: int, https_port: int):
        self._http_port = http_port
        self._https_port = https_port
        self._by_host: dict[str, list[Listener]] = {}
        self.started = False

    def start(self, ctx: Context) -> None:
        self.started = True
        for host in ctx.store.refs("host"):
            self.open(ctx, host)

    def stop(self) -> None:
        """Close every listener (blocked callers get their connection closed) and join its thread."""
        self.started = False
        listeners = [listener for opened in self._by_host.values() for listener in opened]
        self._by_host.clear()
        close(listeners)

    def open(self, ctx: Context, host: str) -> None:
        """Listen on the host's address, if the pool is started."""
        if not self.started:
            return
        address, backend = ctx.store.record("host", host)["address"], ctx.dom0s[host].backend
        tls = None
        if backend is not None:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(backend.cert_path, backend.key_path)
        opened: list[Listener] = []
        try:
            opened.append(Listener(ctx, host, address, self._http_port, None))
            if tls is not None:
                opened.append(Listener(ctx, host, address, self._https_port, tls))
        except OSError as exc:
            close(opened)
            raise LabError(f"pool {ctx.name}: cannot listen on {address} (ports {self._http_port}/"
                           f"{self._https_port}): {exc}; is another lab or simulator using them?") from exc
        self._by_host[host] = opened

    def close(self, host: str) -> None:
        close(self._by_host.pop(host, []))


class Listener(http.server.ThreadingHTTPServer):
    """One address:port of one host; each request runs on its own daemon thread."""

    daemon_threads = True

    def __init__(self, ctx: Context, host_ref: str, address: str, port: int, tls: ssl.SSLContext | None):
        self.ctx, self.host_ref, self.tls = ctx, host_ref, tls
        self.closed = False
        super().__init__((address, port), _RpcHandler)
        self.thread = threading.Thread(target=self.serve_forever, args=(POLL_INTERVAL,), daemon=True,
                                       name=f"xapi-sim {address}:{port}")
        self.thread.start()

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the address's name (getfqdn): slow and useless here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address) -> None:
        # The TLS handshake runs here, on the request's thread, so a slow client stalls nobody.
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            request.settimeout(CONNECTION_TIMEOUT)
            with self.tls.wrap_socket(request, server_side=True) as tls_request:
                super().finish_request(tls_request, client_address)
        except (ssl.SSLError, OSError) as exc:
            log.debug("xapi simulator: TLS connection from %s dropped: %s", client_address, exc)


def close(listeners: list[Listener]) -> None:
    """Stop listeners in parallel (each takes up to POLL_INTERVAL to notice) and join their threads."""
    for listener in listeners:
        listener.closed = True
    stoppers = [threading.Thread(target=listener.shutdown) for listener in listeners]
    for stopper in stoppers:
        stopper.start()
    for stopper, listener in zip(stoppers, listeners):
        stopper.join()
        listener.server_close()
        listener.thread.join()


class _Malformed(Exception):
    """The request is not XML-RPC / JSON-RPC at all: xapi answers HTTP 500."""


class _RpcHandler(http.server.BaseHTTPRequestHandler):
    server: Listener
    timeout = CONNECTION_TIMEOUT
    server_version = "xapi-simulator"
    # Persistent connections, as xapi's Http_svr.handle_connection serves them: requests are read and
    # answered on one connection until the client asks `Connection: close` (a TLS handshake per call
    # would cost the daemon more than the call).
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.closed:            # a stopped xapi answers nothing on a connection still open
            self.close_connection = True
            return
        try:
            if self.path.split("?")[0] == "/jsonrpc":
                payload, content_type = _jsonrpc(self.server, body), "application/json"
            else:
                payload, content_type = _xmlrpc(self.server, body), "text/xml"
        except Abandoned:
            self.close_connection = True
            return
        except _Malformed as exc:
            self.send_error(500, "Internal Error", str(exc))
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True        # the client went away

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("xapi simulator %s: " + format, self.server.server_address[0], *args)


def _xmlrpc(listener: Listener, body: bytes) -> bytes:
    try:
        params, method = xmlrpc.client.loads(body)
    except Exception as exc:
        raise _Malformed(f"not an XML-RPC call: {exc}") from None
    ok, value = dispatch.serve(listener.ctx, method, list(params), listener)
    response = {"Status": "Success", "Value": _xmlrpc_value(value)} if ok else \
        {"Status": "Failure", "ErrorDescription": value}
    return xmlrpc.client.dumps((response,), methodresponse=True).encode()


def _xmlrpc_value(value: Any) -> Any:
    """xapi's XML-RPC form: its 64-bit ints travel as decimal strings (only Int32s as <int>)."""
    if isinstance(value, dict):
        return {k: _xmlrpc_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_xmlrpc_value(v) for v in value]
    if isinstance(value, Int32):
        return int(value)           # the marshaller knows int itself, not its subclasses
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _jsonrpc(listener: Listener, body: bytes) -> bytes:
    try:
        request = json.loads(body)
        method, params, request_id = request["method"], request.get("params", []), request.get("id")
        if not isinstance(params, list):
            raise ValueError("params must be an array")
    except Exception as exc:
        raise _Malformed(f"not a JSON-RPC call: {exc}") from None
    ok, value = dispatch.serve(listener.ctx, method, params, listener)
    if request.get("jsonrpc") == "2.0":
        reply = {"jsonrpc": "2.0", "result": value} if ok else \
            {"jsonrpc": "2.0", "error": {"code": 1, "message": value[0], "data": value[1:]}}
    else:
        reply = {"result": value, "error": None} if ok else {"result": None, "error": value}
    return json.dumps(reply | {"id": request_id}, default=_json_value).encode()


def _json_value(value: Any) -> str:
    if isinstance(value, xmlrpc.client.DateTime):
        return value.value
    raise TypeError(f"{value!r} is not JSON")
