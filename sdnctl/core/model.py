"""Plain, frozen values the pure core computes with: what the pools are, what the switches should hold."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

ENCAPSULATIONS = ("gre", "vxlan")
TOPOLOGIES = ("star", "mesh")
MAX_KEY = {"gre": 2**32 - 1, "vxlan": 2**24 - 1}
OVERHEAD = {"gre": 44, "vxlan": 50}
IPSEC_OVERHEAD = 46

# Keys of network other_config: ours, and Xen Orchestra's (adopted as-is).
KEY_PREFIX = "sdnctl:"
XO_PREFIX = "xo:sdn-controller:"
CREATING_KEY = KEY_PREFIX + "creating"   # "true" while `network create` is still making the network's objects
MANAGED_KEY = KEY_PREFIX + "managed"     # "false": sdnctl lets the network go (`network export-xo --release`)

# external_ids of every Port/Interface sdnctl owns.
OWNER_NETWORK = "sdnctl-network"
OWNER_REMOTE = "sdnctl-remote-host"
OWNER_CONTROLLER = "sdnctl-controller"  # on the Controller rows sdnctl adds to bridges

# IPsec fail-closed (docs/ipsec.md): every encrypted tunnel marks its packets, and the host's
# ovs-monitor-ipsec drops marked tunnel packets that no SA covers.
IPSEC_SKB_MARK = "1/1"                   # Open_vSwitch other_config:ipsec_skb_mark, value/mask
IPSEC_EGRESS_MARK = "1"                  # Interface options:egress_pkt_mark of an encrypted tunnel
OWNER_IPSEC_MARK = "sdnctl-ipsec-skb-mark"   # Open_vSwitch external_ids: sdnctl set ipsec_skb_mark


@dataclass(frozen=True)
class Endpoint:
    """One host's end of a private network: its bridge and the IP its tunnels leave from.

    `eligible` is false while the host is not live or its transport PIF is unplugged or has no IP.
    """

    host_uuid: str
    pool: str
    bridge: str
    transport_ip: str | None
    eligible: bool
    multi_homed: bool = False
    ineligible_reason: str | None = None   # why not eligible, in words ("host not live; ...")


@dataclass(frozen=True)
class PrivateNetwork:
    """A private network: one XAPI network per pool, joined by tunnels.

    `id` is the private-network uuid shared by the network objects of every pool.
    `error` is set when its other_config is malformed; such a network gets no tunnels. Nor does one
    still `creating`: its center is elected once every pool's object and tunnel exist.
    """

    id: str
    name: str
    encapsulation: str
    vni: int
    topology: str
    preferred_center: str | None = None
    center: str | None = None
    encrypted: bool = False
    origin: str = "sdnctl"
    endpoints: tuple[Endpoint, ...] = ()
    error: str | None = None
    creating: bool = False   # `network create` has not finished: nothing is built until it has


@dataclass(frozen=True)
class TunnelSpec:
    """One tunnel port a host bridge should carry (an OVSDB Port with one Interface)."""

    name: str
    bridge: str
    network_id: str
    remote_host: str
    type: str
    remote_ip: str
    key: int
    local_ip: str | None = None
    psk: str | None = field(default=None, repr=False)  # IPsec pre-shared key: never printed
    bfd: tuple[tuple[str, str], ...] = ()   # Interface.bfd, sorted (enable, min_rx, min_tx); () = BFD off
    protected: bool = False                 # Port.protected: split horizon, set on every tunnel of a mesh

    @property
    def options(self) -> dict[str, str]:
        opts = {"remote_ip": self.remote_ip, "key": str(self.key)}
        if self.local_ip:
            opts["local_ip"] = self.local_ip
        if self.psk:
            opts["psk"] = self.psk
            opts["egress_pkt_mark"] = IPSEC_EGRESS_MARK
        return opts


@dataclass(frozen=True)
class ObservedPort:
    """An sdnctl-owned tunnel port as read back from a host's OVSDB."""

    name: str
    bridge: str
    network_id: str
    remote_host: str
    type: str
    options: tuple[tuple[str, str], ...] = field(repr=False)  # may hold the PSK
    ofport: int | None = None
    error: str | None = None
    bfd: tuple[tuple[str, str], ...] = ()          # Interface.bfd as configured, sorted
    bfd_status: tuple[tuple[str, str], ...] = ()   # Interface.bfd_status: state, forwarding, remote_state, flap_count...
    carrier: str | None = None                     # Interface.status:tunnel_egress_iface_carrier ("up" | "down")
    link_state: str | None = None                  # Interface.link_state ("up" | "down")
    protected: bool = False                        # Port.protected


@dataclass(frozen=True)
class PortPlan:
    """What one host's OVSDB transaction must do: tunnel ports to add, delete and modify, and
    sdnctl's OpenFlow controller listener per bridge to set (bridge, target) or remove (bridge)."""

    add: tuple[TunnelSpec, ...] = ()
    delete: tuple[ObservedPort, ...] = ()
    modify: tuple[TunnelSpec, ...] = ()
    set_controllers: tuple[tuple[str, str], ...] = ()
    remove_controllers: tuple[str, ...] = ()
    enable_rstp: tuple[str, ...] = ()
    disable_rstp: tuple[str, ...] = ()    # mesh bridges that have split horizon instead
    set_fail_modes: tuple[tuple[str, str], ...] = ()   # (bridge, "secure" | "standalone")
    remove_foreign_controllers: tuple[tuple[str, str], ...] = ()   # (bridge, target): Xen Orchestra's, on adopted bridges
    ipsec_mark: str | None = None   # ipsec_skb_mark to set (IPSEC_SKB_MARK), "" to remove sdnctl's, None: leave

    @property
    def empty(self) -> bool:
        return not (self.add or self.delete or self.modify or self.set_controllers or self.remove_controllers
                    or self.enable_rstp or self.disable_rstp or self.set_fail_modes or self.remove_foreign_controllers
                    or self.ipsec_mark is not None)


@dataclass(frozen=True)
class ClusterSnapshot:
    """Every managed private network with its endpoints, as the pools are now."""

    networks: tuple[PrivateNetwork, ...] = field(default_factory=tuple)


def tunnel_port_name(network_id: str, remote_host_uuid: str) -> str:
    """The port name of the tunnel to `remote_host_uuid` for a network: `sdn` + 12 hex digits.

    Deterministic (a restart finds the same names), unique per local host, and 15 characters,
    the kernel's limit for an interface name.
    """
    digest = hashlib.sha256(f"{network_id}/{remote_host_uuid}".encode()).hexdigest()
    return f"sdn{digest[:12]}"


# --- traffic rules and OpenFlow --------------------------------------------------------------

RULE_PROTOCOLS = ("ip", "icmp", "tcp", "udp", "arp")
RULE_DIRECTIONS = ("from", "to", "both")
SDNCTL_COOKIE = 0x5DC1_0000_0000_0000   # every flow sdnctl installs carries this in its top 16 bits
COOKIE_MASK = 0xFFFF_0000_0000_0000


@dataclass(frozen=True)
class Rule:
    """A traffic rule, Xen Orchestra's model: allow or deny `protocol` [port] to/from `ip_range`.

    `direction` is seen from the VM: `from` = traffic the VM sends, `to` = traffic it receives.
    `xo_priority` and `xo_cookie` are Xen Orchestra 6's `priority` (the OpenFlow priority XO's host
    plugin gives the rule's flows) and `cookie` (the hex cookie it tags them with): read, validated
    and written back so that XO keeps seeing its rules; sdnctl orders its own flows (flows.rule_priority).
    """

    allow: bool
    protocol: str
    port: int | None = None
    ip_range: str | None = None
    direction: str = "both"
    xo_priority: int | None = None
    xo_cookie: str | None = None


@dataclass(frozen=True)
class VifPort:
    """A plugged VIF as its host's OVSDB shows it: where its rules must be enforced."""

    vif_uuid: str
    network_uuid: str
    bridge: str
    ofport: int
    mac: str


@dataclass(frozen=True)
class BridgePort:
    """Any interface on a host bridge with its OpenFlow port (tunnels, NICs, bonds, internal ports, VIFs).

    `vif_uuid` is its `xs-vif-uuid` ("" for ports that are not a guest's)."""

    bridge: str
    name: str
    ofport: int
    vif_uuid: str = ""


FAIL_MODES = ("secure", "standalone")
INGRESS_TABLE, EGRESS_TABLE = 0, 1


@dataclass(frozen=True)
class FlowSpec:
    """One OpenFlow 1.3 flow.

    `match` holds OXM fields by os-ken's OFPMatch keyword names (e.g. ("in_port", 3),
    ("eth_type", 0x0800), ("ip_proto", 6), ("tcp_dst", 22), ("ipv4_dst", ("10.0.0.0", "255.0.0.0"))),
    sorted by name; `action` is "normal", "drop" or "next" (go to the egress table).
    """

    priority: int
    match: tuple[tuple[str, object], ...]
    action: str
    cookie: int = SDNCTL_COOKIE
    table_id: int = INGRESS_TABLE
