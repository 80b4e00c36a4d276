"""The CLI's renderer: fixed values in, exact text out (goldens in tests/unit/golden/<id>.txt).

After a deliberate output change, rewrite the goldens with SDNCTL_UPDATE_GOLDENS=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sdnctl.certs import CertInfo
from sdnctl.cli import render
from sdnctl.cli.render import PoolTrust
from sdnctl.core.hostplan import ObservedHost
from sdnctl.core.model import FlowSpec, ObservedPort, PortPlan, Rule, TunnelSpec
from sdnctl.core.writeback import PlugPif, RecordCenter, SetTunnelStatus
from sdnctl.daemon.planner import HostReport, PlanReport
from sdnctl.openflow.codec import FlowPlan

GOLDEN = Path(__file__).parent / "golden"

# --- fixed inputs -----------------------------------------------------------------------------

CA = CertInfo("/etc/sdnctl/certs/ca.pem", "CN=sdnctl CA", "CN=sdnctl CA", "AA:BB:CC", "2035-01-01", 3650)
CLIENT = CertInfo("/etc/sdnctl/certs/client.pem", "CN=sdnctl", "CN=sdnctl CA", "DD:EE:FF", "2026-02-01", 12)

NET = {"id": "8f0c-1", "name": "net", "origin": "sdnctl", "encapsulation": "gre", "vni": "7", "topology": "star",
       "encrypted": True, "mtu": "1456",
       "pools": [{"pool": "pool1", "network_uuid": "a1", "bridge": "xenbr5", "pifs": 2},
                 {"pool": "pool2", "network_uuid": "b2", "bridge": "xapi3", "pifs": 3}]}
XO_NET = {"id": "2c4d-2", "name": "from-xo", "origin": "xo", "encapsulation": "vxlan", "vni": None, "topology": "mesh",
          "encrypted": False, "mtu": 1450, "pools": [{"pool": "pool1", "network_uuid": "c3", "bridge": "xapi9", "pifs": 1}]}

HOST_OK = {"name": "p1h1", "target": "ssl:127.0.1.1:6640", "connected": True, "error": None,
           "openflow": {"xenbr1": {"connected": True}, "xenbr0": {"connected": False}}}
HOST_DOWN = {"name": "p1h2", "target": "ssl:127.0.1.2:6640", "connected": False, "error": "timed out", "openflow": {}}
_BFD_UP = {"state": "up", "forwarding": True, "remote_state": "up", "diagnostic": "No Diagnostic"}
_BFD_DOWN = {"state": "down", "forwarding": False, "remote_state": "down", "diagnostic": "Control Detection Time Expired"}
TUNNELS = [
    {"name": "gre-0a000002", "remote_name": "p1h2", "remote_ip": "10.0.0.2", "desired": True, "observed": True,
     "ofport": 3, "error": None, "health": "up", "health_reason": None, "bfd": _BFD_UP, "flap_count": 1},
    {"name": "gre-0a000003", "remote_name": "p1h3", "remote_ip": "10.0.0.3", "desired": True, "observed": False,
     "ofport": None, "error": "could not open", "health": "missing", "health_reason": "no such port on the switch",
     "bfd": None, "flap_count": None},
    {"name": "gre-0a000004", "remote_name": "p1h4", "remote_ip": "10.0.0.4", "desired": True, "observed": True,
     "ofport": 5, "error": None, "health": "down",
     "health_reason": "BFD down, remote down: Control Detection Time Expired", "bfd": _BFD_DOWN, "flap_count": 4},
    {"name": "gre-0a000005", "remote_name": "p1h5", "remote_ip": "10.0.0.5", "desired": True, "observed": True,
     "ofport": 6, "error": None, "health": "unknown", "health_reason": "BFD is off", "bfd": None, "flap_count": None},
    {"name": "gre-0a000009", "remote_name": "", "remote_ip": "10.0.0.9", "desired": False, "observed": True,
     "ofport": 7, "error": None, "health": "up", "health_reason": None, "bfd": _BFD_UP, "flap_count": 1},
]
STATUS = {
    "generated_at": 1000.0,
    "client_certificate": {"fingerprint": "DD:EE:FF", "not_after": "2026-02-01", "days_left": 12,
                           "warning": "client certificate expires in 12 days; run `sdnctl certs rotate`"},
    "pools": [{"name": "pool1", "synced": True, "master_url": "https://127.0.1.1", "resyncs": 1, "error": None},
              {"name": "pool2", "synced": False, "master_url": None, "resyncs": 0, "error": "connection refused"}],
    "hosts": {"uuid-2": HOST_DOWN, "uuid-1": HOST_OK},
    "networks": [{"id": "8f0c-1", "name": "net", "encapsulation": "gre", "vni": 7, "topology": "star",
                  "center": "uuid-1", "center_name": "p1h1", "error": None, "encrypted": False,
                  "dead_by_bfd": ["p1h3"], "hosts": [
                      {"name": "p1h2", "bridge": "xenbr1", "transport_ip": None, "eligible": False, "tunnels": []},
                      {"name": "p1h1", "bridge": "xenbr1", "transport_ip": "10.0.0.1", "eligible": True,
                       "tunnels": TUNNELS}]},
                 {"id": "2c4d-2", "name": "bad", "encapsulation": "vxlan", "vni": 9, "topology": "mesh",
                  "center": None, "center_name": "", "error": "vni 9 is taken by net2", "encrypted": False,
                  "hosts": []},
                 {"id": "5e1f-3", "name": "secret", "encapsulation": "gre", "vni": 11, "topology": "mesh",
                  "center": None, "center_name": "", "error": None, "encrypted": True, "hosts": [
                      {"name": "p1h1", "bridge": "xapi3", "transport_ip": "10.0.0.1", "eligible": True, "tunnels": [
                          {**TUNNELS[0], "name": "sdn000000000a", "ipsec": {"psk": "current", "egress_pkt_mark": True}},
                          {**TUNNELS[4], "name": "sdn000000000b", "desired": True,
                           "ipsec": {"psk": "stale", "egress_pkt_mark": False}}]}]}],
    "rule_errors": {"vif-1": "pool pool1, VIF vif-1: not JSON"},
}
FRESH = {"generated_at": 1000.0, "pools": [{"name": "pool1", "synced": True, "master_url": "https://127.0.1.1",
                                            "error": None}],
         "hosts": {"uuid-1": {**HOST_OK, "openflow": {}}}, "networks": []}

RULES = [("pool1", "VIF", Rule(False, "tcp", 22, "10.0.0.0/8", "to")), ("pool2", "network", Rule(True, "icmp"))]
TRUST = [PoolTrust("pool1", installed=True, fingerprint="aabbcc"), PoolTrust("pool2", installed=True, fingerprint="11:22"),
         PoolTrust("pool3"), PoolTrust("pool4", error="timed out")]

LAB = {"config": "/run/sdnctl-lab/sdnlab77/controller/sdnctl.toml", "pools": [
    {"name": "pool1", "url": "https://127.77.1.1", "username": "root", "password": "secret", "master": "p1h1",
     "hosts": [{"uuid": "h-1", "name": "p1h1", "address": "127.77.1.1", "ovsdb": "unix:/r/p1h1/db.sock", "netns": None,
                "live": False},
               {"uuid": "h-2", "name": "p1h2", "address": "127.77.1.2", "ovsdb": "unix:/r/p1h2/db.sock",
                "netns": "sdnlab77-p1h2"}]}]}

# A plan with one of every kind of change; the PSK must never appear in it.
PSK = "very-secret-psk"
_OLD = ObservedPort("sdn0000000001", "xapi1", "net-1", "h-2", "gre",
                    (("egress_pkt_mark", "1"), ("key", "7"), ("psk", "old-secret"), ("remote_ip", "10.0.0.2")), ofport=3)
_SEEN = ObservedHost(address="10.0.0.1", bridges=frozenset({"xapi1", "xenbr1"}), ports=(_OLD,),
                     controllers={"xenbr1": "pssl:6653:10.0.0.9"}, rstp_bridges=frozenset(), vif_ports=())
_PORTS = PortPlan(
    add=(TunnelSpec("sdn0000000002", "xapi1", "net-1", "h-3", "gre", "10.0.0.3", 7, psk=PSK),),
    modify=(TunnelSpec("sdn0000000001", "xapi1", "net-1", "h-2", "gre", "10.0.0.22", 7, psk=PSK),),
    delete=(ObservedPort("sdn0000000009", "xapi1", "net-old", "h-9", "gre", (), ofport=4),),
    set_controllers=(("xapi1", "pssl:6654:10.0.0.1"), ("xenbr1", "pssl:6653:10.0.0.1")),
    remove_controllers=("xenbr0",), enable_rstp=("xapi1",))
_DROP = FlowSpec(priority=32081, match=(("eth_type", 0x0800), ("in_port", 3)), action="drop")
PLAN = PlanReport(unsynced_pools=(), host_names={"h-1": "p1h1", "h-2": "p1h2"}, hosts=(
    HostReport("h-1", "p1h1", observed=_SEEN, ports=_PORTS, flows={"xenbr1": FlowPlan(add=(_DROP,))},
               flow_errors={"xapi1": "not connected in time"},
               xapi=(SetTunnelStatus("pool1", "OpaqueRef:t", False, 7),)),
    HostReport("h-2", "p1h2", observed=_SEEN, ports=PortPlan()),
    HostReport("h-3", "p1h3", error="timed out connecting"),
), xapi=(RecordCenter("net-1", "net", "h-2", "h-1", (("pool1", "OpaqueRef:n"),)),
         PlugPif("pool1", "OpaqueRef:p", "p1h2")))

CASES = {
    "status-stale": (render.status, (STATUS, 1020.0)),
    "status-fresh": (render.status, (FRESH, 1005.0)),
    "status-json": (render.status_json, ({"generated_at": 1000.0, "pools": []}, 1002.345)),
    "network-list": (render.network_list, ([NET, XO_NET],)),
    "network-list-empty": (render.network_list, ([],)),
    "network-list-json": (render.network_list_json, ([NET, XO_NET],)),
    "network-show": (render.network_show, (NET,)),
    "network-show-json": (render.network_show_json, (XO_NET,)),
    "rule-list": (render.rule_list, (RULES,)),
    "rule-list-empty": (render.rule_list, ([],)),
    "rule-list-json": (render.rule_list_json, (RULES,)),
    "certs-show": (render.certs_show, ([("CA", CA), ("client", CLIENT)], TRUST, "AA:BB:CC")),
    "certs-show-no-pools": (render.certs_show, ([("CA", CA)], [], "AA:BB:CC")),
    "certs-show-json": (render.certs_show_json, ([("client", CLIENT)], TRUST[:2] + TRUST[3:], "AA:BB:CC")),
    "lab-status": (render.lab_status, (LAB,)),
    "lab-status-json": (render.lab_status_json, ({"config": "/c.toml", "pools": []},)),
    "plan": (render.plan, (PLAN,)),
    "plan-json": (render.plan_json, (PLAN,)),
}


@pytest.mark.parametrize(("function", "args"), CASES.values(), ids=CASES.keys())
def test_renders_exactly_the_golden_text(request, function, args):
    golden = GOLDEN / f"{request.node.callspec.id}.txt"
    text = function(*args)
    if os.environ.get("SDNCTL_UPDATE_GOLDENS"):
        golden.write_text(text + "\n")
    assert text == golden.read_text().removesuffix("\n")


@pytest.mark.parametrize(("function", "args", "path"), [
    (render.network_list_json, ([NET],), lambda doc: (doc[0]["vni"], doc[0]["mtu"])),
    (render.network_show_json, (NET,), lambda doc: (doc["vni"], doc["mtu"])),
], ids=["list", "show"])
def test_network_json_has_numeric_vni_and_mtu_though_xapi_gives_strings(function, args, path):
    assert path(json.loads(function(*args))) == (7, 1456)


@pytest.mark.parametrize(("headers", "rows", "expected"), [
    (["A", "BB"], [], ["A  BB"]),
    (["A", "B"], [["long", None], ["x", 3]], ["A     B", "long  -", "x     3"]),
    (["A", "B"], [["x", ""]], ["A  B", "x"]),
], ids=["header-only", "widths-and-none", "no-trailing-space"])
def test_table(headers, rows, expected):
    assert render.table(headers, rows) == expected


def test_status_json_adds_the_age_and_keeps_the_document():
    state = {"generated_at": 1000.0, "pools": [], "hosts": {}, "networks": []}
    assert json.loads(render.status_json(state, 1012.34)) == {**state, "age_seconds": 12.3}
    assert "age_seconds" not in state


def _tunnel(remote: str, observed: bool, health: str) -> dict:
    return {"remote_name": remote, "desired": True, "observed": observed, "health": health}


def test_status_problems_are_what_makes_status_exit_3():
    healthy = {"generated_at": 1000.0, "pools": [{"name": "pool1", "synced": True}],
               "hosts": {"u1": {"name": "h1", "connected": True}, "u2": {"name": "h2", "connected": True}},
               "networks": [{"name": "net", "hosts": [{"name": "h1", "tunnels": [_tunnel("h2", True, "up")]},
                                                      {"name": "h2", "tunnels": [_tunnel("h1", True, "unknown")]}]}],
               "rule_errors": {}}
    assert render.status_problems(healthy, 1005.0) == []
    broken = {**healthy, "pools": [{"name": "pool1", "synced": False}],
              "hosts": {**healthy["hosts"], "u2": {"name": "h2", "connected": False}},
              "networks": [{"name": "net", "hosts": [{"name": "h1", "tunnels": [_tunnel("h2", True, "down")]},
                                                     {"name": "h2", "tunnels": [_tunnel("h1", False, "unknown")]}]}],
              "rule_errors": {"vif-1": "bad"}}
    assert render.status_problems(broken, 1030.0) == [
        "status is 30s old: is the daemon running?", "pool pool1 not synced", "host h2 disconnected",
        "network net: tunnel h1 -> h2 down", "network net: tunnel h2 -> h1 missing", "rules malformed on vif-1"]


def test_a_plan_never_shows_a_psk_and_counts_every_kind_of_change():
    text = render.plan(PLAN) + render.plan_json(PLAN)
    assert PSK not in text and "old-secret" not in text
    # p1h1: 1 add, 1 modify, 1 delete, 2 controller rows set, 1 removed, 1 RSTP, 1 flow, 1 tunnel status (9); 2 pool writes
    assert (PLAN.hosts[0].changes, PLAN.changes, PLAN.complete) == (9, 11, False)
