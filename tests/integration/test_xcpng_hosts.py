"""Hosts as XCP-ng ships them: each version's TLS options on the real daemons, and its OVSDB schema.

The daemon converges a network on lab hosts set up as 8.3 (the default) and as 8.2, and the TLS
it negotiates with their ovsdb-server and ovs-vswitchd is read off a real handshake. OVSDB-only
hosts (ovsdb-server alone) on the 7.12.1 and 8.3.0 schemas are read and written by HostSwitch.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import socket
import ssl
from pathlib import Path

import pytest

from sdnctl import certs
from sdnctl.core.features import PROTECTED, RSTP, supported_plan
from sdnctl.core.model import PortPlan, TunnelSpec
from sdnctl.lab.ovshost import SCHEMA_2_17_7, SCHEMA_2_5_3, OvsHost
from sdnctl.ovsdb import tls as ovsdb_tls
from sdnctl.errors import OvsdbError
from sdnctl.ovsdb.switch import SCHEMA_UNSUPPORTED, HostSwitch
from sdnctl.tls import pinned_client_context
from tests.integration.conftest import _claim_octet, run_cli, tunnel_ports, xapi
from tests.waiting import wait_for, wait_until

NOW = datetime.datetime.now(datetime.timezone.utc)
NET = "0a1b2c3d-0000-4000-8000-000000000001"


def negotiated(address: str, port: int, pinned_pem: str, paths: certs.ControllerCerts) -> tuple[str, str]:
    """(protocol, suite) of a fresh sdnctl handshake with a host's listener."""
    ctx = pinned_client_context(pinned_pem, str(paths.client_cert), str(paths.client_key))
    with socket.create_connection((address, port), timeout=10) as raw, ctx.wrap_socket(raw) as sock:
        return sock.version(), sock.cipher()[0]


@pytest.mark.parametrize(("version", "expected"), [
    ("8.3", {"ovsdb": ("TLSv1.2", "AES128-GCM-SHA256"), "openflow": ("TLSv1.2", "AES128-GCM-SHA256")}),
    ("8.2", {"ovsdb": ("TLSv1.3", "TLS_AES_256_GCM_SHA384"), "openflow": ("TLSv1.3", "TLS_AES_256_GCM_SHA384")}),
], ids=["xcpng-8.3", "xcpng-8.2"])
def test_the_daemon_converges_on_xcpng_hosts(make_lab, make_daemon, version, expected):
    lab = make_lab(pools=1, hosts=2, xcpng=version)
    assert lab.status()["xcpng"] == version
    daemon = make_daemon(lab)
    run_cli("network", "create", "--name", "net1", "--pool", "pool1", "--pif-device", "eth0",
            "--encapsulation", "vxlan", "--topology", "mesh", config=lab.config_path)
    for name in ("p1h1", "p1h2"):
        wait_for(lambda name=name: len(tunnel_ports(lab, name)) == 1, what=f"{name}'s tunnel port", timeout=30)

    def openflow_synced():
        hosts = daemon.status().get("hosts", {}).values()
        return len(hosts) == 2 and all(h["connected"] and h["openflow_synced"] and h["openflow"] for h in hosts)

    wait_for(openflow_synced, what="both hosts connected with their flows synced", timeout=30)
    host = lab.host("p1h1")
    paths = certs.ControllerCerts(lab.dir / "controller" / "certs")
    bridge = next(b for b in host.vsctl("list-br").split() if host.vsctl("get-controller", b).strip())
    # Split horizon, not RSTP: both lab flavours run Debian's vswitchd, whose schema has Port.protected.
    assert host.vsctl("get", "Bridge", bridge, "rstp_enable").strip() == "false"
    assert all(host.vsctl("get", "Port", port, "protected").strip() == "true" for port in tunnel_ports(lab, "p1h1"))
    _, of_port, of_address = host.vsctl("get-controller", bridge).strip().split(":")
    assert negotiated(host.address, 6640, host.cert_pem, paths) == expected["ovsdb"]
    assert negotiated(of_address, int(of_port), host.cert_pem, paths) == expected["openflow"]
    assert daemon.proc.poll() is None


def test_an_xcpng_83_host_refuses_pythons_default_client(make_lab):
    """What sdnctl's cipher list is for: the default client offers no suite an 8.3 host accepts."""
    lab = make_lab(pools=1, hosts=1)
    host = lab.host("p1h1")
    run_cli("certs", "init", config=lab.config_path)
    run_cli("certs", "install", config=lab.config_path)
    session = xapi(lab)
    try:
        session.xenapi.SDN_controller.introduce("pssl", "", "0")
    finally:
        session.xenapi.session.logout()
    wait_for(lambda: "pssl:6640" in host.vsctl("get-manager"), what="the host's pssl listener")
    paths = certs.ControllerCerts(lab.dir / "controller" / "certs")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cadata=host.cert_pem)
    ctx.load_cert_chain(str(paths.client_cert), str(paths.client_key))
    with socket.create_connection((host.address, 6640), timeout=10) as raw:
        with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
            ctx.wrap_socket(raw)
    assert negotiated(host.address, 6640, host.cert_pem, paths) == ("TLSv1.2", "AES128-GCM-SHA256")


@pytest.fixture
def ovsdb_only_host(tmp_path):
    """An OVSDB-only XCP-ng 8.3 host on a given schema, listening on pssl:6640 for sdnctl's CA."""
    started: list[tuple[OvsHost, Path]] = []

    def start(schema: Path) -> OvsHost:
        octet, claim = _claim_octet()
        host = OvsHost("old1", f"127.{octet}.9.1", tmp_path / f"old{len(started)}", tag=f"old{octet}",
                       dataplane=False, pif_ips={}, schema=schema, ovsdb_only=True)
        started.append((host, claim))
        host.start()
        ca = certs.make_ca("sdnctl CA", NOW)
        client = certs.issue_leaf(ca, "sdnctl", NOW, client=True, server=False)
        certs.write_public(tmp_path / "client.pem", client.cert_pem)
        certs.write_private(tmp_path / "client.key", client.key_pem)
        ovsdb_tls.set_client_certificate(str(tmp_path / "client.pem"), str(tmp_path / "client.key"))
        ovsdb_tls.pin(f"{host.address}:6640", host.cert_pem)
        host.ensure_bridge("xapi1", NET)
        host.configure_manager(ca.cert_pem)
        return host

    yield start
    for host, claim in started:
        host.stop()
        claim.unlink(missing_ok=True)


def trimmed(schema: Path, directory: Path, table: str, column: str) -> Path:
    """`schema` without one column: a switch older than either XCP-ng's."""
    document = json.loads(schema.read_text())
    del document["tables"][table]["columns"][column]
    document["version"] = "7.0.0"
    path = directory / f"no-{column}.ovsschema"
    path.write_text(json.dumps(document))
    return path


PLAN = PortPlan(add=(TunnelSpec(name="vxlan-test0001", bridge="xapi1", network_id="n1", remote_host="h2",
                                type="vxlan", remote_ip="198.18.1.2", key=7),),
                set_controllers=(("xapi1", "pssl:6653:127.0.0.1"),), enable_rstp=("xapi1",))


@pytest.mark.parametrize(("schema", "version", "missing"), [
    (SCHEMA_2_5_3, "7.12.1", frozenset({PROTECTED})),
    (SCHEMA_2_17_7, "8.3.0", frozenset()),
    (None, "7.0.0", frozenset({RSTP, PROTECTED})),
], ids=["xcpng-8.2-schema", "xcpng-8.3-schema", "no-rstp"])
async def test_host_switch_reads_and_writes_an_ovsdb_only_host(ovsdb_only_host, tmp_path, schema, version, missing):
    host = ovsdb_only_host(schema or trimmed(SCHEMA_2_5_3, tmp_path, "Bridge", "rstp_enable"))
    assert host.running and host.pid("ovs-vswitchd") is None
    switch = HostSwitch("uuid-old1", "old1", host.address, 6640, lambda _: None)
    task = asyncio.create_task(switch.run())
    try:
        await wait_until(lambda: switch.connected, what=lambda: f"connected ({switch.status_error()})")
        assert (switch.schema_version, switch.missing_columns) == (version, missing)
        assert switch.bridges() == {"xapi1": [NET]} and switch.owned_ports() == []
        assert switch.rstp_bridges() == set() and switch.controllers() == {}
        if RSTP in missing:   # the adapter fails closed on a column the schema lacks; the core plans without it
            with pytest.raises(OvsdbError) as refused:
                await switch.apply(PLAN)
            assert refused.value.code == SCHEMA_UNSUPPORTED and switch.owned_ports() == []
        plan, notes = supported_plan(PLAN, switch.schema_version, switch.missing_columns)
        await switch.apply(plan)
        await wait_until(lambda: [p.name for p in switch.owned_ports()] == ["vxlan-test0001"], what="the port")
        assert switch.controllers() == {"xapi1": "pssl:6653:127.0.0.1"}
        assert switch.rstp_bridges() == (set() if RSTP in missing else {"xapi1"})
        assert host.vsctl("get", "Interface", "vxlan-test0001", "options:key").strip() == '"7"'
        rstp = host.vsctl("--columns=rstp_enable", "list", "Bridge", "xapi1", check=False)
        assert ("true" in rstp) == (RSTP not in missing)
        assert notes == (("schema 7.0.0 has no Bridge.rstp_enable: mesh networks on this host run without RSTP",)
                         if RSTP in missing else ())
        assert switch.status_error() is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
