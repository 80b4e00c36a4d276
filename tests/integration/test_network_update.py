"""`sdnctl network update` on the lab: each change makes the minimal change on the real switches.

Ports are compared by their Interface row's `_uuid`: a port modified in place keeps it, a port
deleted and re-created gets a new one.
"""

from __future__ import annotations

import json

from tests.integration.conftest import run_cli, xapi_call
from tests.waiting import wait_for


def _interfaces(lab, names) -> dict[tuple[str, str], dict]:
    """(host, port) -> {"uuid", "psk"} of every sdnctl-owned tunnel Interface."""
    rows = {}
    for name in names:
        table = json.loads(lab.host(name).vsctl("--format=json", "--columns=_uuid,name,options,external_ids",
                                                "list", "Interface"))
        for (_, uuid), port, (_, options), (_, ids) in table["data"]:
            if any(key == "sdnctl-network" for key, _ in ids):
                rows[(name, port)] = {"uuid": uuid, "psk": any(key == "psk" for key, _ in options)}
    return rows


def _settled(lab, names, count: int, psk: bool | None = None):
    """The interfaces once there are `count` of them (all with or all without a PSK, if given)."""
    rows = _interfaces(lab, names)
    if len(rows) != count or (psk is not None and any(r["psk"] != psk for r in rows.values())):
        return None
    return rows


def _uuids(rows) -> dict[tuple[str, str], str]:
    return {key: row["uuid"] for key, row in rows.items()}


def _update(lab, *args, check=True):
    return run_cli("network", "update", "net1", *args, config=lab.config_path, check=check)


def test_update_changes_settings_in_place_and_only_the_ports_that_differ(make_lab, make_daemon):
    lab = make_lab(pools=2, hosts=2)
    make_daemon(lab)
    pool1, everyone = ["p1h1", "p1h2"], ["p1h1", "p1h2", "p2h1", "p2h2"]
    run_cli("network", "create", "--name", "net1", "--pool", "pool1", "--pif-device", "eth0",
            "--topology", "star", "--preferred-center", "p1h1", config=lab.config_path)
    start = _uuids(wait_for(lambda: _settled(lab, pool1, 2), what="a 2-host star"))
    ref = xapi_call(lab, "network.get_by_name_label", "net1")[0]

    out = _update(lab, "--mtu", "1400").stdout
    assert "0 added, 0 deleted, 0 modified" in out
    assert xapi_call(lab, "network.get_MTU", ref) == "1400"

    preview = _update(lab, "--encrypt", "--dry-run").stdout
    assert "0 added, 0 deleted, 2 modified in place" in preview and "nothing was written" in preview
    assert xapi_call(lab, "network.get_other_config", ref)["sdnctl:encrypted"] == "false"

    _update(lab, "--encrypt")
    assert _uuids(wait_for(lambda: _settled(lab, pool1, 2, psk=True), what="IPsec keys on both ports")) == start
    _update(lab, "--no-encrypt")
    assert _uuids(wait_for(lambda: _settled(lab, pool1, 2, psk=False), what="keys removed in place")) == start

    out = _update(lab, "--add-pool", "pool2", "--pif-device", "eth0").stdout
    assert "4 added, 0 deleted, 0 modified" in out
    grown = _uuids(wait_for(lambda: _settled(lab, everyone, 6), what="a 4-host star over both pools"))
    assert {k: v for k, v in grown.items() if k in start} == start

    _update(lab, "--remove-pool", "pool2")
    assert _uuids(wait_for(lambda: _settled(lab, everyone, 2), what="back to pool1's star")) == start

    _update(lab, "--name", "net1b")
    assert xapi_call(lab, "network.get_name_label", ref) == "net1b"
    run_cli("network", "update", "net1b", "--name", "net1", config=lab.config_path)
    assert _uuids(_interfaces(lab, everyone)) == start


def _one_network(make_lab) -> tuple:
    """A 2-host lab (no daemon) with network net1: (the lab, net1's XAPI ref)."""
    lab = make_lab(pools=1, hosts=2)
    run_cli("network", "create", "--name", "net1", "--pool", "pool1", "--pif-device", "eth0",
            config=lab.config_path)
    return lab, xapi_call(lab, "network.get_by_name_label", "net1")[0]


def test_update_refuses_what_cannot_be_done_and_writes_nothing(make_lab):
    lab, ref = _one_network(make_lab)
    before = xapi_call(lab, "network.get_record", ref)
    for args, message in ((("--remove-pool", "pool1"), "no pool"),
                          (("--add-pool", "pool1", "--pif-device", "eth0"), "spans pool1 already"),
                          (("--preferred-center", "nosuch"), "no such host"),
                          ((), "nothing to change")):
        result = _update(lab, *args, check=False)
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
    after = xapi_call(lab, "network.get_record", ref)
    assert (after["other_config"], after["name_label"], after["MTU"]) == (
        before["other_config"], before["name_label"], before["MTU"])


def test_rule_commands_name_a_network_by_name_or_either_uuid(make_lab):
    lab, ref = _one_network(make_lab)
    record = xapi_call(lab, "network.get_record", ref)
    run_cli("rule", "add", "--network", "net1", "--deny", "--protocol", "tcp", "--port", "22", config=lab.config_path)
    for name in ("net1", record["uuid"], record["other_config"]["sdnctl:private-network-uuid"]):
        listed = json.loads(run_cli("rule", "list", "--network", name, "--json", config=lab.config_path).stdout)
        assert [(r["protocol"], r["port"], r["allow"]) for r in listed] == [("tcp", 22, False)], name
