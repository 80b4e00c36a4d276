"""What a host's OVSDB schema lets sdnctl do: the optional columns, and a plan cut to what the host can hold.

XCP-ng 8.2 (OVS 2.5.3, schema 7.12.1) and 8.3 (OVS 2.17.7, schema 8.3.0) both have every column
sdnctl uses; an older switch may lack the optional ones, and then only their feature is lost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from sdnctl.core.model import PortPlan, TunnelSpec

RSTP = "Bridge.rstp_enable"
BFD = "Interface.bfd"
BFD_STATUS = "Interface.bfd_status"
LINK_STATE = "Interface.link_state"
PROTECTED = "Port.protected"
# Column -> what a host without it goes without. Every other column sdnctl uses is required.
OPTIONAL_COLUMNS: Mapping[str, str] = {
    RSTP: "mesh networks on this host run without RSTP",
    BFD: "its tunnels run without BFD (their health is unknown)",
    BFD_STATUS: "its tunnels' BFD state cannot be read (their health is unknown)",
    LINK_STATE: "its tunnels' link state cannot be read",
    PROTECTED: "mesh networks on this host break loops with RSTP instead of split horizon (OVS < 2.11): "
               "a new VIF forwards after about 3 s, and RSTP blocks all but a tree of the tunnels",
}


def supported_tunnels(desired: frozenset[TunnelSpec], schema_version: str,
                      missing: frozenset[str]) -> tuple[frozenset[TunnelSpec], tuple[str, ...]]:
    """(the desired tunnels as the host's schema can hold them, a note per feature left out).

    Without Interface.bfd or Port.protected the tunnels are planned without them (else they would
    differ from what the switch can ever hold, and be modified for ever)."""
    notes = []
    if BFD in missing and any(spec.bfd for spec in desired):
        desired = frozenset(dataclasses.replace(spec, bfd=()) for spec in desired)
        notes.append(f"schema {schema_version} has no {BFD}: {OPTIONAL_COLUMNS[BFD]}")
    if PROTECTED in missing and any(spec.protected for spec in desired):
        desired = frozenset(dataclasses.replace(spec, protected=False) for spec in desired)
        notes.append(f"schema {schema_version} has no {PROTECTED}: {OPTIONAL_COLUMNS[PROTECTED]}")
    return desired, tuple(notes)


def supported_plan(plan: PortPlan, schema_version: str, missing: frozenset[str]) -> tuple[PortPlan, tuple[str, ...]]:
    """(the part of `plan` the host's schema can hold, one note per feature left out)."""
    notes: list[str] = []
    if RSTP in missing and plan.enable_rstp:
        plan = dataclasses.replace(plan, enable_rstp=())
        notes.append(f"schema {schema_version} has no {RSTP}: {OPTIONAL_COLUMNS[RSTP]}")
    return plan, tuple(notes)
