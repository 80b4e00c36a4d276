"""One host's OVSDB: a python-ovs IDL over pinned mutual TLS, driven on the asyncio loop (no thread).

The IDL monitors only the columns the host's schema has: a missing optional column
(`core.features.OPTIONAL_COLUMNS`) costs its feature (the core plans without it and says so);
a missing required one keeps the host unconnected with an error saying which.

`Idl.wait()` and `Transaction.wait()` only call a poller's `fd_wait` / `timer_wait` /
`immediate_wake`, so a recording poller maps them onto `loop.add_reader` / `add_writer` /
`call_later`; the driver runs `idl.run()` whenever one fires.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import functools
import logging
import os
import select
import ssl
from collections.abc import Callable
from typing import TypeVar

import ovs.db.idl
import ovs.json
import ovs.jsonrpc
import ovs.poller
import ovs.stream
import ovs.timeval

from sdnctl import retry
from sdnctl.errors import OvsdbError
from sdnctl.core.features import BFD, OPTIONAL_COLUMNS, PROTECTED, RSTP
from sdnctl.core.model import (
    OWNER_CONTROLLER, OWNER_IPSEC_MARK, OWNER_NETWORK, OWNER_REMOTE, XO_PREFIX, BridgePort, ObservedPort, PortPlan,
    TunnelSpec, VifPort,
)
from sdnctl.ovsdb import tls

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_TIMEOUT_MS = 5000
TRANSACTION_TIMEOUT = 15.0
SCHEMA_UNSUPPORTED = "SCHEMA_UNSUPPORTED"         # OvsdbError.code: the host's schema lacks a required column
XO_PORT_KEY = XO_PREFIX + "private-network-uuid"   # on the Port rows of Xen Orchestra's tunnels
COUNTERS = ("transactions", "ports_added", "ports_deleted", "ports_modified", "connects", "controllers_set",
            "flows_added", "flows_deleted")   # HostSwitch.stats: what status and metrics count per host
TABLES = {  # every column sdnctl reads or writes
    "Open_vSwitch": ["bridges", "other_config", "external_ids"],
    "Bridge": ["name", "ports", "external_ids", "controller", "fail_mode", "protocols", "rstp_enable", "datapath_id"],
    "Port": ["name", "interfaces", "external_ids", "other_config", "protected"],
    "Interface": ["name", "type", "options", "external_ids", "ofport", "error", "status", "bfd", "bfd_status",
                  "link_state"],
    "Controller": ["target", "external_ids", "is_connected"],
}


class _Wakeup:
    """A poller that records what python-ovs waits for and turns it into one asyncio future."""

    def __init__(self) -> None:
        self.reads: set[int] = set()
        self.writes: set[int] = set()
        self.timeout_ms: float | None = None

    def fd_wait(self, fd, events) -> None:
        sock = fd
        fd = fd if isinstance(fd, int) else fd.fileno()
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            self.immediate_wake()  # decrypted bytes already buffered: the fd won't signal them
        if events & select.POLLIN:
            self.reads.add(fd)
        if events & select.POLLOUT:
            self.writes.add(fd)

    def timer_wait(self, msec) -> None:
        self.timeout_ms = msec if self.timeout_ms is None else min(self.timeout_ms, msec)

    def timer_wait_until(self, msec) -> None:
        self.timer_wait(max(0, msec - ovs.timeval.msec()))

    def immediate_wake(self) -> None:
        self.timeout_ms = 0

    async def block(self, extra: asyncio.Event) -> None:
        """Wait until a recorded fd is ready, the timer fires, or `extra` is set."""
        loop = asyncio.get_running_loop()
        if self.timeout_ms == 0:
            await asyncio.sleep(0)
            return
        woken = asyncio.Event()
        for fd in self.reads:
            loop.add_reader(fd, woken.set)
        for fd in self.writes:
            loop.add_writer(fd, woken.set)
        waiters = [asyncio.ensure_future(woken.wait()), asyncio.ensure_future(extra.wait())]
        try:
            await asyncio.wait(waiters, timeout=None if self.timeout_ms is None else self.timeout_ms / 1000,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            for fd in self.reads:
                loop.remove_reader(fd)
            for fd in self.writes:
                loop.remove_writer(fd)


def _fetch_schema(remote: str) -> dict:
    """Ask the server for its Open_vSwitch schema, as JSON (blocking, bounded in time; run in a thread)."""
    target = remote.split(":", 1)[1]
    deadline = ovs.timeval.msec() + SCHEMA_TIMEOUT_MS
    error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote), SCHEMA_TIMEOUT_MS)
    if error:
        raise OvsdbError(f"cannot connect to {remote}: {tls.last_error(target) or os.strerror(error)}",
                         code=tls.last_error_code(target))
    rpc = ovs.jsonrpc.Connection(stream)
    try:
        request = ovs.jsonrpc.Message.create_request("get_schema", ["Open_vSwitch"])
        error = rpc.send(request)
        reply = None
        while not error and reply is None:
            rpc.run()
            error, reply = rpc.recv()
            if error == errno.EAGAIN:
                error = 0
            if reply is None and not error:
                if ovs.timeval.msec() > deadline:
                    raise OvsdbError(f"get_schema from {remote}: no answer in {SCHEMA_TIMEOUT_MS} ms "
                                     f"({tls.last_error(target) or 'TLS handshake or server stalled'})",
                                     code=tls.last_error_code(target))
                poller = ovs.poller.Poller()
                rpc.wait(poller)
                rpc.recv_wait(poller)
                poller.timer_wait(100)
                poller.block()
        if error or reply.error:
            detail = tls.last_error(target) or (os.strerror(error) if error else reply.error)
            raise OvsdbError(f"get_schema from {remote} failed: {detail}", code=tls.last_error_code(target))
        return reply.result
    finally:
        rpc.close()


def missing_columns(schema: dict) -> frozenset[str]:
    """The columns of TABLES ("Table.column") that `schema` does not have."""
    tables = schema.get("tables", {})
    return frozenset(f"{table}.{column}" for table, columns in TABLES.items() for column in columns
                     if column not in tables.get(table, {}).get("columns", {}))


def schema_helper(schema: dict, host_name: str) -> ovs.db.idl.SchemaHelper:
    """A helper registering every column of TABLES the schema has; OvsdbError if a required one is missing."""
    missing = missing_columns(schema)
    required = sorted(missing - set(OPTIONAL_COLUMNS))
    if required:
        raise OvsdbError(f"{host_name}: OVSDB schema {schema.get('version', '?')} has no {', '.join(required)}, "
                         "which sdnctl needs: upgrade Open vSwitch on this host", code=SCHEMA_UNSUPPORTED)
    helper = ovs.db.idl.SchemaHelper(schema_json=schema)
    for table, columns in TABLES.items():
        helper.register_columns(table, [c for c in columns if f"{table}.{c}" not in missing])
    return helper


def slow_parser_note() -> str | None:
    """Why OVSDB reading will be slow here, if it will: python-ovs without its C JSON parser."""
    if ovs.json.PARSER == ovs.json.PARSER_C:
        return None
    return ("python-ovs has no C JSON parser (ovs._json): every OVSDB message is parsed in pure Python, "
            "several times slower with many hosts; scripts/bootstrap.sh installs one (python3-openvswitch)")


def _per_change(reader: Callable[[HostSwitch], T]) -> Callable[[HostSwitch], T]:
    """A reader whose answer is kept until the database changes (python-ovs rows are slow to read, and the
    agent, the health monitor and the status all ask after every change)."""
    name = reader.__name__

    @functools.wraps(reader)
    def cached(switch: HostSwitch) -> T:
        seqno = switch.version
        kept = switch._reads.get(name)
        if kept is not None and kept[0] == seqno:
            return kept[1]  # type: ignore[return-value]
        answer = reader(switch)
        switch._reads[name] = (seqno, answer)
        return answer
    return cached


class HostSwitch:
    """A host's Open vSwitch database as sdnctl sees it: observed tunnel ports, one transaction per plan."""

    def __init__(self, host_uuid: str, host_name: str, address: str, port: int, on_change: Callable[[str], None]):
        self.host_uuid = host_uuid
        self.host_name = host_name
        self.label = f"host {host_name} ({host_uuid})"   # how log lines name it
        self.target = f"{address}:{port}"
        self.remote = f"{tls.SCHEME}:{self.target}"
        self._on_change = on_change
        self.idl: ovs.db.idl.Idl | None = None
        self._activity = asyncio.Event()
        self._poke = asyncio.Event()
        self._seqno = -1
        self.error: str | None = None
        self._error_code: str | None = None
        self.schema_version: str | None = None
        self.missing_columns: frozenset[str] = frozenset()   # optional columns the host's schema lacks
        self._reads: dict[str, tuple[int, object]] = {}   # reader -> (change_seqno, its answer then): _per_change
        self._owned = OwnedPorts()
        self.stats = dict.fromkeys(COUNTERS, 0)

    # --- connection ---------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return bool(self.idl and self.idl._session.is_connected() and self.idl.has_ever_connected() and self._synced)

    @property
    def version(self) -> int:
        """Changes whenever what the switch holds may have changed (python-ovs's change_seqno)."""
        return self.idl.change_seqno if self.idl is not None else -1

    @property
    def _synced(self) -> bool:
        return bool(self.idl and self.idl.tables["Open_vSwitch"].rows)

    def status_error(self) -> str | None:
        """Why the switch is not (yet) usable, in words."""
        return self.error or tls.last_error(self.target)

    @property
    def error_code(self) -> str | None:
        """The code of `status_error()`'s TLS diagnosis: PIN_MISMATCH, CLIENT_REJECTED, TLS, or None."""
        if self.error is not None:
            return self._error_code
        return tls.last_error_code(self.target)

    async def run(self) -> None:
        """Connect (retrying on sdnctl's schedule) and keep the IDL in sync until cancelled."""
        backoff = retry.Backoff()
        while self.idl is None:
            try:
                schema = await asyncio.to_thread(_fetch_schema, self.remote)
                helper = schema_helper(schema, self.host_name)
            except OvsdbError as exc:
                self.error, self._error_code = str(exc), exc.code
                delay = backoff.next()
                log.warning("%s: %s; retrying in %.1fs", self.label, exc, delay)
                await asyncio.sleep(delay)
                continue
            self.error = self._error_code = None
            self.schema_version, self.missing_columns = schema.get("version"), missing_columns(schema)
            if self.missing_columns:
                log.warning("%s: OVSDB schema %s lacks %s", self.label, self.schema_version,
                            ", ".join(sorted(self.missing_columns)))
            self.idl = ovs.db.idl.Idl(self.remote, helper, leader_only=False)
            self.idl.notify = self._owned.row_changed
            # python-ovs backs off between reconnects itself, doubling from min to max: the schedule's ends.
            self.idl._session.reconnect.set_backoff(round(retry.delay(0) * 1000),
                                                     round(retry.delay(len(retry.SCHEDULE) - 1) * 1000))
        try:
            await self._drive()
        finally:
            self.idl.close()

    async def _drive(self) -> None:
        was_connected = False
        while True:
            self.idl.run()
            if self.connected != was_connected:
                was_connected = self.connected
                self.stats["connects"] += was_connected
                log.info("%s: OVSDB %s", self.label, "connected" if was_connected else "disconnected")
                self._on_change(self.host_uuid)
            if self.idl.change_seqno != self._seqno:
                self._seqno = self.idl.change_seqno
                self._on_change(self.host_uuid)
            self._activity.set()
            self._activity = asyncio.Event()
            waiter = _Wakeup()
            self.idl.wait(waiter)
            self._poke.clear()
            await waiter.block(self._poke)

    def reconnect(self) -> None:
        """Drop the connection and make a new one (e.g. to present a rotated client certificate)."""
        if self.idl is not None:
            self.idl.force_reconnect()
            self._poke.set()

    # --- observing ----------------------------------------------------------------------
    def bridges(self) -> dict[str, list[str]]:
        """Bridge name -> the XAPI network uuids it carries (`xs-network-uuids`)."""
        return {row.name: row.external_ids.get("xs-network-uuids", "").split(";")
                for row in self.idl.tables["Bridge"].rows.values()}

    @_per_change
    def vif_ports(self) -> list[VifPort]:
        """Every plugged VIF (XCP-ng's `xs-vif-uuid` interfaces) with its ofport and MAC."""
        port_bridge = self._port_bridges()
        vifs = []
        for port in self.idl.tables["Port"].rows.values():
            for iface in port.interfaces:
                ids = iface.external_ids
                if "xs-vif-uuid" in ids and iface.ofport and iface.ofport[0] > 0:
                    vifs.append(VifPort(vif_uuid=ids["xs-vif-uuid"], network_uuid=ids.get("xs-network-uuid", ""),
                                        bridge=port_bridge.get(port.uuid, ""), ofport=iface.ofport[0],
                                        mac=ids.get("attached-mac", "").strip('"').lower()))
        return vifs

    @_per_change
    def interfaces(self) -> list[BridgePort]:
        """Every interface on a bridge that OVS gave an OpenFlow port, whoever owns it (what admission needs)."""
        port_bridge = self._port_bridges()
        found = []
        for port in self.idl.tables["Port"].rows.values():
            bridge = port_bridge.get(port.uuid, "")
            for iface in port.interfaces:
                if bridge and iface.ofport and iface.ofport[0] > 0:
                    found.append(BridgePort(bridge=bridge, name=iface.name, ofport=iface.ofport[0],
                                            vif_uuid=iface.external_ids.get("xs-vif-uuid", "")))
        return found

    def ipsec_mark(self) -> tuple[str, bool]:
        """(Open_vSwitch other_config:ipsec_skb_mark or "", whether sdnctl set it)."""
        for row in self.idl.tables["Open_vSwitch"].rows.values():
            return row.other_config.get("ipsec_skb_mark", ""), OWNER_IPSEC_MARK in row.external_ids
        return "", False

    def fail_modes(self) -> dict[str, str]:
        """Bridge -> its fail_mode ("" when unset, which OVS treats as standalone)."""
        return {row.name: (row.fail_mode[0] if row.fail_mode else "") for row in self.idl.tables["Bridge"].rows.values()}

    def controllers(self) -> dict[str, str]:
        """Bridge -> the target of sdnctl's own Controller row on it."""
        return {bridge.name: row.target for bridge in self.idl.tables["Bridge"].rows.values()
                for row in bridge.controller if row.external_ids.get(OWNER_CONTROLLER) == "true"}

    def datapath_ids(self) -> dict[str, int]:
        return _datapath_ids(self.idl)

    def foreign_controllers(self) -> dict[str, tuple[str, ...]]:
        return _foreign_controllers(self.idl)

    @_per_change
    def xo_ports(self) -> list[ObservedPort]:
        return _xo_ports(self.idl, self._port_bridges())

    def rstp_bridges(self) -> set[str]:
        """Bridges with RSTP enabled (none where the schema has no RSTP)."""
        if RSTP in self.missing_columns:
            return set()
        return {row.name for row in self.idl.tables["Bridge"].rows.values() if row.rstp_enable}

    @_per_change
    def _port_bridges(self) -> dict:
        """Port uuid -> its bridge's name (every reader needs it)."""
        return {port.uuid: bridge.name for bridge in self.idl.tables["Bridge"].rows.values() for port in bridge.ports}

    @_per_change
    def owned_ports(self) -> list[ObservedPort]:
        """Every tunnel port sdnctl owns on this host, with its interface's state."""
        return self._owned.read(self.idl, self._port_bridges())

    # --- changing -----------------------------------------------------------------------
    async def apply(self, plan: PortPlan) -> None:
        """Apply a plan as ONE transaction; raise OvsdbError if it does not commit, or asks for a
        column the host's schema lacks (the core leaves those out: core.features.supported_plan)."""
        if not self.connected:
            raise OvsdbError(f"{self.host_name}: not connected to OVSDB ({self.status_error() or 'connecting'})",
                             code="NOT_CONNECTED")
        for column, wanted in ((RSTP, plan.enable_rstp or plan.disable_rstp),
                               (BFD, any(s.bfd for s in plan.add + plan.modify)),
                               (PROTECTED, any(s.protected for s in plan.add + plan.modify))):
            if wanted and column in self.missing_columns:
                raise OvsdbError(f"{self.host_name}: schema {self.schema_version} has no {column}",
                                 code=SCHEMA_UNSUPPORTED)
        txn = ovs.db.idl.Transaction(self.idl)
        bridges = {row.name: row for row in self.idl.tables["Bridge"].rows.values()}
        _plan_ports(self.idl, txn, bridges, self._port_bridges(), plan, bfd=BFD not in self.missing_columns,
                    protected=PROTECTED not in self.missing_columns)
        _plan_controllers(self.idl, txn, bridges, plan)
        for name, mode in plan.set_fail_modes:
            bridges[name].fail_mode = [mode]
        for name in plan.enable_rstp:
            bridges[name].rstp_enable = True
        for name in plan.disable_rstp:
            bridges[name].rstp_enable = False
        if plan.ipsec_mark is not None:
            _plan_ipsec_mark(self.idl, plan.ipsec_mark)
        status = await self._commit(txn)
        if status != ovs.db.idl.Transaction.SUCCESS and status != ovs.db.idl.Transaction.UNCHANGED:
            # The code is python-ovs's status: "try again" (the database changed meanwhile), "error", ...
            raise OvsdbError(f"{self.host_name}: transaction {status}: {txn.get_error() or ''}".rstrip(": "),
                             code=status)
        self.stats["transactions"] += 1
        self.stats["ports_added"] += len(plan.add)
        self.stats["ports_deleted"] += len(plan.delete)
        self.stats["ports_modified"] += len(plan.modify)
        self.stats["controllers_set"] += len(plan.set_controllers)

    async def _commit(self, txn: ovs.db.idl.Transaction) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TRANSACTION_TIMEOUT
        status = txn.commit()
        while status == ovs.db.idl.Transaction.INCOMPLETE:
            self._poke.set()
            activity = self._activity
            try:
                await asyncio.wait_for(activity.wait(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                txn.abort()
                raise OvsdbError(f"{self.host_name}: transaction timed out after {TRANSACTION_TIMEOUT:.0f}s",
                                 code="TIMEOUT") from None
            status = txn.commit()
        return status


class OwnedPorts:
    """sdnctl's tunnel ports as read from one IDL, each port read from its rows again only when python-ovs
    reports a change to them (`row_changed`, its notify hook) or the rows were reloaded (a reconnect): a
    commit on a 200-host mesh re-reads the ports it touched, not all 199."""

    def __init__(self):
        self._ports: dict = {}                # Port uuid -> (its Row, its ObservedPort or None)
        self._port_of_interface: dict = {}    # Interface uuid -> its Port's uuid

    def read(self, idl: ovs.db.idl.Idl, port_bridge: dict) -> list[ObservedPort]:
        rows = idl.tables["Port"].rows
        observed = []
        for uuid, port in rows.items():
            kept = self._ports.get(uuid)
            if kept is None or kept[0] is not port:
                kept = (port, _observed_port(port))
                self._ports[uuid] = kept
                if kept[1] is not None:
                    self._port_of_interface[port.interfaces[0].uuid] = uuid
            seen = kept[1]
            if seen is None:
                continue
            bridge = port_bridge.get(uuid, "")
            if seen.bridge != bridge:
                seen = dataclasses.replace(seen, bridge=bridge)
                self._ports[uuid] = (port, seen)
            observed.append(seen)
        if len(self._ports) > len(rows):   # ports went: forget them
            self._ports = {uuid: kept for uuid, kept in self._ports.items() if uuid in rows}
            self._port_of_interface = {i: p for i, p in self._port_of_interface.items() if p in rows}
        return observed

    def row_changed(self, event: str, row: ovs.db.idl.Row, updates: object = None) -> None:
        table = row._table.name
        if table == "Port":
            self._ports.pop(row.uuid, None)
        elif table == "Interface":
            self._ports.pop(self._port_of_interface.get(row.uuid), None)


def _observed_port(port: ovs.db.idl.Row) -> ObservedPort | None:
    """The port as the core sees it, if sdnctl owns it (its bridge is filled in by the caller)."""
    ids = port.external_ids
    if OWNER_NETWORK not in ids or not port.interfaces:
        return None
    iface = port.interfaces[0]
    link_state = getattr(iface, "link_state", None)   # optional columns: absent on an old schema
    return ObservedPort(
        name=port.name, bridge="", network_id=ids[OWNER_NETWORK], remote_host=ids.get(OWNER_REMOTE, ""),
        type=iface.type, options=tuple(sorted(iface.options.items())), ofport=iface.ofport[0] if iface.ofport else None,
        error=iface.error[0] if iface.error else None,
        bfd=tuple(sorted(getattr(iface, "bfd", {}).items())),
        bfd_status=tuple(sorted(getattr(iface, "bfd_status", {}).items())),
        carrier=iface.status.get("tunnel_egress_iface_carrier"),
        link_state=link_state[0] if link_state else None,
        protected=bool(getattr(port, "protected", False)),
    )


def _owner_ids(spec: TunnelSpec) -> dict[str, str]:
    return {OWNER_NETWORK: spec.network_id, OWNER_REMOTE: spec.remote_host}



def _datapath_ids(idl: ovs.db.idl.Idl) -> dict[str, int]:
    """Bridge -> its datapath id (what FEATURES_REPLY must name), once vswitchd has set it."""
    ids = {}
    for row in idl.tables["Bridge"].rows.values():
        try:
            ids[row.name] = int(row.datapath_id[0], 16)
        except (IndexError, ValueError):
            continue     # no datapath yet
    return ids


def _foreign_controllers(idl: ovs.db.idl.Idl) -> dict[str, tuple[str, ...]]:
    """Bridge -> the targets of Controller rows on it that are not sdnctl's (Xen Orchestra's `pssl:`...)."""
    found = {}
    for bridge in idl.tables["Bridge"].rows.values():
        targets = tuple(sorted(row.target for row in bridge.controller
                               if row.external_ids.get(OWNER_CONTROLLER) != "true"))
        if targets:
            found[bridge.name] = targets
    return found


def _xo_ports(idl: ovs.db.idl.Idl, port_bridge: dict) -> list[ObservedPort]:
    """Xen Orchestra's tunnel ports (`<bridge>_port<N>`, Port other_config xo:sdn-controller:private-network-uuid)."""
    found = []
    for port in idl.tables["Port"].rows.values():
        network = port.other_config.get(XO_PORT_KEY)
        if network is None or OWNER_NETWORK in port.external_ids or not port.interfaces:
            continue
        iface = port.interfaces[0]
        found.append(ObservedPort(name=port.name, bridge=port_bridge.get(port.uuid, ""),
                                  network_id=network.strip().lower(), remote_host="", type=iface.type,
                                  options=tuple(sorted(iface.options.items())),
                                  ofport=iface.ofport[0] if iface.ofport else None,
                                  error=iface.error[0] if iface.error else None))
    return found


def _plan_ports(idl: ovs.db.idl.Idl, txn: ovs.db.idl.Transaction, bridges: dict, port_bridge: dict, plan: PortPlan,
                *, bfd: bool, protected: bool) -> None:
    """The plan's tunnel ports into the transaction: deletes, in-place modifies, then adds."""
    ports = {row.name: row for row in idl.tables["Port"].rows.values()}
    for observed in plan.delete:
        row = ports.get(observed.name)
        if row is None:
            continue
        owner = bridges.get(port_bridge.get(row.uuid, ""))
        if owner is not None:
            owner.delvalue("ports", row.uuid)
        for iface in row.interfaces:
            iface.delete()
        row.delete()
    for spec in plan.modify:
        if protected:
            ports[spec.name].protected = spec.protected
        iface = ports[spec.name].interfaces[0]
        iface.type = spec.type
        iface.options = spec.options
        if bfd:
            iface.bfd = dict(spec.bfd)
    for spec in plan.add:
        iface = txn.insert(idl.tables["Interface"])
        iface.name = spec.name
        iface.type = spec.type
        iface.options = spec.options
        if bfd:
            iface.bfd = dict(spec.bfd)
        iface.external_ids = _owner_ids(spec)
        port = txn.insert(idl.tables["Port"])
        port.name = spec.name
        port.interfaces = [iface]
        if protected:
            port.protected = spec.protected
        port.external_ids = _owner_ids(spec)
        bridges[spec.bridge].addvalue("ports", port.uuid)


def _plan_controllers(idl: ovs.db.idl.Idl, txn: ovs.db.idl.Transaction, bridges: dict, plan: PortPlan) -> None:
    """sdnctl's Controller row per bridge (passive TLS listener) and OpenFlow 1.3; the plan sets fail_mode.

    A bridge left without any controller goes back to standalone: in secure mode with no
    controller OVS adds no flow of its own, and the bridge would forward nothing."""
    for name in plan.remove_controllers:
        bridge = bridges.get(name)
        for row in list(bridge.controller) if bridge else ():
            if row.external_ids.get(OWNER_CONTROLLER) == "true":
                bridge.delvalue("controller", row.uuid)
                row.delete()
        if bridge and all(row.external_ids.get(OWNER_CONTROLLER) == "true" for row in bridge.controller):
            bridge.fail_mode = ["standalone"]
    for name, target in plan.remove_foreign_controllers:
        bridge = bridges.get(name)
        for row in list(bridge.controller) if bridge else ():
            if row.target == target and row.external_ids.get(OWNER_CONTROLLER) != "true":
                bridge.delvalue("controller", row.uuid)   # the row may serve other bridges too: only unlink it
    for name, target in plan.set_controllers:
        bridge = bridges[name]
        ours = [row for row in bridge.controller if row.external_ids.get(OWNER_CONTROLLER) == "true"]
        row = ours[0] if ours else txn.insert(idl.tables["Controller"])
        row.target = target
        row.external_ids = {OWNER_CONTROLLER: "true"}
        if not ours:
            bridge.addvalue("controller", row.uuid)
        if bridge.protocols and "OpenFlow13" not in bridge.protocols:
            bridge.protocols = list(bridge.protocols) + ["OpenFlow13"]


def _plan_ipsec_mark(idl: ovs.db.idl.Idl, mark: str) -> None:
    """Set (or, with "", remove) ipsec_skb_mark key by key, so nobody else's other_config key is touched."""
    for row in idl.tables["Open_vSwitch"].rows.values():
        if mark:
            row.setkey("other_config", "ipsec_skb_mark", mark)
            row.setkey("external_ids", OWNER_IPSEC_MARK, mark)
        else:
            row.delkey("other_config", "ipsec_skb_mark")
            row.delkey("external_ids", OWNER_IPSEC_MARK)
