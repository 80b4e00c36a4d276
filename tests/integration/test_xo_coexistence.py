"""Coexistence with Xen Orchestra's SDN controller, both ways, in the exact formats XO writes.

XO's formats are taken from its source (xo-server-sdn-controller): network other_config from
`_createPrivateNetwork` (index.js), OVS ports from `addInterfaceAndPort` (protocol/ovsdb-client.js).
"""

from __future__ import annotations

import json

from tests.integration.conftest import run_cli, xapi_call

XO = "xo:sdn-controller:"


def test_export_xo_writes_xos_keys_and_moves_the_rules(make_lab):
    lab = make_lab(pools=1, hosts=2)
    run_cli("network", "create", "--name", "net1", "--pool", "pool1", "--pif-device", "eth0", "--vni", "7",
            "--preferred-center", "p1h2", config=lab.config_path)
    run_cli("rule", "add", "--network", "net1", "--deny", "--protocol", "tcp", "--port", "22", config=lab.config_path)
    ref = xapi_call(lab, "network.get_by_name_label", "net1")[0]
    before = xapi_call(lab, "network.get_other_config", ref)
    host = next(h for h in xapi_call(lab, "host.get_all_records").values() if h["name_label"] == "p1h2")

    preview = run_cli("network", "export-xo", "net1", "--dry-run", config=lab.config_path).stdout
    assert "would write" in preview
    assert xapi_call(lab, "network.get_other_config", ref) == before

    run_cli("network", "export-xo", "net1", config=lab.config_path)
    after = xapi_call(lab, "network.get_other_config", ref)
    xo_keys = {k: v for k, v in after.items() if k.startswith(XO) and k != XO + "of-rules"}
    # What XO's _createPrivateNetwork writes for an unencrypted GRE network on eth0 without VLAN.
    assert xo_keys == {XO + "encapsulation": "gre", XO + "pif-device": "eth0",
                       XO + "private-network-uuid": before["sdnctl:private-network-uuid"],
                       XO + "vlan": "-1", XO + "vni": "7", XO + "preferred-center": host["uuid"]}
    rules = [json.loads(r) for r in json.loads(after[XO + "of-rules"])]
    assert rules == [{"allow": False, "protocol": "TCP", "port": 22, "ipRange": "", "direction": "from/to"}]
    assert "sdnctl:of-rules" not in after
    assert after["sdnctl:private-network-uuid"] == before["sdnctl:private-network-uuid"]   # still sdnctl's

    again = run_cli("network", "export-xo", "net1", config=lab.config_path)
    assert xapi_call(lab, "network.get_other_config", ref) == after, again.stdout   # idempotent


def test_export_xo_refuses_a_mesh(make_lab):
    lab = make_lab(pools=1, hosts=2)
    run_cli("network", "create", "--name", "net1", "--pool", "pool1", "--pif-device", "eth0", "--topology", "mesh",
            config=lab.config_path)
    result = run_cli("network", "export-xo", "net1", config=lab.config_path, check=False)
    assert result.returncode != 0 and "builds only stars" in result.stderr
