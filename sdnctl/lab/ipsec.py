"""A lab host's IPsec stack: Debian's `ovs-monitor-ipsec` and strongSwan, as the XCP-ng guide runs them.

On a real host the guide has the operator enable `ipsec` (strongSwan's starter and charon) and
`openvswitch-ipsec` (`ovs-monitor-ipsec --ike-daemon=strongswan`, watching the local OVSDB). Here each
data-plane host gets its own copy of both, inside the host's network namespace, watching that host's
ovsdb-server over its unix socket:

- `ovs-monitor-ipsec --root-prefix=<ipsec>/root` writes `<root>/etc/ipsec.conf`, `ipsec.secrets` and
  `strongswan.d/ovs.conf`, and runs `<root>/usr/sbin/ipsec`, a wrapper that points strongSwan at this
  host's `strongswan.conf` (STRONGSWAN_CONF) and runs Debian's `ipsec`.
- strongSwan hard-codes `/var/run/charon.pid`, `/var/run/starter.charon.pid` and `/etc/ipsec.secrets`,
  so the monitor starts in a mount namespace of its own (the one `ip netns exec` makes) where this host's
  `<ipsec>/var` is bound over `/var` and its files over `/etc/ipsec.conf` and `/etc/ipsec.secrets`.
  starter and charon, its children, inherit it. `/run` stays shared, so OVSDB's socket is reachable.
- charon's stroke and vici sockets are in `<ipsec>/`, so `swanctl --uri` reaches them from anywhere.
- Every file under `<ipsec>` is made with umask 077: the secrets file holds the PSKs sdnctl wrote.

The netdev datapath builds tunnel packets in userspace and sends them past the kernel's xfrm layer, so
nothing would ever hit charon's trap policies (`auto=route`). The `Trigger` stands in for the first packet
a kernel datapath would send down a tunnel: it sends kernel-stack GRE (and UDP to 4789) probes to every
peer in this host's ipsec.conf, which the trap policies turn into an ACQUIRE and so an IKE negotiation.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

from sdnctl.errors import LabError
from sdnctl.lab.netns import run

MONITOR = Path("/usr/share/openvswitch/scripts/ovs-monitor-ipsec")
IPSEC = Path("/usr/sbin/ipsec")
SWANCTL = Path("/usr/sbin/swanctl")
STOP_TIMEOUT = 5.0
START_TIMEOUT = 15.0
TRIGGER_INTERVAL = 0.25
ACQUIRE_EXPIRES = 3       # seconds a larval SA blocks the next IKE attempt (see _strongswan_conf)
PROBE = b"sdnctl lab: IKE trigger, as a kernel datapath's first tunnel packet"
CLONE_NEWNET = 0x40000000
PROCS = ("ovs-monitor-ipsec", "starter", "charon")


def available() -> bool:
    """Whether Debian's openvswitch-ipsec, strongSwan and swanctl are installed (scripts/bootstrap.sh)."""
    return MONITOR.exists() and IPSEC.exists() and SWANCTL.exists()


class IpsecStack:
    """One host's ovs-monitor-ipsec + strongSwan, in its namespace, found and stopped by pid file."""

    def __init__(self, host_dir: Path, netns: str, ovsdb_unix: str):
        self.dir = host_dir / "ipsec"
        self.netns = netns
        self.ovsdb_unix = ovsdb_unix
        self.root = self.dir / "root"
        self.var = self.dir / "var"
        self.conf = self.root / "etc" / "ipsec.conf"
        self.secrets = self.root / "etc" / "ipsec.secrets"
        self.strongswan_conf = self.root / "etc" / "strongswan.conf"
        self.vici = f"unix://{self.dir / 'charon.vici'}"
        self.charon_log = self.dir / "charon.log"
        self.monitor_log = self.dir / "ovs-monitor-ipsec.log"

    # --- files ---------------------------------------------------------------------------
    def _pidfile(self, proc: str) -> Path:
        return self.dir / "ovs-monitor-ipsec.pid" if proc == "ovs-monitor-ipsec" else \
            self.var / "run" / ("starter.charon.pid" if proc == "starter" else "charon.pid")

    def _write_files(self) -> None:
        old = os.umask(0o077)
        try:
            for d in (self.dir, self.root / "etc" / "strongswan.d", self.root / "usr" / "sbin", self.root / "sbin",
                      self.var / "run", self.var / "tmp"):
                d.mkdir(parents=True, exist_ok=True)
            os.chmod(self.dir, 0o700)
            for f in (self.conf, self.secrets):
                f.touch()
                os.chmod(f, 0o600)
            self.strongswan_conf.write_text(self._strongswan_conf())
            wrapper = self.root / "usr" / "sbin" / "ipsec"
            wrapper.write_text(f"#!/bin/sh\n# strongSwan for this lab host only\n"
                               f"export STRONGSWAN_CONF={self.strongswan_conf}\nexec {IPSEC} \"$@\"\n")
            os.chmod(wrapper, 0o700)
            ip = self.root / "sbin" / "ip"
            if not ip.is_symlink():
                ip.symlink_to("/sbin/ip")
        finally:
            os.umask(old)

    def _strongswan_conf(self) -> str:
        return f"""# Written by the sdnctl lab: this host's strongSwan only.
charon {{
  load_modular = yes
  plugins {{
    include /etc/strongswan.d/charon/*.conf
    kernel-netlink {{
      # A kernel without ESP keeps the larval SA of a failed CHILD SA until this expires (strongSwan's
      # default is 165 s), and no new ACQUIRE, so no new IKE attempt, comes before. (ovs-monitor-ipsec's
      # ovs.conf means to set it to 10 but spells it xfrm_ack_expires.)
      xfrm_acq_expires = {ACQUIRE_EXPIRES}
    }}
    stroke {{
      socket = unix://{self.dir / 'charon.ctl'}
    }}
    vici {{
      socket = {self.vici}
    }}
  }}
  filelog {{
    lab {{
      path = {self.charon_log}
      time_format = %Y-%m-%dT%H:%M:%S
      time_add_ms = yes
      default = 1
      flush_line = yes
    }}
  }}
  syslog {{
    daemon {{
      default = -1
    }}
  }}
}}
swanctl {{
  socket = {self.vici}
}}
include {self.root}/etc/strongswan.d/*.conf
"""

    # --- processes ------------------------------------------------------------------------
    def pid(self, proc: str) -> int | None:
        """The pid of this host's live `proc` (ovs-monitor-ipsec, starter or charon), from its pid file."""
        try:
            pid = int(self._pidfile(proc).read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        if proc not in cmdline.decode(errors="replace"):
            return None
        # starter and charon carry no path of ours: they are ours if they share the monitor's namespaces.
        return pid if proc == "ovs-monitor-ipsec" or self._ours(pid) else None

    def _ours(self, pid: int) -> bool:
        try:
            return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{self.netns}").st_ino
        except OSError:
            return False

    @property
    def running(self) -> bool:
        return all(self.pid(p) for p in PROCS)

    def start(self) -> None:
        """Start the monitor (which restarts strongSwan, its child) and wait for charon's vici socket."""
        if not available():
            raise LabError("IPsec in the lab needs openvswitch-ipsec, strongswan and strongswan-swanctl "
                           "(scripts/bootstrap.sh installs them)")
        self._write_files()
        script = ("umask 077 && mount --bind {var} /var && mount --bind {conf} /etc/ipsec.conf && "
                  "mount --bind {secrets} /etc/ipsec.secrets && exec {monitor} --root-prefix={root} "
                  "--ike-daemon=strongswan --pidfile={pid} --detach --no-chdir --log-file={log} {db}").format(
            var=self.var, conf=self.conf, secrets=self.secrets, monitor=MONITOR, root=self.root,
            pid=self._pidfile("ovs-monitor-ipsec"), log=self.monitor_log, db=self.ovsdb_unix)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "STRONGSWAN_CONF": str(self.strongswan_conf), "TZ": "UTC",
               "OVS_RUNDIR": str(self.dir)}         # its unixctl socket: ovs-monitor-ipsec.<pid>.ctl
        run(["sh", "-c", script], netns=self.netns, env=env, timeout=START_TIMEOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while not (self.running and (self.dir / "charon.vici").exists()):
            if time.monotonic() > deadline:
                raise LabError(f"{self.netns}: strongSwan did not start in {START_TIMEOUT}s; see {self.charon_log}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """The monitor, then starter, then charon, by pid: `sig`, then KILL after a bounded wait."""
        for proc in PROCS:
            pid = self.pid(proc)
            if pid:
                _signal(pid, sig)
                deadline = time.monotonic() + STOP_TIMEOUT
                while self.pid(proc) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if self.pid(proc):
                    _signal(pid, signal.SIGKILL)
        for proc in PROCS:                  # whatever outlived a TERM to its parent
            pid = self.pid(proc)
            if pid:
                _signal(pid, signal.SIGKILL)

    def crash(self) -> None:
        self.stop(signal.SIGKILL)

    # --- what tests and operators read --------------------------------------------------
    def swanctl(self, *args: str) -> str:
        """`swanctl ARGS` in the host's namespace, against this host's charon."""
        return run([str(SWANCTL), *args, "--uri", self.vici], netns=self.netns).stdout

    def peers(self) -> set[tuple[str, str]]:
        """(protocol, remote address) of every connection ovs-monitor-ipsec configured: gre or udp."""
        try:
            text = self.conf.read_text()
        except OSError:
            return set()
        found = set()
        for block in text.split("\nconn ")[1:]:
            right = re.search(r"^\s*right=(\S+)", block, re.M)
            proto = re.search(r"^\s*leftprotoport=(gre|udp)", block, re.M)
            if right and proto and not block.startswith("prevent_unencrypted"):
                found.add((proto.group(1), right.group(1)))
        return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def netns_socket(netns: str, family: int, kind: int, proto: int) -> socket.socket:
    """A socket created inside `netns` (setns in a short-lived thread; the socket stays in that namespace)."""
    result: list[socket.socket | BaseException] = []

    def make() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            with open(f"/run/netns/{netns}") as target:
                if libc.setns(target.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns}")
            result.append(socket.socket(family, kind, proto))
        except BaseException as exc:  # handed to the caller
            result.append(exc)
        # The thread ends here, and its namespace with it: no other thread's namespace changed.

    thread = threading.Thread(target=make, name=f"setns {netns}")
    thread.start()
    thread.join()
    if isinstance(result[0], BaseException):
        raise LabError(f"no socket in {netns}: {result[0]}")
    return result[0]


class Trigger:
    """Kernel-stack probes to every IPsec peer of each registered host, standing in for the kernel datapath.

    A GRE probe (IP protocol 47) for a GRE connection, a UDP datagram to port 4789 for VXLAN. They leave
    through the host's kernel stack, so the trap policy starts IKE; once a CHILD SA is installed they leave
    as ESP. Payload is a fixed, public string.
    """

    def __init__(self) -> None:
        self._hosts: dict[str, tuple[IpsecStack, socket.socket, socket.socket]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, stack: IpsecStack) -> None:
        gre = netns_socket(stack.netns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
        udp = netns_socket(stack.netns, socket.AF_INET, socket.SOCK_DGRAM, 0)
        for s in (gre, udp):
            s.setblocking(False)
        with self._lock:
            self.remove(stack.netns)
            self._hosts[stack.netns] = (stack, gre, udp)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="lab ipsec trigger", daemon=True)
            self._thread.start()

    def remove(self, netns: str) -> None:
        entry = self._hosts.pop(netns, None)
        if entry:
            entry[1].close()
            entry[2].close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            for netns in list(self._hosts):
                self.remove(netns)

    def _loop(self) -> None:
        while not self._stop.wait(TRIGGER_INTERVAL):
            with self._lock:
                for stack, gre, udp in self._hosts.values():
                    for proto, remote in stack.peers():
                        try:
                            if proto == "gre":
                                # GRE header: no flags, protocol type 0x88b5 (local experimental).
                                gre.sendto(b"\x00\x00\x88\xb5" + PROBE, (remote, 0))
                            else:
                                udp.sendto(PROBE, (remote, 4789))
                        except OSError:
                            pass            # no route yet, or the acquire is pending: next round


class LabIpsec:
    """The lab's IPsec stacks by host name, and the one trigger thread that serves them all.
    Disabled (`Lab(ipsec=False)`), every verb does nothing: data-plane labs without IPsec pay nothing."""

    def __init__(self, *, enabled: bool, dataplane: bool = True) -> None:
        if enabled and not dataplane:
            raise LabError("IPsec in the lab needs the data plane (--netns): strongSwan runs in each host's namespace")
        self.enabled = enabled
        self.stacks: dict[str, IpsecStack] = {}
        self._trigger = Trigger()

    def start(self, name: str, host_dir: Path, netns: str | None, ovsdb_unix: str) -> IpsecStack | None:
        """The host's ovs-monitor-ipsec and strongSwan, as `systemctl start ipsec openvswitch-ipsec` on it."""
        if not self.enabled:
            return None
        if netns is None:
            raise LabError(f"{name}: IPsec needs the host's namespace (data-plane mode)")
        stack = self.stacks.get(name) or IpsecStack(host_dir, netns, ovsdb_unix)
        self.stacks[name] = stack
        stack.start()
        self._trigger.add(stack)
        return stack

    def stop(self, name: str, *, crash: bool = False, forget: bool = False) -> None:
        """Stop a host's stack (KILL at once if `crash`); `forget` it when the host leaves the pool."""
        stack = self.stacks.pop(name, None) if forget else self.stacks.get(name)
        if stack is not None:
            self._trigger.remove(stack.netns)
            stack.crash() if crash else stack.stop()

    def recover(self, name: str) -> None:
        """A host boots again: its IPsec services start again (they are enabled on a real host)."""
        stack = self.stacks.get(name)
        if stack is not None and not stack.running:
            stack.start()
            self._trigger.add(stack)

    def stop_all(self) -> None:
        self._trigger.stop()
        for stack in self.stacks.values():
            stack.stop()

    def status(self, name: str) -> dict:
        """Extra keys for a host in `lab status --json`."""
        stack = self.stacks.get(name)
        return {"ipsec_vici": stack.vici, "ipsec_dir": str(stack.dir)} if stack else {}


def kernel_has_esp(netns: str) -> bool:
    """Whether this kernel can hold an ESP SA (esp4): add and delete one on TEST-NET addresses in `netns`."""
    state = ["src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp", "spi", "0x5d1c0001"]
    added = run(["ip", "-n", netns, "xfrm", "state", "add", *state, "mode", "transport",
                 "aead", "rfc4106(gcm(aes))", "0x" + "11" * 36, "128"], check=False)
    run(["ip", "-n", netns, "xfrm", "state", "delete", *state[:-2], "spi", state[-1]], check=False)
    return added.returncode == 0
