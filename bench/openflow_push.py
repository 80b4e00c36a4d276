"""Pushing 1,000 flows to one bridge: FlowChannel.sync (barrier-confirmed) vs `ovs-ofctl add-flows`.

Per round, on one dummy bridge of a lab host (real ovsdb-server + ovs-vswitchd):
- `sync` of N new flows onto a bridge holding none of them (dump, N ADDs, barrier);
- a no-op re-sync of the same set (dump and diff only);
- `sync` to the empty set (N cookie-limited DELETE_STRICTs, barrier);
- `ovs-ofctl -O OpenFlow13 add-flows` of the same N flows from a file (process start included),
  then a sync that must find nothing to do: the file and the FlowSpecs describe the same flows.
Run as root: .venv/bin/python bench/openflow_push.py [--flows N] [--rounds R]
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
from sdnctl.lab.ovshost import OvsHost
from sdnctl.core.model import COOKIE_MASK, SDNCTL_COOKIE, FlowSpec
from sdnctl.openflow import FlowChannel

ROOT = Path("/run/sdnctl-ofc-bench")
ADDRESS = "127.77.10.1"
OF_PORT = 16653
BRIDGE = "br-bench"
KEY = f"bench/{BRIDGE}"
CONNECT_TIMEOUT = 15.0
SYNC_TIMEOUT = 60.0


def bench_flows(n: int) -> frozenset[FlowSpec]:
    """N distinct flows like the rules compile to: per VIF port, allow or drop a TCP port."""
    return frozenset(
        FlowSpec(priority=1000 + i % 7,
                 match=(("eth_type", 0x0800), ("in_port", 1 + i // 100), ("ip_proto", 6), ("tcp_dst", 1 + i)),
                 action="drop" if i % 2 else "normal")
        for i in range(n))


OFCTL_FIELDS = {"eth_type": "dl_type", "in_port": "in_port", "ip_proto": "nw_proto", "tcp_dst": "tcp_dst",
                "udp_dst": "udp_dst", "ipv4_src": "nw_src", "ipv4_dst": "nw_dst"}


def ofctl_line(spec: FlowSpec) -> str:
    """The flow in ovs-ofctl's syntax, e.g. `cookie=0x5dc1...,priority=1000,dl_type=0x0800,...,actions=drop`."""
    fields = [f"cookie={spec.cookie:#x}", f"priority={spec.priority}"]
    for name, value in spec.match:
        if isinstance(value, tuple):
            value = f"{value[0]}/{value[1]}"
        elif name == "eth_type":
            value = f"{value:#06x}"
        fields.append(f"{OFCTL_FIELDS[name]}={value}")
    fields.append("actions=NORMAL" if spec.action == "normal" else "actions=drop")
    return ",".join(fields)


def ofctl(*args: str) -> str:
    return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args], capture_output=True, text=True,
                          timeout=60, check=True).stdout


def sdnctl_flow_count(host: OvsHost) -> int:
    out = ofctl("dump-flows", "--no-stats", host.mgmt(BRIDGE), f"cookie={SDNCTL_COOKIE:#x}/{COOKIE_MASK:#x}")
    return sum(1 for line in out.splitlines() if line.startswith(" "))


def start_host(workdir: Path, ca_path: Path) -> OvsHost:
    host = OvsHost("bench", ADDRESS, workdir / "host", tag="ofbench", dataplane=False, pif_ips={})
    host.start()
    host.vsctl("set-ssl", str(host.key_path), str(host.cert_path), str(ca_path))
    host.vsctl("--may-exist", "add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=dummy",
               "protocols=OpenFlow13", "fail_mode=standalone")
    host.vsctl("set-controller", BRIDGE, f"pssl:{OF_PORT}:{ADDRESS}")
    return host


async def run(host: OvsHost, client_cert: Path, client_key: Path, flows: frozenset[FlowSpec], rounds: int,
              flow_file: Path) -> dict[str, list[float]]:
    channel = FlowChannel(str(client_cert), str(client_key))
    channel.start()
    times: dict[str, list[float]] = {k: [] for k in ("sync add", "sync no-op", "sync delete", "ofctl add-flows",
                                                     "sync no-op after ofctl")}
    try:
        started = time.perf_counter()
        await channel.ensure(KEY, host.address, OF_PORT, host.cert_pem)
        while not channel.connected(KEY):
            if time.perf_counter() - started > CONNECT_TIMEOUT:
                raise SystemExit(f"bench: not connected after {CONNECT_TIMEOUT}s: {channel.error(KEY)}")
            await asyncio.sleep(0.01)
        print(f"connected (TCP + TLS + HELLO + FEATURES) in {(time.perf_counter() - started) * 1000:.1f} ms")
        await channel.sync(KEY, frozenset(), timeout=SYNC_TIMEOUT)
        n = len(flows)
        for _ in range(rounds):
            t = time.perf_counter()
            assert await channel.sync(KEY, flows, timeout=SYNC_TIMEOUT) == (n, 0)
            times["sync add"].append(time.perf_counter() - t)
            assert sdnctl_flow_count(host) == n

            t = time.perf_counter()
            assert await channel.sync(KEY, flows, timeout=SYNC_TIMEOUT) == (0, 0)
            times["sync no-op"].append(time.perf_counter() - t)

            t = time.perf_counter()
            assert await channel.sync(KEY, frozenset(), timeout=SYNC_TIMEOUT) == (0, n)
            times["sync delete"].append(time.perf_counter() - t)
            assert sdnctl_flow_count(host) == 0

            t = time.perf_counter()
            ofctl("add-flows", host.mgmt(BRIDGE), str(flow_file))
            times["ofctl add-flows"].append(time.perf_counter() - t)
            assert sdnctl_flow_count(host) == n

            t = time.perf_counter()
            assert await channel.sync(KEY, flows, timeout=SYNC_TIMEOUT) == (0, 0), "ofctl file != FlowSpecs"
            times["sync no-op after ofctl"].append(time.perf_counter() - t)
            await channel.sync(KEY, frozenset(), timeout=SYNC_TIMEOUT)
    finally:
        channel.stop()
    return times


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--flows", type=int, default=1000)
    args.add_argument("--rounds", type=int, default=5)
    opts = args.parse_args()

    workdir = ROOT / str(os.getpid())
    ca_path, client_cert, client_key = bench_certs(workdir)
    flows = bench_flows(opts.flows)
    flow_file = workdir / "flows.txt"
    flow_file.write_text("".join(ofctl_line(f) + "\n" for f in sorted(flows, key=lambda f: f.match)))

    host = None
    try:
        host = start_host(workdir, ca_path)
        times = asyncio.run(run(host, client_cert, client_key, flows, opts.rounds, flow_file))
    finally:
        if host is not None:
            host.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"{opts.flows} flows, {opts.rounds} rounds, one dummy bridge (ms: median / min / max)")
    for name, values in times.items():
        ms = [v * 1000 for v in values]
        print(f"  {name:<24} {statistics.median(ms):8.1f} {min(ms):8.1f} {max(ms):8.1f}")


if __name__ == "__main__":
    main()
