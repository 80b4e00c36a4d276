"""Fixtures of the simulator tests: pools on fresh loopback subnets, and real OVS hosts; all stopped after."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from sdnctl.lab.ovshost import OvsHost
from sdnctl.lab.xapi import PoolSimulator
from tests.lab.simpool import HTTP_PORT, HTTPS_PORT, PASSWORD, SimPool, next_subnet


@pytest.fixture
def make_sim_pool() -> Callable[..., SimPool]:
    """Start pools on fresh loopback subnets (127.77.N / 127.78.N with switches); stop them all after."""
    started: list[PoolSimulator] = []

    def make(host_count: int = 2, *, eth1: bool = True, backends: list[OvsHost] | None = None,
             subnet: str | None = None, admin: object | None = None) -> SimPool:
        subnet = subnet or f"127.77.{next_subnet()}"
        sim = PoolSimulator(f"pool-{subnet}", password=PASSWORD, http_port=HTTP_PORT, https_port=HTTPS_PORT,
                            admin=admin)
        started.append(sim)
        pool = SimPool(sim, [], [], subnet)
        for h in range(1, host_count + 1):
            pool.join(backends[h - 1] if backends else None, eth1_configured=eth1)
        sim.start()
        return pool

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def sim_pool(make_sim_pool) -> SimPool:
    return make_sim_pool()


@pytest.fixture
def ovs_hosts() -> Callable[[str, str], OvsHost]:
    """Start real OVS hosts (ovsdb-server + ovs-vswitchd); each is stopped by pid in a finally."""
    workdir = Path(tempfile.mkdtemp(prefix="simovs", dir="/tmp"))    # short: unix socket paths are bounded
    started: list[OvsHost] = []

    def start(name: str, address: str) -> OvsHost:
        host = OvsHost(name, address, workdir / name, tag="simtest", dataplane=False,
                       pif_ips={"eth0": address, "eth1": None})
        started.append(host)
        host.start()
        return host

    try:
        yield start
    finally:
        for host in started:
            host.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        assert not [h.name for h in started if h.pid("ovsdb-server") or h.pid("ovs-vswitchd")]
