"""IPsec with a real IPsec stack: per lab host, Debian's ovs-monitor-ipsec and strongSwan in its namespace.

sdnctl writes `options:psk` on every tunnel of an encrypted network; each host's ovs-monitor-ipsec turns
it into a strongSwan connection, and the lab's trigger stands in for the kernel datapath's first packet.
Asserted from strongSwan itself (`swanctl --list-sas` in each host namespace) and its log.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import statistics

import pytest

from sdnctl.lab import ipsec
from tests.integration.conftest import run_cli, tunnel_ports
from tests.integration.test_private_networks import network_id
from tests.waiting import wait_for

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(not ipsec.available(), reason="openvswitch-ipsec/strongSwan not installed")]

HOSTS = ["p1h1", "p1h2", "p1h3"]
IKE_LINE = re.compile(r"^(\S+): #(\d+), (\w+), IKEv2, ([0-9a-f]+)_i\*? ([0-9a-f]+)_r\*?$")
REMOTE_LINE = re.compile(r"^\s+remote '[^']*' @ ([0-9.]+)\[")


def ike_sas(lab, host: str) -> list[dict]:
    """The host's IKE SAs as strongSwan lists them: conn, unique id, state, SPI pair, remote address."""
    sas: list[dict] = []
    for line in lab.ipsec.stacks[host].swanctl("--list-sas").splitlines():
        if m := IKE_LINE.match(line):
            sas.append({"conn": m[1], "id": int(m[2]), "state": m[3], "spis": (m[4], m[5]), "remote": None})
        elif (m := REMOTE_LINE.match(line)) and sas:
            sas[-1]["remote"] = m[1]
    return sas


def established(lab, host: str, iface: str, remote: str, version: int | None = None) -> list[dict]:
    number = str(version) if version else r"\d+"
    name = re.compile(rf"^{re.escape(iface)}-{number}$")
    return [sa for sa in ike_sas(lab, host) if sa["state"] == "ESTABLISHED" and name.match(sa["conn"])
            and sa["remote"] == remote]


def tunnels(lab) -> dict[tuple[str, str], str]:
    """(host, tunnel interface) -> remote_ip, for every sdnctl tunnel in the lab."""
    return {(host, iface): row["options"]["remote_ip"] for host in HOSTS
            for iface, row in tunnel_ports(lab, host).items()}


def peer_of(lab, host: str, remote_ip: str) -> str:
    return next(h for h in HOSTS if h != host and lab.host(h).pif_ips["eth1"] == remote_ip)


def all_paired(lab, version: int | None = None, exclude: set | None = None) -> dict:
    """Every tunnel has an ESTABLISHED IKE SA on both ends with the same SPI pair (not in `exclude`)."""
    pairs = {}
    found = tunnels(lab)
    for (host, iface), remote in found.items():
        peer = peer_of(lab, host, remote)
        back = next(i for (h, i), r in found.items() if h == peer and r == lab.host(host).pif_ips["eth1"])
        ours = {sa["spis"] for sa in established(lab, host, iface, remote, version)}
        theirs = {sa["spis"] for sa in established(lab, peer, back, lab.host(host).pif_ips["eth1"], version)}
        shared = (ours & theirs) - (exclude or set())
        assert shared, f"{host} {iface} -> {peer}: no IKE SA on both ends ({ours} vs {theirs})"
        pairs[(host, iface)] = shared
    return pairs


def log_time(line: str) -> datetime.datetime:
    """A log line's time: ovs-monitor-ipsec's `...T..:..:..mmmZ |` or charon's `...T..:..:...m` (ms count)."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d+)", line)
    assert m, f"no time in {line!r}"
    return datetime.datetime.fromisoformat(m[1]) + datetime.timedelta(milliseconds=int(m[2]))


def setup_times(lab, version: int = 1) -> list[float]:
    """Per tunnel end: OVSDB row seen by ovs-monitor-ipsec -> first IKE SA of that connection established."""
    times = []
    for host, stack in lab.ipsec.stacks.items():
        monitor = stack.monitor_log.read_text().splitlines()
        charon = stack.charon_log.read_text().splitlines()
        for iface in tunnel_ports(lab, host):
            seen = next(log_time(line) for line in monitor
                        if f"Tunnel {iface} appeared" in line or (version > 1 and
                                                                   f"'{iface}' configuration changed in OVSDB to {version}" in line))
            done = next(log_time(line) for line in charon
                        if re.search(rf"IKE_SA {re.escape(iface)}-{version}\[\d+\] established", line))
            times.append((done - seen).total_seconds())
    return times


def encrypted_mesh(lab, make_daemon):
    daemon = make_daemon(lab)
    run_cli("network", "create", "--name", "secret", "--pool", "pool1", "--pif-device", "eth1", "--topology", "mesh",
            "--encrypt", config=lab.config_path)
    net_id = network_id(lab, "secret")
    psk_file = lab.dir / "controller" / "state" / "ipsec" / f"{net_id}.psk"
    wait_for(lambda: len(tunnels(lab)) == 6 and {row["options"].get("psk") for h in HOSTS
                                                 for row in tunnel_ports(lab, h).values()} == {psk_file.read_text().strip()},
             timeout=30, what="the PSK on both ends of all 6 tunnels")
    return daemon, psk_file


def secrets_hold(lab, psk: str) -> bool:
    """Every host's ipsec.secrets (0600) holds `psk` for each of its peers, and no other key."""
    for host in HOSTS:
        path = lab.ipsec.stacks[host].secrets
        assert path.stat().st_mode & 0o777 == 0o600
        keys = set(re.findall(r'^%any (\S+) : PSK "([^"]*)"$', path.read_text(), re.M))
        remotes = set(tunnels(lab)[k] for k in tunnels(lab) if k[0] == host)
        if keys != {(remote, psk) for remote in remotes}:
            return False
    return True


def test_every_encrypted_tunnel_has_ike_sas_on_both_ends_with_sdnctls_psk(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=3, dataplane=True, ipsec=True)
    daemon, psk_file = encrypted_mesh(lab, make_daemon)
    psk = psk_file.read_text().strip()
    wait_for(lambda: secrets_hold(lab, psk), timeout=20, what="sdnctl's PSK in every host's ipsec.secrets")
    wait_for(lambda: all_paired(lab, version=1), timeout=40, what="an IKE SA on both ends of every tunnel")
    for host, stack in lab.ipsec.stacks.items():
        log = stack.charon_log.read_text()
        for (h, _), remote in tunnels(lab).items():
            if h == host:
                assert f"authentication of '{remote}' with pre-shared key successful" in log
        assert psk not in log and psk not in stack.monitor_log.read_text(), "the PSK leaked into a log"
    assert psk not in daemon.log_text()
    times = setup_times(lab)
    print(f"\nIKE set-up (row seen -> IKE SA established), {len(times)} tunnel ends: "
          f"median {statistics.median(times):.3f}s max {max(times):.3f}s")

    # CHILD SAs: strongSwan agrees ESP (AES-GCM, transport) with the peer, then the kernel must hold the SAs.
    host = lab.host("p1h1")
    if ipsec.kernel_has_esp(host.netns):
        wait_for(lambda: all("INSTALLED" in lab.ipsec.stacks[h].swanctl("--list-sas") for h in HOSTS),
                 timeout=30, what="CHILD SAs installed on every host")
    else:
        # This kernel has xfrm but no ESP transform: charon's SAD writes fail (docs/lab.md, "IPsec").
        log = lab.ipsec.stacks["p1h1"].charon_log.read_text()
        assert "selected proposal: ESP:AES_GCM_16_256" in log
        assert "unable to add SAD entry" in log


def test_rekey_renegotiates_every_tunnel_with_the_new_key(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=3, dataplane=True, ipsec=True)
    _, psk_file = encrypted_mesh(lab, make_daemon)
    old_psk = psk_file.read_text().strip()
    old = wait_for(lambda: all_paired(lab, version=1), timeout=40, what="IKE SAs with the first key")
    old_spis = set().union(*old.values())
    digests = {h: hashlib.sha256(lab.ipsec.stacks[h].secrets.read_bytes()).hexdigest() for h in HOSTS}

    assert "new IPsec key" in run_cli("network", "rekey", "secret", config=lab.config_path).stdout
    new_psk = psk_file.read_text().strip()
    assert new_psk != old_psk
    wait_for(lambda: secrets_hold(lab, new_psk), timeout=30, what="the new PSK, alone, in every ipsec.secrets")
    assert all(hashlib.sha256(lab.ipsec.stacks[h].secrets.read_bytes()).hexdigest() != digests[h] for h in HOSTS)
    # ovs-monitor-ipsec replaces each connection by its next version and takes the old one down.
    wait_for(lambda: all_paired(lab, version=2, exclude=old_spis), timeout=60,
             what="new IKE SAs (new SPIs) on both ends of every tunnel, with the new key")
    wait_for(lambda: not any(sa["conn"].endswith("-1") for h in HOSTS for sa in ike_sas(lab, h)), timeout=30,
             what="no IKE SA left of the old connections")
    times = setup_times(lab, version=2)
    print(f"\nIKE re-keying (row changed -> new IKE SA established), {len(times)} tunnel ends: "
          f"median {statistics.median(times):.3f}s max {max(times):.3f}s")
