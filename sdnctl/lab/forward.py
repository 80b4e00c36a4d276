"""TCP forwarding from a host's loopback address into its network namespace (data-plane mode).

In data-plane mode `ovs-vswitchd` lives in the host's namespace, so its OpenFlow listeners
(`pssl:PORT:127.O.P.H`) are out of the controller's reach. The lab listens on the same address
and ports in the root namespace and splices each connection to the listener inside, so the
controller reaches every host the same way in both modes. TLS passes through untouched.

Which ports: whatever vswitchd listens on at that address inside the namespace, as its
`/proc/net/tcp` shows, followed every MIRROR_INTERVAL, so a host may have any number of
controlled bridges (each gets its own OpenFlow port).
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading


CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
CHUNK = 65536
MIRROR_INTERVAL = 0.2    # seconds between looks at the namespace's listening sockets
TCP_LISTEN = "0A"


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


class _InNamespace:
    """This thread inside `netns` for the `with` block (it comes back on exit)."""

    def __init__(self, netns: str):
        self.netns = netns

    def __enter__(self) -> None:
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
        try:
            _setns(target)
        except OSError:
            os.close(self._home)
            raise
        finally:
            os.close(target)

    def __exit__(self, *exc) -> None:
        try:
            _setns(self._home)
        finally:
            os.close(self._home)


def connect_in_namespace(netns: str, address: tuple[str, int], timeout: float = 5.0) -> socket.socket:
    """A TCP connection made from inside `netns`."""
    with _InNamespace(netns):
        return socket.create_connection(address, timeout=timeout)


def listening_ports(netns: str, address: str) -> set[int]:
    """The TCP ports something listens on at `address` (IPv4) inside `netns`."""
    want = socket.inet_aton(address)[::-1].hex().upper()   # /proc/net/tcp: little-endian hex
    with _InNamespace(netns):
        with open("/proc/thread-self/net/tcp") as table:
            rows = table.read().splitlines()[1:]
    ports = set()
    for row in rows:
        local, state = row.split()[1], row.split()[3]
        host, port = local.split(":")
        if state == TCP_LISTEN and host == want:
            ports.add(int(port, 16))
    return ports


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class NamespaceForwarder:
    """Listens in the root namespace on (address, every port vswitchd listens on at that address
    inside `netns`); each connection goes to the same (address, port) inside."""

    def __init__(self, netns: str, address: str):
        self.netns = netns
        self.address = address
        self._listeners: dict[int, socket.socket] = {}
        self._lock = threading.Lock()      # the mirror thread and stop() both change _listeners
        self._stopped = threading.Event()

    @property
    def ports(self) -> set[int]:
        return set(self._listeners)

    def start(self) -> None:
        threading.Thread(target=self._mirror, daemon=True, name=f"forward-{self.netns}").start()

    def _mirror(self) -> None:
        while not self._stopped.wait(MIRROR_INTERVAL):
            try:
                wanted = listening_ports(self.netns, self.address)
            except OSError:
                continue        # the namespace is being torn down or rebuilt
            with self._lock:
                if not self._stopped.is_set():
                    self._follow(wanted)

    def _follow(self, wanted: set[int]) -> None:
        for port in sorted(set(self._listeners) - wanted):
            self._close(self._listeners.pop(port))
        for port in sorted(wanted - set(self._listeners)):
            try:
                listener = socket.create_server((self.address, port), reuse_port=False)
            except OSError:
                continue    # tried again on the next look
            self._listeners[port] = listener
            threading.Thread(target=self._accept, args=(listener, port), daemon=True,
                             name=f"forward-{self.netns}-{port}").start()

    def _accept(self, listener: socket.socket, port: int) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._splice, args=(client, port), daemon=True).start()

    def _splice(self, client: socket.socket, port: int) -> None:
        try:
            inside = connect_in_namespace(self.netns, (self.address, port))
        except OSError:
            client.close()
            return
        inside.settimeout(None)
        threading.Thread(target=_pump, args=(client, inside), daemon=True).start()
        _pump(inside, client)
        client.close()
        inside.close()

    @staticmethod
    def _close(listener: socket.socket) -> None:
        try:
            listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        listener.close()

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            for listener in self._listeners.values():
                self._close(listener)
            self._listeners.clear()
