"""Center failover on a cross-pool star of N hosts: what changes, and how fast.

Per round, on OVSDB-only lab hosts (N=64: 4 pools x 16): the star's center crashes (XAPI marks it dead:
host_metrics.live false, its switch killed); measured from that XAPI change to the daemon's last commit,
and the ports touched against the minimum: each of the N-1 survivors' port to the dead center goes (N-1
deletes), the new center gains N-2 ports and each other survivor one to it (2(N-2) adds). Xen Orchestra's
plugin rebuilds every tunnel of the network instead.
The crashed host recovers (the center stays where it moved: centers are sticky) before the next round.
Run as root: .venv/bin/python bench/failover.py [--n 64] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import report
from scalelab import ScaleLab, wait

LAYOUT = {16: (2, 8), 64: (4, 16)}
OCTET = 243


def center(scale: ScaleLab, name: str) -> str | None:
    return next((n["center_name"] for n in scale.status().get("networks", []) if n["name"] == name), None)


def failovers(n: int, rounds: int) -> list[tuple[float, int, int, int]]:
    """(seconds, ports added, ports deleted, transactions) per round."""
    pools, hosts = LAYOUT[n]
    results = []
    with ScaleLab(pools, hosts, octet=OCTET) as scale:
        scale.start_daemon()
        scale.create_network("star", "star", encapsulation="vxlan")
        scale.wait_ports(2 * (n - 1))
        for r in range(rounds):
            dead = wait(lambda: center(scale, "star"), 30, "a center")
            before = scale.counters()
            crashed_at = time.time()
            scale.lab.host_crash(dead)
            new = wait(lambda: (c := center(scale, "star")) not in (None, dead) and c, 30, "a new center")
            after = scale.wait_ports(before[1] + 2 * (n - 2), before[2] + n - 1)
            results.append((scale.last_commit_at() - crashed_at, after[1] - before[1], after[2] - before[2],
                            after[0] - before[0]))
            print(f"  round {r}: center {dead} -> {new} in {results[-1][0] * 1000:,.0f} ms: +{results[-1][1]} "
                  f"-{results[-1][2]} ports, {results[-1][3]} transactions", flush=True)
            scale.lab.host_recover(dead)
            wait(lambda: sum(h["connected"] for h in scale.status().get("hosts", {}).values()) == n, 60,
                 "the recovered host connected again")
            scale.wait_ports(0)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=64, choices=sorted(LAYOUT))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    started = time.monotonic()
    results = failovers(args.n, args.rounds)
    n = args.n
    rows = [(n, report.spread(r[0] * 1000 for r in results), "/".join(sorted({str(r[1]) for r in results})),
             2 * (n - 2), "/".join(sorted({str(r[2]) for r in results})), n - 1,
             "/".join(sorted({str(r[3]) for r in results})), n - 1, 2 * (n - 1))]
    report.table(f"Center failover on a star, ms: median (min-max, n) -- {report.machine()}",
                 ("N", "crash -> last commit", "added", "minimum", "deleted", "minimum", "transactions",
                  "hosts affected", "XO rebuilds"), rows)
    report.save_csv("failover", ("n", "round", "ms", "added", "deleted", "transactions"),
                    [(n, i, f"{r[0] * 1000:.1f}", r[1], r[2], r[3]) for i, r in enumerate(results)])
    report.save_plot("failover", f"Star center failover, {n} hosts", "round", "ms",
                     {"crash -> last commit": (list(range(len(results))), [report.spread([r[0] * 1000])
                                                                           for r in results])})
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
