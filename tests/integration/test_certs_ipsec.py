"""Certificates over real TLS (trust, foreign CA, override, rotation) and IPsec PSKs on real OVSDB."""

from __future__ import annotations

import datetime
import json

import pytest

from sdnctl import certs
from sdnctl.errors import OvsdbError
from sdnctl.ovsdb import tls
from sdnctl.ovsdb.switch import _fetch_schema
from tests.integration.conftest import run_cli, tunnel_ports, xapi
from tests.integration.test_private_networks import (
    converged, create_network, expected_ports, interface_uuids, network_id,
)
from tests.waiting import wait_for

NOW = datetime.datetime.now(datetime.timezone.utc)


def install_foreign_ca(lab) -> str:
    """What another controller (Xen Orchestra) leaves behind: its CA as sdn-controller-ca.pem."""
    foreign = certs.make_ca("xo-sdn-controller", NOW)
    session = xapi(lab)
    try:
        session.xenapi.pool.install_ca_certificate(certs.POOL_CA_NAME, foreign.cert_pem)
        session.xenapi.pool.certificate_sync()
        session.xenapi.SDN_controller.introduce("pssl", "", "0")
    finally:
        session.xenapi.session.logout()
    return certs.fingerprint(foreign.cert_pem)


def test_install_on_a_fresh_pool_then_nothing_to_do(make_lab):
    lab = make_lab(pools=1, hosts=2)
    run_cli("certs", "init", config=lab.config_path)
    assert "pool1: installed" in run_cli("certs", "install", config=lab.config_path).stdout
    assert "pool1: trusted" in run_cli("certs", "install", config=lab.config_path).stdout
    assert "pool1: trusts sdnctl's CA" in run_cli("certs", "show", config=lab.config_path).stdout


def test_foreign_ca_is_diagnosed_then_overridden(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=2)
    theirs = install_foreign_ca(lab)
    run_cli("certs", "init", config=lab.config_path)
    paths = certs.ControllerCerts(lab.dir / "controller" / "certs")
    ours = certs.fingerprint(paths.ca_cert.read_text())

    # The guide's error, reproduced: the host ends the TLS session because it trusts another CA.
    host = lab.host("p1h1")
    tls.set_client_certificate(str(paths.client_cert), str(paths.client_key))
    tls.pin(f"{host.address}:6640", host.cert_pem)
    wait_for(lambda: "pssl:6640" in host.vsctl("get-manager"), what="the host's pssl listener")
    with pytest.raises(OvsdbError, match="rejected sdnctl's client certificate"):
        _fetch_schema(f"sdnssl:{host.address}:6640")

    daemon = make_daemon(lab)

    def diagnosed():
        error = next((p["error"] for p in daemon.status().get("pools", []) if p["error"]), None)
        return error and ours in error and theirs in error and "override" in error and error

    wait_for(diagnosed, what="a diagnosis naming both fingerprints")
    # No TLS attempt against hosts that would refuse us, but they are shown, disconnected, with the reason
    # (so an alert on sdnctl_host_ovsdb_connected fires for them too).
    hosts = daemon.status()["hosts"].values()
    assert sorted(h["name"] for h in hosts) == ["p1h1", "p1h2"]
    assert all(not h["connected"] and h["error"].startswith("not managed: ") and "override" in h["error"]
               for h in hosts), [h["error"] for h in hosts]
    assert "pool1: holds ANOTHER" in run_cli("certs", "show", config=lab.config_path).stdout
    failed = run_cli("certs", "install", config=lab.config_path, check=False)
    assert failed.returncode == 1 and "conflict" in failed.stdout

    daemon.kill()
    with open(lab.config_path) as f:
        text = f.read()
    lab.config_path.write_text(text.replace("[defaults]", "override_certs = true\n\n[defaults]", 1))
    daemon.start()
    net_id = create_network(lab, topology="mesh")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, ["p1h1", "p1h2"], "mesh", None)),
             what="tunnels after override")
    assert "pool1: trusts sdnctl's CA" in run_cli("certs", "show", config=lab.config_path).stdout


def test_rotation_reconnects_every_host_and_keeps_the_tunnels(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=3)
    daemon = make_daemon(lab)
    names = ["p1h1", "p1h2", "p1h3"]
    net_id = create_network(lab, topology="mesh")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, names, "mesh", None)), what="mesh")
    before_uuids = interface_uuids(lab, names)
    before = wait_for(lambda: daemon.status().get("client_certificate"), what="status")["fingerprint"]
    assert "new client certificate" in run_cli("certs", "rotate", config=lab.config_path).stdout

    def reconnected():
        status = daemon.status()
        return (status["client_certificate"]["fingerprint"] != before
                and all(h["connects"] >= 2 and h["connected"] for h in status["hosts"].values()))

    wait_for(reconnected, timeout=30, what="every host reconnected with the new certificate")
    wait_for(lambda: all(of["connected"] for h in daemon.status()["hosts"].values() for of in h["openflow"].values()),
             what="OpenFlow channels back with the new certificate")
    assert interface_uuids(lab, names) == before_uuids
    assert "rotated" in daemon.log_text()


def all_xapi_text(lab) -> str:
    session = xapi(lab)
    try:
        api = session.xenapi
        dump = {cls: getattr(api, cls).get_all_records()
                for cls in ("pool", "host", "network", "PIF", "tunnel", "VIF", "VM")}
    finally:
        session.xenapi.session.logout()
    return json.dumps(dump, default=str)


def psks_on(lab, names) -> dict[tuple[str, str], str | None]:
    return {(name, port): row["options"].get("psk") for name in names for port, row in tunnel_ports(lab, name).items()}


def test_encrypted_network_psk_everywhere_but_logs_status_and_xapi(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=3)
    daemon = make_daemon(lab)
    names = ["p1h1", "p1h2", "p1h3"]
    created = run_cli("network", "create", "--name", "secret", "--pool", "pool1", "--pif-device", "eth0",
                      "--topology", "mesh", "--encrypt", "--mtu", "auto", config=lab.config_path).stdout
    assert "MTU 1410" in created  # 1500 - 44 (GRE) - 46 (IPsec)
    net_id = network_id(lab, "secret")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, names, "mesh", None)), what="encrypted mesh")
    psk_file = lab.dir / "controller" / "state" / "ipsec" / f"{net_id}.psk"
    psk = psk_file.read_text().strip()
    assert psk_file.stat().st_mode & 0o777 == 0o600
    wait_for(lambda: set(psks_on(lab, names).values()) == {psk}, what="the PSK on both ends of every tunnel")
    wait_for(lambda: daemon.status().get("networks"), what="status")
    status_json = run_cli("status", "--json", config=lab.config_path, check=False).stdout
    assert json.loads(status_json)["networks"][0]["encrypted"] is True
    for where, text in (("status --json", status_json), ("status", run_cli("status", config=lab.config_path, check=False).stdout),
                        ("plan", run_cli("plan", config=lab.config_path, check=False).stdout),
                        ("plan --json", run_cli("plan", "--json", config=lab.config_path, check=False).stdout),
                        ("XAPI", all_xapi_text(lab)),
                        ("daemon log", daemon.log_text()), ("network show", run_cli("network", "show", "secret",
                                                                                     config=lab.config_path).stdout)):
        assert psk not in where and psk not in text, f"the PSK leaked into {where}"
    session = xapi(lab)
    ref = session.xenapi.network.get_by_name_label("secret")[0]
    assert session.xenapi.network.get_other_config(ref)["sdnctl:encrypted"] == "true"
    session.xenapi.session.logout()

    assert "new IPsec key" in run_cli("network", "rekey", "secret", config=lab.config_path).stdout
    new_psk = psk_file.read_text().strip()
    assert new_psk != psk
    wait_for(lambda: set(psks_on(lab, names).values()) == {new_psk}, what="the new PSK everywhere")
    assert new_psk not in daemon.log_text() and psk not in daemon.log_text()


def ipsec_marks(lab, names) -> dict[str, str | None]:
    """Each host's Open_vSwitch other_config:ipsec_skb_mark (None when unset)."""
    marks = {}
    for name in names:
        value = lab.host(name).vsctl("--if-exists", "get", "Open_vSwitch", ".", "other_config:ipsec_skb_mark")
        marks[name] = value.strip().strip('"') or None
    return marks


def test_encrypted_tunnels_fail_closed_marks_come_and_go_with_encryption(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=3)
    daemon = make_daemon(lab)
    names = ["p1h1", "p1h2", "p1h3"]
    lab.host("p1h3").vsctl("set", "Open_vSwitch", ".", "other_config:ipsec_skb_mark=0/1")   # someone else's
    run_cli("network", "create", "--name", "secret", "--pool", "pool1", "--pif-device", "eth0", "--topology", "mesh",
            "--encrypt", config=lab.config_path)

    def marked():
        ports = {(n, p): row["options"] for n in names for p, row in tunnel_ports(lab, n).items()}
        return len(ports) == 6 and all(o.get("egress_pkt_mark") == "1" and o.get("psk") for o in ports.values())

    wait_for(marked, what="every encrypted tunnel marking its packets")

    def shown():
        tunnels = [t for n in daemon.status().get("networks", []) for h in n["hosts"] for t in h["tunnels"]]
        return len(tunnels) == 6 and all(t["ipsec"] == {"psk": "current", "egress_pkt_mark": True} for t in tunnels)

    wait_for(shown, what="status showing every tunnel's PSK current and marked")
    wait_for(lambda: ipsec_marks(lab, names) == {"p1h1": "1/1", "p1h2": "1/1", "p1h3": "0/1"},
             what="ipsec_skb_mark on the hosts, someone else's left alone")
    host = wait_for(lambda: next((h for h in daemon.status().get("hosts", {}).values() if h["name"] == "p1h3"
                                  and "set by someone else" in (h["error"] or "")), None), what="the note on p1h3")
    assert "may not fail closed" in host["error"]

    run_cli("network", "update", "secret", "--no-encrypt", config=lab.config_path)
    wait_for(lambda: all("egress_pkt_mark" not in row["options"] and "psk" not in row["options"]
                         for n in names for row in tunnel_ports(lab, n).values()), what="plain tunnels")
    wait_for(lambda: ipsec_marks(lab, names) == {"p1h1": None, "p1h2": None, "p1h3": "0/1"},
             what="sdnctl's marks removed, someone else's kept")


def test_rekey_refuses_an_unencrypted_network(make_lab):
    lab = make_lab(pools=1, hosts=2)
    run_cli("network", "create", "--name", "plain", "--pool", "pool1", "--pif-device", "eth0",
            "--encapsulation", "vxlan", config=lab.config_path)
    session = xapi(lab)
    ref = session.xenapi.network.get_by_name_label("plain")[0]
    assert session.xenapi.network.get_MTU(ref) == "1450"  # 1500 - 50 (VXLAN)
    session.xenapi.session.logout()
    result = run_cli("network", "rekey", "plain", config=lab.config_path, check=False)
    assert result.returncode == 1 and "not encrypted" in result.stderr


def test_an_mtu_above_the_encapsulation_limit_is_warned_about(make_lab):
    lab = make_lab(pools=1, hosts=1)
    out = run_cli("network", "create", "--name", "big", "--pool", "pool1", "--pif-device", "eth0",
                  "--encrypt", "--mtu", "1500", config=lab.config_path).stdout
    assert "warning: MTU 1500 exceeds what gre + IPsec carries over a 1500-byte transport" in out and "(1410)" in out
