"""The lab: N simulated pools of M hosts each, real OVS per host, one XAPI simulator per pool.

Addressing: host H of pool P is `127.<octet>.P.H`: its `host.address`, the address its XAPI
simulator listens on, its OVSDB `pssl:6640` listener and its management PIF (eth0) IP.
Its second NIC (eth1) has `198.18.P.H`, which in data-plane mode is a real address on the
lab's underlay segment, inside namespaces the lab made itself (198.18.0.0/15 is reserved
for network testing). Further NICs (eth2... with `nics`) sit on the same segment without an IP,
ready for `Bond.create`; VLAN PIFs and bond masters get theirs by `PIF.reconfigure_ip` or a bond.
"""

from __future__ import annotations

import json
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sdnctl import certs
from sdnctl.errors import LabError
from sdnctl.lab import netns, silence
from sdnctl.lab.ipsec import IpsecStack, LabIpsec
from sdnctl.lab.ovshost import OvsHost, create_segment
from sdnctl.lab.xapi import PoolSimulator

DEFAULT_ROOT = Path("/run/sdnctl-lab")
STATE_FILE = "lab.json"
HA_DELAY = 30.0             # seconds from a master's death to HA's new master (xapi's HA timeout is of that order)


@dataclass
class LabPool:
    """One simulated pool: its simulator and its hosts' switches, by host name."""

    name: str
    index: int
    password: str
    sim: PoolSimulator
    hosts: dict[str, OvsHost] = field(default_factory=dict)
    host_refs: dict[str, str] = field(default_factory=dict)
    next_host: int = 1


@dataclass(frozen=True)
class Join:
    """A host's arrival: its own switch's start-up, and when each of XAPI's join steps landed."""
    ovs_start: float      # seconds: ovsdb-server (+ ovs-vswitchd) up, before XAPI hears of the host
    steps: tuple[float, ...]   # wall clock of each XAPI join step: introduced, PIFs, tunnels, start of day

    @property
    def tunnels_at(self) -> float:
        """When XAPI gave the host its tunnels (xapi_tunnel's sync at join): the first moment it can be meshed."""
        return self.steps[2]


class Lab:
    """Starts, drives and tears down a lab; usable in-process (tests) or from `sdnctl lab serve`."""

    def __init__(self, *, pools: int = 1, hosts: int = 2, dataplane: bool = False, octet: int = 0,
                 root: Path = DEFAULT_ROOT, http_port: int = 80, https_port: int = 443, ha: bool = False,
                 ha_delay: float = HA_DELAY, xcpng: str = "8.3", nics: int = 1, ipsec: bool = False,
                 vswitchd: bool = True):
        """`ha`: as with XAPI's HA, a live slave becomes master `ha_delay` seconds after the master dies.
        `xcpng`: the XCP-ng release whose OVS TLS settings every host runs with (8.3 or 8.2).
        `nics`: NICs per host on the underlay besides eth0 (eth1 has an IP; eth2... none, e.g. to bond).
        `ipsec`: (data plane only) each host also runs ovs-monitor-ipsec and strongSwan (sdnctl.lab.ipsec).
        `vswitchd=False`: hosts run ovsdb-server alone (cheap, for scale benchmarks: no ofports, no OpenFlow)."""
        if not 0 <= octet <= 255 or not 1 <= pools <= 250 or not 1 <= hosts <= 200:
            raise LabError("need 1-250 pools, 1-200 hosts per pool and an octet of 0-255")
        if not 1 <= nics <= 8:
            raise LabError(f"a lab host has 1-8 underlay NICs, not {nics}")
        if ha_delay < 0:
            raise LabError(f"the HA delay must be 0 s or more, not {ha_delay}")
        self.pool_count = pools
        self.hosts_per_pool = hosts
        self.dataplane = dataplane
        self.xcpng = xcpng
        self.nics = nics
        self.vswitchd = vswitchd
        self.octet = octet
        self.tag = f"sdnlab{octet}"
        self.dir = root / self.tag
        self.http_port = http_port
        self.https_port = https_port
        self.ha_delay = ha_delay if ha else None
        self.pools: dict[str, LabPool] = {}
        self.silenced: set[str] = set()                 # hosts crashed with `silent`
        self.ipsec = LabIpsec(enabled=ipsec, dataplane=dataplane)   # ovs-monitor-ipsec + strongSwan per host
        self.joins: dict[str, Join] = {}                # host name -> how its join went (benchmarks time it)
        self._state_lock = threading.Lock()
        self._serving = False                           # the state file is written between up and down

    # --- life cycle ---------------------------------------------------------------------
    def up(self) -> None:
        """Start every pool; on any failure, tear down what was started and re-raise."""
        sweep(self.dir, self.tag)
        self.dir.mkdir(parents=True)
        try:
            if self.dataplane:
                create_segment(self.tag)
            for p in range(1, self.pool_count + 1):
                self._start_pool(p)
            self.write_config()
            self._serving = True
            self.write_state()
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        """Stop every simulator and switch, delete every namespace, nftables table and file the lab made."""
        with self._state_lock:
            self._serving = False
        for pool in self.pools.values():
            pool.sim.stop()
        self.ipsec.stop_all()
        for pool in self.pools.values():
            for host in pool.hosts.values():
                host.stop()
        sweep(self.dir, self.tag)

    def _start_pool(self, p: int) -> None:
        name = f"pool{p}"
        password = secrets.token_urlsafe(12)
        sim = PoolSimulator(name, password=password, http_port=self.http_port, https_port=self.https_port,
                            admin=LabAdmin(self, name), ha_delay=self.ha_delay,
                            on_master_change=self._master_changed)
        pool = LabPool(name=name, index=p, password=password, sim=sim)
        self.pools[name] = pool
        for _ in range(self.hosts_per_pool):
            self._add_host(pool, master=not pool.hosts)
        sim.create_templates()
        sim.start()

    def _add_host(self, pool: LabPool, *, master: bool = False) -> OvsHost:
        h = pool.next_host
        pool.next_host += 1
        name = f"p{pool.index}h{h}"
        address = f"127.{self.octet}.{pool.index}.{h}"
        pif_ips: dict[str, str | None] = {"eth0": address, "eth1": f"198.18.{pool.index}.{h}"}
        pif_ips |= {f"eth{n}": None for n in range(2, self.nics + 1)}
        host = OvsHost(name, address, self.dir / name, tag=self.tag, dataplane=self.dataplane, pif_ips=pif_ips,
                       xcpng=self.xcpng, ovsdb_only=not self.vswitchd)
        started = time.monotonic()
        host.start()
        pool.hosts[name] = host
        self.ipsec.start(host.name, host.dir, host.netns, host.ovsdb_unix)
        ovs_start = time.monotonic() - started
        pool.host_refs[name] = pool.sim.add_host(host, name=name, address=address, pifs=pif_ips, master=master)
        self.joins[name] = Join(ovs_start=ovs_start, steps=pool.sim.join_steps[pool.host_refs[name]])
        return host

    # --- scenario verbs -----------------------------------------------------------------
    def host_join(self, pool_name: str) -> str:
        """A new host joins the pool; returns its name."""
        host = self._add_host(self._pool(pool_name))
        self.write_state()
        return host.name

    def host_eject(self, host_name: str) -> None:
        pool = self._pool_of(host_name)
        pool.sim.eject_host(pool.host_refs.pop(host_name))
        self.ipsec.stop(host_name, forget=True)
        pool.hosts.pop(host_name).stop()
        self.write_state()

    def host_crash(self, host_name: str, silent: bool = False) -> None:
        """The host dies: refused at once, or with `silent` as a powered-off host (no answer, no RST)."""
        pool = self._pool_of(host_name)
        if silent and host_name not in self.silenced:
            host = pool.hosts[host_name]
            silence.silence(self.tag, host.address, host.netns)
            self.silenced.add(host_name)
        pool.sim.crash_host(pool.host_refs[host_name])
        self.ipsec.stop(host_name, crash=True)
        self.write_state()

    def host_recover(self, host_name: str) -> None:
        """The host boots again (a master replaced meanwhile comes back a slave); a silenced one answers again."""
        pool = self._pool_of(host_name)
        pool.sim.recover_host(pool.host_refs[host_name])
        if host_name in self.silenced:
            host = pool.hosts[host_name]
            silence.unsilence(self.tag, host.address, host.netns)
            self.silenced.discard(host_name)
        self.ipsec.recover(host_name)
        self.write_state()

    def designate_new_master(self, host_name: str) -> None:
        """pool.designate_new_master: a planned master change."""
        pool = self._pool_of(host_name)
        pool.sim.set_master(pool.host_refs[host_name])

    def emergency_transition_to_master(self, host_name: str) -> None:
        """`xe pool-emergency-transition-to-master` on that slave: a slave-local login on its own address,
        then pool.emergency_transition_to_master, over the wire."""
        import XenAPI

        pool = self._pool_of(host_name)
        session = XenAPI.Session(self.host_url(pool.hosts[host_name].address), ignore_ssl=True)
        session.slave_local_login_with_password("root", pool.password)
        session.xenapi.pool.emergency_transition_to_master()    # xapi restarts: the session is gone with it

    def _master_changed(self) -> None:
        # Called under the pool's lock: the state file (which reads every pool) is written by another thread.
        threading.Thread(target=self.write_state, name=f"{self.tag} state", daemon=True).start()

    def xapi_restart(self, pool_name: str) -> None:
        self._pool(pool_name).sim.restart()

    def host(self, host_name: str) -> OvsHost:
        return self._pool_of(host_name).hosts[host_name]

    def _pool(self, pool_name: str) -> LabPool:
        try:
            return self.pools[pool_name]
        except KeyError:
            raise LabError(f"no pool {pool_name!r} in the lab; pools: {', '.join(self.pools)}") from None

    def _pool_of(self, host_name: str) -> LabPool:
        for pool in self.pools.values():
            if host_name in pool.hosts:
                return pool
        raise LabError(f"no host {host_name!r} in the lab")

    # --- what scripts and the daemon read ----------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.dir / "sdnctl.toml"

    @property
    def state_path(self) -> Path:
        return self.dir / STATE_FILE

    def master_name(self, pool: LabPool) -> str:
        master_ref = pool.sim.master_ref
        return next(name for name, ref in pool.host_refs.items() if ref == master_ref)

    def url(self, pool: LabPool) -> str:
        return self.host_url(pool.hosts[self.master_name(pool)].address)

    def host_url(self, address: str) -> str:
        return f"https://{address}" + ("" if self.https_port == 443 else f":{self.https_port}")

    def status(self) -> dict:
        """The stable `lab status --json` contract."""
        return {
            "config": str(self.config_path),
            "tag": self.tag,
            "dataplane": self.dataplane,
            "ipsec": self.ipsec.enabled,
            "xcpng": self.xcpng,
            "ha_delay": self.ha_delay,
            "pools": [
                {
                    "name": pool.name,
                    "url": self.url(pool),
                    "username": "root",
                    "password": pool.password,
                    "master": self.master_name(pool),
                    "hosts": [
                        {"uuid": pool.sim.uuid_of(pool.host_refs[name]), "name": name, "address": host.address,
                         "ovsdb": host.ovsdb_unix, "netns": host.netns,
                         **self.ipsec.status(name),
                         "live": pool.sim.is_live(pool.host_refs[name])}
                        for name, host in pool.hosts.items()
                    ],
                }
                for pool in self.pools.values()
            ],
        }

    def read_state(self) -> dict:
        """What `lab status` shows: the state file as last written."""
        return json.loads(self.state_path.read_text())

    def write_state(self) -> None:
        """The state file `lab status` reads; it follows crashes, recoveries and master changes."""
        with self._state_lock:
            if self._serving:
                certs.write_private(self.state_path, json.dumps(self.status(), indent=2) + "\n")

    def write_config(self) -> None:
        """A ready-to-use daemon config for these pools (passwords in 0600 files beside it)."""
        write_daemon_config(self)


class LabAdmin:
    """The `lab.*` verbs a pool's simulator serves on the wire (loopback, no session)."""

    def __init__(self, lab: Lab, pool_name: str):
        self._lab = lab
        self._pool_name = pool_name

    def host_join(self) -> str:
        return self._lab.host_join(self._pool_name)

    def host_eject(self, host_name: str) -> bool:
        self._lab.host_eject(host_name)
        return True

    def host_crash(self, host_name: str, silent: bool = False) -> bool:
        self._lab.host_crash(host_name, silent)
        return True

    def host_recover(self, host_name: str) -> bool:
        self._lab.host_recover(host_name)
        return True

    def host_designate_new_master(self, host_name: str) -> bool:
        self._lab.designate_new_master(host_name)
        return True

    def host_emergency_transition_to_master(self, host_name: str) -> bool:
        self._lab.emergency_transition_to_master(host_name)
        return True

    def vm_create(self, name_label: str, guest_ip: str) -> str:
        """A halted VM whose VIFs carry `guest_ip` (CIDR) in data-plane mode; returns its ref."""
        return self._lab.pools[self._pool_name].sim.create_vm(name_label, guest_ip or None)


def read_state(root: Path = DEFAULT_ROOT, octet: int = 0) -> dict:
    """The state a running lab wrote, or LabError if none runs."""
    path = root / f"sdnlab{octet}" / STATE_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(f"no lab is running ({path} is missing); start one with `sdnctl lab up`") from None


def sweep(workdir: Path, tag: str) -> list[str]:
    """Remove what a lab with this tag left: its processes (by pid file), namespaces and files."""
    left: list[str] = []
    if workdir.is_dir():
        for host_dir in sorted(p for p in workdir.iterdir() if (p / "conf.db").exists()):
            stack = IpsecStack(host_dir, f"{tag}-{host_dir.name}", "")
            if any(stack.pid(proc) for proc in ("ovs-monitor-ipsec", "starter", "charon")):
                left.append(f"{host_dir.name} IPsec")
                stack.stop()
            host = OvsHost(host_dir.name, "", host_dir, tag=tag, dataplane=False, pif_ips={})
            if host.pid("ovsdb-server") or host.pid("ovs-vswitchd"):
                left.append(host_dir.name)
                host.stop()
    left += netns.delete_namespaces_with_prefix(f"{tag}-")
    if silence.remove(tag):
        left.append(f"nftables table inet {tag}")
    shutil.rmtree(workdir, ignore_errors=True)
    return left


def write_daemon_config(lab: Lab) -> None:
    """The lab's daemon config (passwords in 0600 files beside it), where `lab.config_path` says."""
    controller = lab.dir / "controller"
    (controller / "certs").mkdir(parents=True, exist_ok=True)
    (controller / "state").mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by `sdnctl lab up`: the daemon config for this lab's pools.",
        f'cert_dir = "{controller / "certs"}"',
        f'state_dir = "{controller / "state"}"',
        "",
        "[defaults]",
        'topology = "star"',
        'encapsulation = "gre"',
    ]
    for pool in lab.pools.values():
        password_file = lab.dir / f"{pool.name}.password"
        certs.write_private(password_file, pool.password + "\n")
        bundle = lab.dir / f"{pool.name}-hosts.pem"
        certs.write_public(bundle, "".join(h.cert_pem for h in pool.hosts.values()))
        lines += [
            "",
            "[[pool]]",
            f'name = "{pool.name}"',
            f'url = "{lab.url(pool)}"',
            'username = "root"',
            f'password_file = "{password_file}"',
            f'tls_ca_file = "{bundle}"',
        ]
    certs.write_public(lab.config_path, "\n".join(lines) + "\n")
