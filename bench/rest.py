"""The daemon at rest with many hosts: start-up, idle CPU and memory, under XAPI's ordinary event volume.

Per round, on N OVSDB-only lab hosts (N=200: 10 pools x 20) carrying one cross-pool star and one
cross-pool GRE mesh of every host, already built (a first daemon built them and was stopped):
- start-up: from `sdnctl run` to every host connected and the daemon's status converged (every desired
  tunnel observed) with nothing to write: a restart is hitless;
- idle: the daemon's CPU over the next 60 s, as a share of one core, and its RSS at the end.
The lab's XAPI meanwhile updates every host's host_metrics every few seconds, as xapi's memory monitor
does, and the pools hold VM templates, as real ones do: the daemon must shrug them off.
Run as root: .venv/bin/python bench/rest.py [--n 200] [--rounds 3] [--idle 60]
"""

from __future__ import annotations

import argparse
import time

import report
from scalelab import ScaleLab, cpu_seconds, rss_mb, wait

LAYOUT = {16: (2, 8), 64: (4, 16), 200: (10, 20)}
OCTET = 244


def converged(scale: ScaleLab, n: int) -> bool:
    status = scale.status()
    hosts = status.get("hosts", {})
    if len(hosts) != n or not all(h["connected"] for h in hosts.values()) or len(status.get("networks", [])) != 2:
        return False
    return all(t["desired"] and t["observed"] for net in status["networks"] for h in net["hosts"]
               for t in h["tunnels"])


def rounds_at(n: int, rounds: int, idle: float) -> list[tuple[float, float, float, int]]:
    """(start-up seconds, idle CPU %, RSS MB, transactions at start-up) per round."""
    pools, hosts = LAYOUT[n]
    results = []
    with ScaleLab(pools, hosts, octet=OCTET) as scale:
        print(f"N={n}: lab up in {scale.lab_up_s:.1f} s", flush=True)
        scale.start_daemon(timeout=300)
        scale.create_network("star", "star")
        scale.create_network("mesh", "mesh")
        scale.wait_ports(2 * (n - 1) + n * (n - 1), timeout=600)
        scale.stop_daemon()
        for r in range(rounds):
            started = time.monotonic()
            scale.start_daemon(timeout=300)
            wait(lambda: converged(scale, n), 300, "the restarted daemon converged", interval=0.2)
            startup = time.monotonic() - started
            transactions = scale.counters()[0]
            cpu_before = cpu_seconds(scale.pid())
            time.sleep(idle)      # the measurement itself: the daemon alone, at rest
            share = (cpu_seconds(scale.pid()) - cpu_before) / idle * 100
            results.append((startup, share, rss_mb(scale.pid()), transactions))
            print(f"  round {r}: start-up {startup:.1f} s ({transactions} transactions), idle {share:.2f}% of a "
                  f"core, RSS {results[-1][2]:.0f} MB", flush=True)
            scale.stop_daemon()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, choices=sorted(LAYOUT))
    parser.add_argument("--rounds", type=int, default=3, help="restarts measured (3 fit the 10-minute budget at 200)")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle measured per round")
    args = parser.parse_args()
    began = time.monotonic()
    results = rounds_at(args.n, args.rounds, args.idle)
    startup, cpu, rss = (report.spread(r[i] for r in results) for i in (0, 1, 2))
    report.table(f"At rest, {args.n} hosts, a star and a mesh: median (min-max, n) -- {report.machine()}",
                 ("N", "start-up to converged, s", "transactions at start-up", f"idle CPU over {args.idle:.0f} s, %",
                  "RSS, MB"), [(args.n, startup, "/".join(sorted({str(r[3]) for r in results})), cpu, rss)])
    report.save_csv("rest", ("n", "round", "startup_s", "idle_cpu_percent", "rss_mb", "startup_transactions"),
                    [(args.n, i, f"{r[0]:.2f}", f"{r[1]:.3f}", f"{r[2]:.1f}", r[3]) for i, r in enumerate(results)])
    report.save_plot("rest", f"{args.n} hosts at rest, per round", "round", "idle CPU, % of a core",
                     {"idle CPU": (list(range(len(results))), [report.spread([r[1]]) for r in results])})
    print(f"total {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
