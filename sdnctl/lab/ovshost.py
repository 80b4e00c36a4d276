"""A simulated XCP-ng host: its own real ovsdb-server and ovs-vswitchd, found and stopped by pid file.

In data-plane mode ovs-vswitchd runs in the host's network namespace on the `netdev` datapath,
with `eth1` (and `eth2`... when asked for, e.g. to bond) a veth on the lab's shared underlay segment,
a Linux bridge that passes 802.1Q tags as they are (no vlan_filtering); ovsdb-server stays in the root
namespace on the host's loopback address, so the controller reaches every host the same way.
Without data plane, the `dummy` datapath stands in for the kernel's.

Hosts are XCP-ng 8.3 by default, or 8.2: an RSA 2048 self-signed certificate as XAPI makes
`xapi-ssl.pem`, and that version's TLS options on both daemons. An OVSDB-only host runs
ovsdb-server alone, on an older schema (Debian 12's ovs-vswitchd cannot run against 7.12.1).
"""

from __future__ import annotations

import datetime
import os
import signal
import time
from pathlib import Path

from sdnctl import certs
from sdnctl.errors import LabError
from sdnctl.lab import netns
from sdnctl.lab.forward import NamespaceForwarder
from sdnctl.lab.netns import run

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
SCHEMAS = Path(__file__).parent / "schemas"
SCHEMA_2_5_3 = SCHEMAS / "vswitch-2.5.3.ovsschema"     # XCP-ng 8.2's OVS: schema 7.12.1
SCHEMA_2_17_7 = SCHEMAS / "vswitch-2.17.7.ovsschema"   # XCP-ng 8.3's OVS: schema 8.3.0
# The TLS options each XCP-ng version's ovs-ctl starts the daemons with.
XCPNG_TLS = {
    # openvswitch package, ovs-ctl-set-default-ssl-ciphers-and-protocols.patch: static RSA only, TLS 1.2.
    # "AES256-GCM-SHA38" is the patch's spelling: OpenSSL drops it, as it does on the host.
    "8.3": ("--ssl-ciphers=AES256-GCM-SHA38:AES256-SHA256:AES256-SHA:AES128-GCM-SHA256:AES128-SHA256:AES128-SHA",
            "--ssl-protocols=TLSv1.2"),
    # OpenSSL's MinProtocol = TLSv1.2, CipherString = DEFAULT@SECLEVEL=2. No --ssl-protocols: this OVS's
    # list stops at TLSv1.2 and any value turns TLS 1.3 off; SECLEVEL=2 already refuses TLS 1.0 and 1.1.
    "8.2": ("--ssl-ciphers=DEFAULT@SECLEVEL=2",),
}
OVSDB_PORT = 6640
UNDERLAY_PREFIX_LEN = 16
STOP_TIMEOUT = 5.0
DEVICE_WAIT = 10.0
DAEMONS = ("ovs-vswitchd", "ovsdb-server")


def physical_device(bridge: str) -> str | None:
    """The NIC XCP-ng puts on a physical network's bridge: `xenbr1` holds `eth1`."""
    return "eth" + bridge[len("xenbr"):] if bridge.startswith("xenbr") else None


class OvsHost:
    """One host's Open vSwitch: the processes, the host certificate, bridges and VIF ports."""

    def __init__(self, name: str, address: str, workdir: Path, *, tag: str, dataplane: bool,
                 pif_ips: dict[str, str | None], xcpng: str = "8.3", schema: Path | None = None,
                 ovsdb_only: bool = False):
        if xcpng not in XCPNG_TLS:
            raise LabError(f"{name}: no XCP-ng {xcpng} to model; choose one of {', '.join(sorted(XCPNG_TLS))}")
        if schema is not None and not ovsdb_only:
            raise LabError(f"{name}: schema {schema} needs ovsdb_only=True: Debian's ovs-vswitchd runs only "
                           f"against its own {SCHEMA}")
        if ovsdb_only and dataplane:
            raise LabError(f"{name}: an OVSDB-only host has no ovs-vswitchd, so no data plane")
        self.name = name
        self.address = address
        self.dir = workdir
        self.tag = tag
        self.dataplane = dataplane
        self.pif_ips = dict(pif_ips)
        self.bridge_ips: dict[str, str | None] = {}       # bond masters' and VLAN PIFs' addresses, by bridge
        self.netns = f"{tag}-{name}" if dataplane else None
        self.xcpng = xcpng
        self.schema = schema or SCHEMA
        self.daemons = ("ovsdb-server",) if ovsdb_only else DAEMONS
        self.cert_path = self.dir / "host.crt"
        self.key_path = self.dir / "host.key"
        self.db_sock = self.dir / "db.sock"
        self._forwarder: NamespaceForwarder | None = None

    # --- identity -----------------------------------------------------------------------
    @property
    def cert_pem(self) -> str:
        return self.cert_path.read_text()

    @property
    def ovsdb_unix(self) -> str:
        return f"unix:{self.db_sock}"

    @property
    def datapath_type(self) -> str:
        return "netdev" if self.dataplane else "dummy"

    def mgmt(self, bridge: str) -> str:
        """The bridge's OpenFlow management socket, for `ovs-ofctl`."""
        return f"unix:{self.dir / (bridge + '.mgmt')}"

    def vm_netns(self, vm_uuid: str) -> str:
        return f"{self.tag}-vm-{vm_uuid[:8]}"

    # --- processes ----------------------------------------------------------------------
    def start(self) -> None:
        """Create the host (certificate, database, NICs) if new, then start both daemons."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.cert_path.exists():
            pair = certs.make_self_signed_server(self.name, [self.address, self.name],
                                                 datetime.datetime.now(datetime.timezone.utc))
            certs.write_private(self.key_path, pair.key_pem)
            certs.write_public(self.cert_path, pair.cert_pem)
        db = self.dir / "conf.db"
        if not db.exists():
            run(["ovsdb-tool", "create", str(db), str(self.schema)])
        if self.dataplane:
            self._create_nics()
        self._start_ovsdb(db)
        self.vsctl("--no-wait", "init")
        self._start_vswitchd()
        if self.dataplane and self._forwarder is None:
            # vswitchd's OpenFlow listeners live in the namespace: make them reachable like OVSDB's.
            self._forwarder = NamespaceForwarder(self.netns, self.address)
            self._forwarder.start()

    def _create_nics(self) -> None:
        """eth1, eth2... on the shared underlay segment; eth0 a lone veth (management stays on loopback)."""
        netns.add_namespace(self.netns)
        for nic in sorted(d for d in self.pif_ips if d != "eth0"):
            if not netns.link_exists(self.netns, nic):
                port = underlay_port(self.name, nic)
                netns.add_veth(self.netns, nic, segment_netns(self.tag), port)
                netns.enslave(segment_netns(self.tag), port, SEGMENT_BRIDGE)
        if not netns.link_exists(self.netns, "eth0"):
            netns.add_veth(self.netns, "eth0", self.netns, "eth0-wire")

    def _start_ovsdb(self, db: Path) -> None:
        run(["ovsdb-server", "--detach", "--no-chdir", f"--pidfile={self.dir}/ovsdb-server.pid",
             f"--log-file={self.dir}/ovsdb-server.log", f"--unixctl={self.dir}/ovsdb-server.ctl",
             f"--remote=punix:{self.db_sock}", "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
             "--private-key=db:Open_vSwitch,SSL,private_key", "--certificate=db:Open_vSwitch,SSL,certificate",
             "--ca-cert=db:Open_vSwitch,SSL,ca_cert", *XCPNG_TLS[self.xcpng], str(db)])

    def _start_vswitchd(self) -> None:
        if "ovs-vswitchd" not in self.daemons:
            return
        # Its pssl: OpenFlow listeners get the same TLS options as ovsdb-server (ovs-ctl starts both).
        cmd = ["ovs-vswitchd", "--detach", "--no-chdir", f"--pidfile={self.dir}/ovs-vswitchd.pid",
               f"--log-file={self.dir}/ovs-vswitchd.log", f"--unixctl={self.dir}/ovs-vswitchd.ctl",
               *XCPNG_TLS[self.xcpng]]
        if not self.dataplane:
            cmd.append("--enable-dummy=override")
        cmd.append(self.ovsdb_unix)
        run(cmd, netns=self.netns, env={**os.environ, "OVS_RUNDIR": str(self.dir)})

    def pid(self, daemon: str) -> int | None:
        """The pid of a live daemon of this host, read from its pid file."""
        try:
            pid = int((self.dir / f"{daemon}.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if daemon.encode() in cmdline and str(self.dir).encode() in cmdline else None

    @property
    def running(self) -> bool:
        return all(self.pid(daemon) for daemon in self.daemons)

    def crash(self) -> None:
        """Kill both daemons at once, as a host losing power would."""
        self._signal_all(signal.SIGKILL)

    def recover(self) -> None:
        """Start the daemons again on the same database."""
        if not self.running:
            self._signal_all(signal.SIGKILL)
            self._start_ovsdb(self.dir / "conf.db")
            self._start_vswitchd()

    def stop(self) -> None:
        """Stop both daemons by pid: TERM, then KILL after a bounded wait."""
        if self._forwarder is not None:
            self._forwarder.stop()
            self._forwarder = None
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(self.pid(d) for d in DAEMONS) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._signal_all(signal.SIGKILL)

    def _signal_all(self, sig: int) -> None:
        for daemon in DAEMONS:
            pid = self.pid(daemon)
            if pid:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        if sig == signal.SIGKILL:
            deadline = time.monotonic() + STOP_TIMEOUT
            while any(self.pid(d) for d in DAEMONS) and time.monotonic() < deadline:
                time.sleep(0.02)

    # --- what xcp-networkd and xapi do on the host ----------------------------------------
    def vsctl(self, *args: str, check: bool = True) -> str:
        return run(["ovs-vsctl", f"--db={self.ovsdb_unix}", "--timeout=10", *args], check=check).stdout

    def ensure_bridge(self, bridge: str, network_uuid: str) -> None:
        """The network's bridge, tagged `xs-network-uuids`, with its NIC if it is a physical network."""
        args = ["--", "--may-exist", "add-br", bridge,
                "--", "set", "Bridge", bridge, f"datapath_type={self.datapath_type}",
                f"external_ids:xs-network-uuids={network_uuid}"]
        nic = physical_device(bridge)
        if nic:
            args += ["--", "--may-exist", "add-port", bridge, nic]
        self._add_bridge(bridge, args)

    def ensure_bond(self, bridge: str, network_uuid: str, bond: str, members: list[str], mode: str) -> None:
        """A bond master's bridge: xcp-networkd's `ovs-vsctl add-bond BRIDGE bond0 eth1 eth2` with the mode."""
        modes = {"lacp": ["bond_mode=balance-tcp", "lacp=active"]}.get(mode, [f"bond_mode={mode}"])
        self._add_bridge(bridge, ["--", "--may-exist", "add-br", bridge,
                                  "--", "set", "Bridge", bridge, f"datapath_type={self.datapath_type}",
                                  f"external_ids:xs-network-uuids={network_uuid}",
                                  "--", "--may-exist", "add-bond", bridge, bond, *members, *modes,
                                  "other_config:bond-detect-mode=carrier"])

    def ensure_vlan_bridge(self, bridge: str, network_uuid: str, parent: str, tag: int) -> None:
        """A VLAN PIF's bridge: a fake bridge on its tagged PIF's bridge (`ovs-vsctl add-br xapiN PARENT TAG`)."""
        self._add_bridge(bridge, ["--", "--may-exist", "add-br", bridge, parent, str(tag),
                                  "--", "br-set-external-id", bridge, "xs-network-uuids", network_uuid])

    def _add_bridge(self, bridge: str, args: list[str]) -> None:
        if not self.dataplane:
            self.vsctl("--no-wait", *args)
            return
        self.vsctl(*args)
        nic = physical_device(bridge)
        ip = self.pif_ips.get(nic) if nic and nic != "eth0" else self.bridge_ips.get(bridge)
        if ip:
            self._assign_underlay(bridge, ip)

    def _assign_underlay(self, bridge: str, ip: str) -> None:
        """Put a transport IP on its bridge's internal port, where the netdev datapath expects it."""
        deadline = time.monotonic() + DEVICE_WAIT
        while not netns.link_exists(self.netns, bridge):
            if time.monotonic() > deadline:
                raise LabError(f"{self.name}: bridge {bridge} has no device after {DEVICE_WAIT}s")
            time.sleep(0.05)
        netns.set_address(self.netns, bridge, f"{ip}/{UNDERLAY_PREFIX_LEN}")

    def remove_bridge(self, bridge: str) -> None:
        self.vsctl("--no-wait", "--if-exists", "del-br", bridge)

    def add_vif(self, bridge: str, port: str, *, vif_uuid: str, vm_uuid: str, network_uuid: str,
                mac: str, guest_ip: str | None) -> None:
        """Plug a VIF port the way XCP-ng's vif hotplug script does; in data plane, wire the VM too."""
        if self.dataplane:
            vm_ns = self.vm_netns(vm_uuid)
            netns.add_namespace(vm_ns)
            netns.delete_link(vm_ns, "eth0")
            netns.add_veth(self.netns, port, vm_ns, "eth0")
            netns.set_address(vm_ns, "eth0", guest_ip, mac=mac)
            # The userspace datapath does not finish checksums a veth leaves to "hardware": TCP would
            # arrive corrupt. A real guest's netfront computes them; make the VM do so too.
            run(["ethtool", "-K", "eth0", "tx", "off"], netns=vm_ns)
        self.vsctl("--no-wait", "--", "--may-exist", "add-port", bridge, port,
                   "--", "set", "Interface", port,
                   f"external_ids:xs-vif-uuid={vif_uuid}", f"external_ids:xs-vm-uuid={vm_uuid}",
                   f"external_ids:xs-network-uuid={network_uuid}", f'external_ids:attached-mac="{mac}"')

    def remove_vif(self, port: str) -> None:
        self.vsctl("--no-wait", "--if-exists", "del-port", port)
        if self.dataplane:
            netns.delete_link(self.netns, port)

    def configure_manager(self, ca_pem: str | None) -> None:
        """XAPI's openvswitch-config-update: listen on pssl:6640 trusting `ca_pem`, or stop listening."""
        if ca_pem is None:
            self.vsctl("--no-wait", "--", "del-manager", "--", "del-ssl")
            return
        ca_path = self.dir / "sdn-controller-ca.pem"
        certs.write_public(ca_path, ca_pem)
        self.vsctl("--no-wait", "--", "del-manager", "--", "del-ssl",
                   "--", "set-ssl", str(self.key_path), str(self.cert_path), str(ca_path),
                   "--", "set-manager", f"pssl:{OVSDB_PORT}:{self.address}")

    def set_transport_ip(self, device: str, ip: str | None) -> None:
        """PIF.reconfigure_ip: in data plane, move the underlay address of that NIC."""
        self.pif_ips[device] = ip
        if self.dataplane and device != "eth0":
            bridge = "xenbr" + device[len("eth"):]
            if netns.link_exists(self.netns, bridge):
                netns.set_address(self.netns, bridge, f"{ip}/{UNDERLAY_PREFIX_LEN}" if ip else None)

    def set_bridge_ip(self, bridge: str, ip: str | None) -> None:
        """PIF.reconfigure_ip of a bond master or VLAN PIF: the address of its bridge's internal port."""
        self.bridge_ips[bridge] = ip
        if self.dataplane and netns.link_exists(self.netns, bridge):
            netns.set_address(self.netns, bridge, f"{ip}/{UNDERLAY_PREFIX_LEN}" if ip else None)


SEGMENT_BRIDGE = "seg"


def segment_netns(tag: str) -> str:
    """The namespace holding the lab's shared underlay: one Linux bridge."""
    return f"{tag}-seg"


def underlay_port(host_name: str, nic: str = "eth1") -> str:
    """The segment's end of a host NIC's veth: `u-p1h1` for eth1, `u-p1h1-2` for eth2."""
    return (f"u-{host_name}" if nic == "eth1" else f"u-{host_name}-{nic.removeprefix('eth')}")[:15]


def create_segment(tag: str) -> None:
    netns.add_namespace(segment_netns(tag))
    netns.add_bridge(segment_netns(tag), SEGMENT_BRIDGE)
