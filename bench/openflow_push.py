"""Pushing 1,000 and 10,000 flows to one bridge: FlowChannel.sync (barrier-confirmed) vs `ovs-ofctl add-flows`.

Per flow count N and round, on one dummy bridge of a lab host (real ovsdb-server + ovs-vswitchd):
- `sync` of N new flows onto a bridge holding none of them (dump, N ADDs, one barrier), over mutual TLS;
- a no-op re-sync of the same set (dump and diff only);
- `sync` to the empty set (N cookie-limited DELETE_STRICTs, barrier);
- `ovs-ofctl -O OpenFlow13 add-flows` of the same N flows from a file, over the bridge's unix socket
  (process start included; ovs-ofctl waits for a barrier after every flow-mod), then a sync that must
  find nothing to do: the file and the FlowSpecs describe the same flows.
Prints median and min-max per N; saves docs/bench/openflow_push.csv (every round) and .png (flows/s vs N).
Run as root: .venv/bin/python bench/openflow_push.py [--flows N ...] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Awaitable
from pathlib import Path

import report
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
OFCTL_TIMEOUT = 120.0

SYNC_ADD = "sdnctl sync add"
SYNC_NOOP = "sdnctl sync no-op"
SYNC_DELETE = "sdnctl sync delete"
OFCTL_ADD = "ovs-ofctl add-flows"
PUSHES = (SYNC_ADD, SYNC_DELETE, OFCTL_ADD)    # the methods that change N flows: plotted in flows/s


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


def write_flow_file(path: Path, flows: frozenset[FlowSpec]) -> Path:
    path.write_text("".join(ofctl_line(f) + "\n" for f in sorted(flows, key=lambda f: f.match)))
    return path


def ofctl(*args: str) -> str:
    return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args], capture_output=True, text=True,
                          timeout=OFCTL_TIMEOUT, check=True).stdout


def sdnctl_flow_count(host: OvsHost) -> int:
    out = ofctl("dump-flows", "--no-stats", host.mgmt(BRIDGE), f"cookie={SDNCTL_COOKIE:#x}/{COOKIE_MASK:#x}")
    return sum(1 for line in out.splitlines() if line.startswith(" "))


def start_host(host: OvsHost, ca_path: Path) -> None:
    """Start the host's daemons with one dummy bridge listening for sdnctl on `pssl:`."""
    host.start()
    host.vsctl("set-ssl", str(host.key_path), str(host.cert_path), str(ca_path))
    host.vsctl("--may-exist", "add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=dummy",
               "protocols=OpenFlow13", "fail_mode=standalone")
    host.vsctl("set-controller", BRIDGE, f"pssl:{OF_PORT}:{ADDRESS}")


async def timed(step: Awaitable) -> tuple[object, float]:
    """The step's result and its wall-clock seconds."""
    started = time.perf_counter()
    result = await step
    return result, time.perf_counter() - started


async def one_round(channel: FlowChannel, host: OvsHost, flows: frozenset[FlowSpec],
                    flow_file: Path) -> dict[str, float]:
    """Seconds per method, each step checked against what the switch holds; leaves the bridge empty."""
    n, seconds = len(flows), {}
    result, seconds[SYNC_ADD] = await timed(channel.sync(KEY, flows, timeout=SYNC_TIMEOUT))
    assert result == (n, 0), f"sync add returned {result}, not ({n}, 0)"
    assert (held := sdnctl_flow_count(host)) == n, f"the bridge holds {held} sdnctl flows after sync add, not {n}"

    result, seconds[SYNC_NOOP] = await timed(channel.sync(KEY, flows, timeout=SYNC_TIMEOUT))
    assert result == (0, 0), f"the no-op re-sync returned {result}"

    result, seconds[SYNC_DELETE] = await timed(channel.sync(KEY, frozenset(), timeout=SYNC_TIMEOUT))
    assert result == (0, n), f"sync delete returned {result}, not (0, {n})"
    assert (held := sdnctl_flow_count(host)) == 0, f"the bridge holds {held} sdnctl flows after sync delete"

    _, seconds[OFCTL_ADD] = await timed(asyncio.to_thread(ofctl, "add-flows", host.mgmt(BRIDGE), str(flow_file)))
    assert (held := sdnctl_flow_count(host)) == n, f"the bridge holds {held} sdnctl flows after add-flows, not {n}"
    result = await channel.sync(KEY, flows, timeout=SYNC_TIMEOUT)
    assert result == (0, 0), f"ofctl's file and the FlowSpecs differ: the sync after add-flows returned {result}"
    await channel.sync(KEY, frozenset(), timeout=SYNC_TIMEOUT)
    return seconds


async def run(host: OvsHost, client_cert: Path, client_key: Path, counts: list[int], rounds: int,
              workdir: Path) -> list[tuple[int, int, str, float]]:
    """(flows, round, method, seconds) for every flow count, round and method, over one connection."""
    channel = FlowChannel(str(client_cert), str(client_key))
    channel.start()
    samples = []
    try:
        started = time.perf_counter()
        await channel.ensure(KEY, host.address, OF_PORT, host.cert_pem)
        while not channel.connected(KEY):
            if time.perf_counter() - started > CONNECT_TIMEOUT:
                raise SystemExit(f"bench: not connected after {CONNECT_TIMEOUT}s: {channel.error(KEY)}")
            await asyncio.sleep(0.01)
        print(f"connected (TCP + TLS + HELLO + FEATURES) in {(time.perf_counter() - started) * 1000:.1f} ms")
        await channel.sync(KEY, frozenset(), timeout=SYNC_TIMEOUT)
        for n in counts:
            flows = bench_flows(n)
            flow_file = write_flow_file(workdir / f"flows-{n}.txt", flows)
            for r in range(1, rounds + 1):
                seconds = await one_round(channel, host, flows, flow_file)
                samples += [(n, r, method, s) for method, s in seconds.items()]
    finally:
        channel.stop()
    return samples


def ratio_text(s: report.Spread) -> str:
    return f"{s.median:.2f} ({s.low:.2f}-{s.high:.2f}, n={s.n})"


def summarize(samples: list[tuple[int, int, str, float]], counts: list[int], rounds: int) -> None:
    """Print the table; save every sample as CSV and the pushes' flows/s vs N as a plot."""
    seconds = {(n, r, method): s for n, r, method, s in samples}

    def rate(n: int, method: str) -> report.Spread:
        return report.spread(n / seconds[n, r, method] for r in range(1, rounds + 1))

    def ms(n: int, method: str) -> report.Spread:
        return report.spread(seconds[n, r, method] * 1000 for r in range(1, rounds + 1))

    rows = []
    for n in counts:
        ratio = report.spread(seconds[n, r, OFCTL_ADD] / seconds[n, r, SYNC_ADD] for r in range(1, rounds + 1))
        rows += [(f"{n:,}", SYNC_ADD, rate(n, SYNC_ADD), "flows/s"),
                 (f"{n:,}", OFCTL_ADD, rate(n, OFCTL_ADD), "flows/s"),
                 (f"{n:,}", "sdnctl / ovs-ofctl", ratio_text(ratio), "x (>1: sdnctl faster)"),
                 (f"{n:,}", SYNC_NOOP, ms(n, SYNC_NOOP), "ms"),
                 (f"{n:,}", SYNC_DELETE, ms(n, SYNC_DELETE), "ms")]
    print(report.machine())
    report.table(f"OpenFlow push to one dummy bridge, barrier-confirmed: median (min-max, n) over {rounds} rounds",
                 ("flows", "method", "median (min-max, n)", "unit"), rows)
    report.save_csv("openflow_push", ("flows", "round", "method", "seconds", "flows_per_s"),
                    [(n, r, method, f"{s:.6f}", f"{n / s:.1f}" if method in PUSHES else "")
                     for n, r, method, s in samples])
    report.save_plot("openflow_push", "Pushing N flows to one bridge (barrier-confirmed)", "flows (N)", "flows/s",
                     {method: (counts, [rate(n, method) for n in counts]) for method in PUSHES})


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--flows", type=int, nargs="+", default=[1000, 10000])
    args.add_argument("--rounds", type=int, default=5)
    opts = args.parse_args()
    counts = sorted(set(opts.flows))

    started = time.perf_counter()
    workdir = ROOT / str(os.getpid())
    host = OvsHost("bench", ADDRESS, workdir / "host", tag="ofbench", dataplane=False, pif_ips={})
    try:
        ca_path, client_cert, client_key = bench_certs(workdir)
        start_host(host, ca_path)
        samples = asyncio.run(run(host, client_cert, client_key, counts, opts.rounds, workdir))
    finally:
        host.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    summarize(samples, counts, opts.rounds)
    print(f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
