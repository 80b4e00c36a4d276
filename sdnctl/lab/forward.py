"""TCP forwarding from a host's loopback address into its network namespace (data-plane mode).

In data-plane mode `ovs-vswitchd` lives in the host's namespace, so its OpenFlow listeners
(`pssl:PORT:127.O.P.H`) are out of the controller's reach. The lab listens on the same address
and ports in the root namespace and splices each connection to the listener inside, so the
controller reaches every host the same way in both modes. TLS passes through untouched.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading

from sdnctl.errors import LabError

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
CHUNK = 65536


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


def connect_in_namespace(netns: str, address: tuple[str, int], timeout: float = 5.0) -> socket.socket:
    """A TCP connection made from inside `netns` (this thread enters it and comes back)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            return socket.create_connection(address, timeout=timeout)
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


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
    """Listens on (address, each port) in the root namespace; each connection goes to the same
    (address, port) inside `netns`."""

    def __init__(self, netns: str, address: str, ports: range):
        self.netns = netns
        self.address = address
        self.ports = ports
        self._listeners: list[socket.socket] = []
        self._stopped = threading.Event()

    def start(self) -> None:
        try:
            for port in self.ports:
                listener = socket.create_server((self.address, port), reuse_port=False)
                self._listeners.append(listener)
                threading.Thread(target=self._accept, args=(listener, port), daemon=True,
                                 name=f"forward-{self.netns}-{port}").start()
        except OSError as exc:
            self.stop()
            raise LabError(f"cannot forward {self.address}:{port} into {self.netns}: {exc}") from exc

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

    def stop(self) -> None:
        self._stopped.set()
        for listener in self._listeners:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        self._listeners.clear()
