"""Flow drift: how fast a flow deleted by hand comes back, and what watching for drift costs when idle.

On one lab host (real ovsdb-server + ovs-vswitchd) with B dummy bridges, each its own `pssl:` listener,
a FlowChannel holds F sdnctl flows per bridge; its on_drift re-syncs the bridge (what the daemon does):
- repair: `ovs-ofctl del-flows` of every sdnctl flow on one bridge, then `ovs-ofctl dump-flows` every
  ~5 ms until all F are back; the time from the del-flows call's return to the first full read-back;
- idle: the process's CPU time over an idle window with every bridge connected and monitored, next to
  a no-op sync (dump + diff) per bridge, which is what the fallback (a switch refusing the monitor)
  costs every POLL_INTERVAL.
Run as root: .venv/bin/python bench/flow_drift.py [--rounds R] [--bridges B] [--flows F] [--idle S]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from benchcerts import bench_certs
from sdnctl.core.model import COOKIE_MASK, SDNCTL_COOKIE, FlowSpec
from sdnctl.lab.ovshost import OvsHost
from sdnctl.openflow import FlowChannel, runtime
from sdnctl.openflow import channel as channel_module

ROOT = Path("/run/sdnctl-drift-bench")
ADDRESS = "127.89.0.1"       # lab octet 89: kept for manual experiments
OF_PORT = 16700


def desired(n: int) -> frozenset[FlowSpec]:
    return frozenset(FlowSpec(priority=1000, action="drop",
                              match=(("eth_type", 0x0800), ("in_port", 1), ("ip_proto", 6), ("tcp_dst", 1 + i)))
                     for i in range(n))


def ofctl(*args: str) -> str:
    return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args], capture_output=True, text=True,
                          timeout=30, check=True).stdout


def sdnctl_flow_count(host: OvsHost, bridge: str) -> int:
    out = ofctl("dump-flows", "--no-stats", host.mgmt(bridge), f"cookie={SDNCTL_COOKIE:#x}/{COOKIE_MASK:#x}")
    return sum(1 for line in out.splitlines() if line.startswith(" "))


def start_host(workdir: Path, ca_path: Path, bridges: int) -> OvsHost:
    host = OvsHost("drift", ADDRESS, workdir / "host", tag="driftbench", dataplane=False, pif_ips={})
    host.start()
    host.vsctl("set-ssl", str(host.key_path), str(host.cert_path), str(ca_path))
    for b in range(bridges):
        host.vsctl("--may-exist", "add-br", f"br-d{b}", "--", "set", "bridge", f"br-d{b}", "datapath_type=dummy",
                   "fail_mode=standalone")
        host.vsctl("set-controller", f"br-d{b}", f"pssl:{OF_PORT + b}:{ADDRESS}")
    return host


async def connect_all(channel: FlowChannel, host: OvsHost, bridges: int, flows: frozenset[FlowSpec]) -> None:
    for b in range(bridges):
        await channel.ensure(f"bench/br-d{b}", host.address, OF_PORT + b, host.cert_pem)
    deadline = time.monotonic() + 30
    while not all(channel.connected(f"bench/br-d{b}") for b in range(bridges)):
        if time.monotonic() > deadline:
            raise SystemExit("bench: the bridges did not all connect within 30 s")
        await asyncio.sleep(0.02)
    for b in range(bridges):
        await channel.sync(f"bench/br-d{b}", flows)


async def repair_times(channel: FlowChannel, host: OvsHost, flows: frozenset[FlowSpec], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        syncs_before = channel.drift_reports["bench/br-d0"]
        await asyncio.to_thread(ofctl, "del-flows", host.mgmt("br-d0"), f"cookie={SDNCTL_COOKIE:#x}/{COOKIE_MASK:#x}")
        started = time.perf_counter()
        while await asyncio.to_thread(sdnctl_flow_count, host, "br-d0") != len(flows):
            if time.perf_counter() - started > 30:
                raise SystemExit("bench: the flows did not come back within 30 s")
            await asyncio.sleep(0.005)
        times.append(time.perf_counter() - started)
        assert channel.drift_reports["bench/br-d0"] > syncs_before
        await asyncio.sleep(channel_module.DRIFT_HOLDOFF)   # past the hold-off: each round is a fresh drift
    return times


async def idle_cpu(seconds: float) -> float:
    before = time.process_time()
    await asyncio.sleep(seconds)
    return time.process_time() - before


async def noop_sync(channel: FlowChannel, bridges: int, flows: frozenset[FlowSpec]) -> float:
    before = time.process_time()
    for b in range(bridges):
        assert await channel.sync(f"bench/br-d{b}", flows) == (0, 0)
    return (time.process_time() - before) / bridges


async def run(opts, host: OvsHost, client: tuple[str, str]) -> None:
    channel = FlowChannel(*client)
    flows = desired(opts.flows)
    channel.on_drift = lambda key: asyncio.get_running_loop().create_task(channel.sync(key, flows))
    channel.start()
    try:
        await connect_all(channel, host, opts.bridges, flows)
        times = await repair_times(channel, host, flows, opts.rounds)
        print(f"repair (del-flows of {opts.flows} -> all back): median {statistics.median(times) * 1000:.1f} ms  "
              f"min {min(times) * 1000:.1f}  max {max(times) * 1000:.1f}  (n={len(times)})")
        reports = sum(channel.drift_reports.values())
        cpu = await idle_cpu(opts.idle)
        assert sum(channel.drift_reports.values()) == reports, "drift reported while idle"
        print(f"idle, {opts.bridges} bridges monitored: {cpu * 1000:.0f} ms CPU in {opts.idle:.0f} s "
              f"= {cpu / opts.idle * 100:.3f}% of a core (the runtime's tick and keepalive included)")
        per_sync = await noop_sync(channel, opts.bridges, flows)
        print(f"no-op sync (dump {opts.flows} + diff): {per_sync * 1000:.2f} ms CPU per bridge; polled every "
              f"{runtime.POLL_INTERVAL * 0.9:.1f} s on average that is {per_sync / (runtime.POLL_INTERVAL * 0.9) * 100:.3f}%"
              f" of a core per bridge")
    finally:
        channel.stop()


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--rounds", type=int, default=7)
    args.add_argument("--bridges", type=int, default=10)
    args.add_argument("--flows", type=int, default=50)
    args.add_argument("--idle", type=float, default=30.0)
    opts = args.parse_args()
    workdir = ROOT / str(os.getpid())
    ca_path, client_cert, client_key = bench_certs(workdir)
    host = start_host(workdir, ca_path, opts.bridges)
    try:
        asyncio.run(run(opts, host, (str(client_cert), str(client_key))))
    finally:
        host.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
