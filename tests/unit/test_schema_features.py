"""Which of sdnctl's columns each XCP-ng schema has, and a plan cut to what a host's schema can hold."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sdnctl.core.features import BFD, BFD_STATUS, PROTECTED, RSTP, supported_plan, supported_tunnels
from sdnctl.core.model import PortPlan, TunnelSpec
from sdnctl.errors import LabError, OvsdbError
from sdnctl.lab.ovshost import SCHEMA, SCHEMA_2_17_7, SCHEMA_2_5_3, OvsHost
from sdnctl.ovsdb.switch import SCHEMA_UNSUPPORTED, TABLES, missing_columns, schema_helper


def schema(path) -> dict:
    return json.loads(path.read_text())


def without(document: dict, table: str, column: str) -> dict:
    trimmed = json.loads(json.dumps(document))
    del trimmed["tables"][table]["columns"][column]
    return trimmed


@pytest.mark.parametrize(("path", "version", "missing"), [
    (SCHEMA_2_5_3, "7.12.1", {PROTECTED}), (SCHEMA_2_17_7, "8.3.0", set()), (SCHEMA, None, set())],
    ids=["xcpng-8.2", "xcpng-8.3", "debian"])
def test_every_xcpng_schema_has_every_column_sdnctl_uses_but_82_split_horizon(path, version, missing):
    document = schema(path)
    assert version is None or document["version"] == version
    assert missing_columns(document) == missing
    helper = schema_helper(document, "h1")
    assert helper.get_idl_schema().tables["Bridge"].columns.keys() >= set(TABLES["Bridge"])


def test_xcpng_82_has_no_protected_ports_so_its_meshes_fall_back_to_rstp():
    assert "protected" not in schema(SCHEMA_2_5_3)["tables"]["Port"]["columns"]
    assert "protected" in schema(SCHEMA_2_17_7)["tables"]["Port"]["columns"]
    spec = TunnelSpec("sdn1", "xapi1", "net", "h-2", "gre", "10.0.0.2", 1, protected=True)
    kept, notes = supported_tunnels(frozenset({spec}), "7.12.1", frozenset({PROTECTED}))
    assert kept == {dataclasses.replace(spec, protected=False)} and "RSTP instead of split horizon" in notes[0]


def test_an_optional_column_missing_is_left_out_of_the_monitor():
    document = without(schema(SCHEMA_2_17_7), "Bridge", "rstp_enable")
    assert missing_columns(document) == {RSTP}
    monitored = schema_helper(document, "h1").get_idl_schema().tables["Bridge"].columns
    assert "rstp_enable" not in monitored and "fail_mode" in monitored


def test_a_required_column_missing_fails_closed_naming_it():
    with pytest.raises(OvsdbError, match="schema 7.12.1 has no Interface.ofport, which sdnctl needs") as caught:
        schema_helper(without(schema(SCHEMA_2_5_3), "Interface", "ofport"), "h1")
    assert caught.value.code == SCHEMA_UNSUPPORTED


@pytest.mark.parametrize(("plan", "missing", "kept", "notes"), [
    (PortPlan(enable_rstp=("xapi1",), remove_controllers=("xapi2",)), {RSTP}, PortPlan(remove_controllers=("xapi2",)),
     ("schema 7.9.0 has no Bridge.rstp_enable: mesh networks on this host run without RSTP",)),
    (PortPlan(enable_rstp=("xapi1",)), set(), PortPlan(enable_rstp=("xapi1",)), ()),
    (PortPlan(remove_controllers=("xapi2",)), {RSTP}, PortPlan(remove_controllers=("xapi2",)), ()),
], ids=["rstp-left-out", "rstp-supported", "no-rstp-asked"])
def test_supported_plan(plan, missing, kept, notes):
    assert supported_plan(plan, "7.9.0", frozenset(missing)) == (kept, notes)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"xcpng": "9.0"}, "no XCP-ng 9.0 to model"),
    ({"schema": SCHEMA_2_5_3}, "needs ovsdb_only=True"),
    ({"ovsdb_only": True, "dataplane": True}, "no data plane"),
], ids=["unknown-version", "old-schema-with-vswitchd", "ovsdb-only-dataplane"])
def test_lab_hosts_refuse_what_they_cannot_model(tmp_path, kwargs, words):
    with pytest.raises(LabError, match=words):
        OvsHost("h1", "127.0.0.1", tmp_path, tag="t", pif_ips={}, **{"dataplane": False, **kwargs})


# --- BFD: optional columns ----------------------------------------------------------------------

def test_both_xcpng_schemas_have_bfd_and_an_old_schema_without_it_only_loses_health():
    for path in (SCHEMA_2_5_3, SCHEMA_2_17_7):
        columns = schema(path)["tables"]["Interface"]["columns"]
        assert {"bfd", "bfd_status", "link_state"} <= set(columns)
    document = without(without(schema(SCHEMA_2_17_7), "Interface", "bfd"), "Interface", "bfd_status")
    assert missing_columns(document) == {BFD, BFD_STATUS}
    monitored = schema_helper(document, "h1").get_idl_schema().tables["Interface"].columns
    assert "bfd" not in monitored and "bfd_status" not in monitored and "ofport" in monitored


def test_without_interface_bfd_the_tunnels_are_planned_without_it_and_the_host_says_so():
    spec = TunnelSpec("sdn1", "xapi1", "net", "h-2", "gre", "10.0.0.2", 1,
                      bfd=(("enable", "true"), ("min_rx", "300"), ("min_tx", "300")))
    assert supported_tunnels(frozenset({spec}), "7.9.0", frozenset()) == (frozenset({spec}), ())
    kept, notes = supported_tunnels(frozenset({spec}), "7.9.0", frozenset({BFD}))
    assert kept == {dataclasses.replace(spec, bfd=())}
    assert notes == ("schema 7.9.0 has no Interface.bfd: its tunnels run without BFD (their health is unknown)",)
