"""PURE: tunnel health from what OVSDB reports (BFD, carrier), and the dead-center verdict with its hysteresis.

A tunnel is `up` only when BFD says it forwards; `down` when BFD (after having been up), the
egress carrier or the interface itself says it cannot carry traffic; `unknown` when BFD is off or
has never come up since the port was made (a path that never carried one BFD packet, e.g. the
lab's dummy datapath, proves nothing either way); `missing` when the desired row is not there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from sdnctl.core.model import ObservedPort, PrivateNetwork, tunnel_port_name

UP, DOWN, UNKNOWN, MISSING = "up", "down", "unknown", "missing"
HEALTHS = (UP, DOWN, UNKNOWN, MISSING)
MIN_SPOKES = 2   # with one spoke, a dead link and a dead center look the same from the controller


@dataclass(frozen=True)
class TunnelHealth:
    """One tunnel's health, why, and the BFD figures it rests on (None where OVS reports none)."""

    state: str
    reason: str = ""
    bfd_state: str | None = None
    forwarding: bool | None = None
    remote_state: str | None = None
    diagnostic: str | None = None
    flap_count: int | None = None
    failed: bool = False   # the row itself failed (an error, no ofport): down whatever BFD says
    by_bfd: bool = False   # down because BFD says the far end does not answer (not a local fault)

    @property
    def bfd(self) -> dict | None:
        if self.bfd_state is None:
            return None
        return {"state": self.bfd_state, "forwarding": self.forwarding, "remote_state": self.remote_state,
                "diagnostic": self.diagnostic}


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def tunnel_health(port: ObservedPort | None) -> TunnelHealth:
    """The health of a desired tunnel given its observed row (None: the row does not exist)."""
    if port is None:
        return TunnelHealth(MISSING, "no such port on the switch")
    status = dict(port.bfd_status)
    enabled = dict(port.bfd).get("enable") == "true"
    # A stale bfd_status of a disabled session says nothing.
    seen = TunnelHealth(UNKNOWN, bfd_state=status.get("state"), remote_state=status.get("remote_state"),
                        diagnostic=status.get("diagnostic"), flap_count=_int(status.get("flap_count")),
                        forwarding=None if "forwarding" not in status else status["forwarding"] == "true"
                        ) if enabled else TunnelHealth(UNKNOWN)
    if port.error or not port.ofport or port.ofport < 0:
        return replace(seen, state=DOWN, reason=port.error or "OVS gave the port no OpenFlow port", failed=True)
    if port.carrier == "down":
        return replace(seen, state=DOWN, reason="the underlay interface it leaves from has no carrier")
    if not enabled:
        return replace(seen, reason="BFD is off")
    if seen.bfd_state is None:
        return replace(seen, reason="BFD has not reported yet")
    if seen.forwarding if seen.forwarding is not None else seen.bfd_state == "up":
        return replace(seen, state=UP)
    if not seen.flap_count:
        return replace(seen, reason="BFD has not come up since the port was made (no BFD reply yet)")
    return replace(seen, state=DOWN, by_bfd=True, reason=f"BFD {seen.bfd_state}, remote {seen.remote_state or '?'}"
                   + (f": {seen.diagnostic}" if seen.diagnostic else ""))


def counts(healths: Iterable[TunnelHealth]) -> dict[str, int]:
    """How many tunnels are in each health state (every state present, zero or not)."""
    found = dict.fromkeys(HEALTHS, 0)
    for health in healths:
        found[health.state] += 1
    return found


def tunnels_active(healths: Iterable[TunnelHealth]) -> bool:
    """tunnel.status `active` for a host's tunnels of one network.

    False without tunnels, with one missing or failed (no ofport: today's meaning), or with every one
    down by BFD (the host is cut off from the network); true otherwise, also when BFD cannot tell.
    """
    healths = list(healths)
    if not healths or any(h.state == MISSING for h in healths):
        return False
    if any(h.failed for h in healths):
        return False
    return not all(h.state == DOWN for h in healths)


# --- dead centers -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CenterVerdict:
    """How the spokes of a star see its center: `dead` when at least MIN_SPOKES see it BFD-down and none up."""

    dead: bool
    up: int
    down: int
    note: str


def center_verdict(network: PrivateNetwork, center: str,
                   observed: Mapping[str, Mapping[str, ObservedPort]]) -> CenterVerdict:
    """`observed`: host uuid -> its sdnctl ports by name, for the hosts whose switch is connected."""
    name = tunnel_port_name(network.id, center)
    seen = [tunnel_health(observed[ep.host_uuid].get(name)) for ep in network.endpoints
            if ep.eligible and ep.host_uuid != center and ep.host_uuid in observed]
    # Only BFD's word counts against the center: a spoke's own fault (no ofport, no carrier) says nothing of it.
    up, down = sum(h.state == UP for h in seen), sum(h.by_bfd for h in seen)
    if up or not down:
        return CenterVerdict(False, up, down, "")
    if down < MIN_SPOKES:
        return CenterVerdict(False, up, down, "the one spoke that sees it sees the center BFD-down: a dead link "
                             "and a dead center look the same, so the center stays")
    return CenterVerdict(True, up, down, f"{down} spokes see the center BFD-down, none up")


def _seen_up(network_id: str, host: str, observed: Mapping[str, Mapping[str, ObservedPort]]) -> bool:
    return any(port.network_id == network_id and port.remote_host == host and tunnel_health(port).state == UP
               for ports in observed.values() for port in ports.values())


@dataclass(frozen=True)
class CenterWatch:
    """The dead-center state the daemon keeps between looks: values, no clock.

    `since`: (network, center) -> when it first looked dead, continuously since; `dead`: (network, host)
    pairs declared dead, which center election avoids until some peer sees that host BFD-up again.
    """

    since: Mapping[tuple[str, str], float] = field(default_factory=dict)
    dead: frozenset[tuple[str, str]] = frozenset()
    notes: Mapping[str, str] = field(default_factory=dict)   # network id -> why its center stays, if it looks dead

    def next_due(self, hold: float) -> float | None:
        """When a suspect's hold time ends (the daemon looks again then), or None."""
        return min(self.since.values()) + hold if self.since else None

    def avoid(self) -> dict[str, frozenset[str]]:
        """network id -> the hosts its center election must skip."""
        hosts: dict[str, set[str]] = {}
        for network, host in self.dead:
            hosts.setdefault(network, set()).add(host)
        return {network: frozenset(found) for network, found in hosts.items()}


def watch_centers(networks: Iterable[PrivateNetwork], centers: Mapping[str, str | None],
                  observed: Mapping[str, Mapping[str, ObservedPort]], previous: CenterWatch,
                  now: float, hold: float) -> CenterWatch:
    """The next CenterWatch: a star's center that looks dead for `hold` seconds without a break is dead.

    One look where a spoke sees it up, or where it does not look dead, restarts the hold: a flapping
    link never adds up to a failover. A dead host is forgotten once any peer sees it up again, or
    when it leaves the network; it is never made center again meanwhile.
    """
    networks = list(networks)
    members = {(n.id, ep.host_uuid) for n in networks for ep in n.endpoints}
    dead = {(net, host) for net, host in previous.dead
            if (net, host) in members and not _seen_up(net, host, observed)}
    since: dict[tuple[str, str], float] = {}
    notes: dict[str, str] = {}
    for network in networks:
        center = centers.get(network.id)
        if network.topology != "star" or center is None or (network.id, center) in dead:
            continue
        verdict = center_verdict(network, center, observed)
        if verdict.note and not verdict.dead:
            notes[network.id] = verdict.note
        if not verdict.dead:
            continue
        key = (network.id, center)
        started = previous.since.get(key, now)
        if now - started >= hold:
            dead.add(key)
        else:
            since[key] = started
    return CenterWatch(since=since, dead=frozenset(dead), notes=notes)
