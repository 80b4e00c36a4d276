"""A simulated pool on its own loopback subnet, as the simulator tests drive it with the real XenAPI client."""

from __future__ import annotations

import dataclasses
import itertools

import XenAPI

from sdnctl.lab.ovshost import OvsHost
from sdnctl.lab.xapi import PoolSimulator

HTTP_PORT, HTTPS_PORT = 18080, 18443
PASSWORD = "sim-secret"
_subnets = itertools.count(1)


def next_subnet() -> int:
    """A loopback subnet number no other pool of this test run has used."""
    return next(_subnets)


@dataclasses.dataclass
class SimPool:
    sim: PoolSimulator
    hosts: list[str]
    addresses: list[str]
    subnet: str

    def url(self, index: int = 0) -> str:
        return f"http://{self.addresses[index]}:{HTTP_PORT}/"

    def login(self, index: int = 0) -> XenAPI.Session:
        session = XenAPI.Session(self.url(index))
        session.login_with_password("root", PASSWORD, "1.0", "test")
        return session

    def join(self, backend: OvsHost | None = None, *, eth1_configured: bool = True) -> str:
        """Add host H at `<subnet>.H`, its eth1 at 10.<second octet>.99.H (or without IP)."""
        h = len(self.addresses) + 1
        address = f"{self.subnet}.{h}"
        self.addresses.append(address)
        eth1 = f"10.{self.subnet.split('.')[1]}.99.{h}" if eth1_configured else None
        ref = self.sim.add_host(backend, name=f"h{h}", address=address, pifs={"eth1": eth1})
        self.hosts.append(ref)
        return ref
