"""Host join repair: sdnctl on a mesh of K-1 hosts that a K-th joins, beside OVN's chassis join at the same K.

sdnctl, per K and round, on OVSDB-only lab hosts (K=64: three pools of 21, the joiner in the first):
- the joiner's own OVS start-up (ovsdb-server, before XAPI hears of it) is timed apart, not in the join;
- join: from the XAPI join step that gives the host its tunnel (the first it can be meshed at) to the
  daemon's last OVSDB commit, once its hosts count the 2(K-1) new ports;
- the OVSDB transactions the join cost, against the hosts it affects (all K in a mesh: one each is the goal);
- the joiner is ejected again (its ports swept) before the next round.
OVN (bench/ovn.py), same K, same run: a new chassis' ovn-controller start to every other chassis' geneve port.
Run as root: .venv/bin/python bench/join.py [--k 4 8 16 64] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import report
from ovn import measure_joins
from scalelab import ScaleLab, wait

LAYOUT = {4: (1, 3), 8: (1, 7), 16: (1, 15), 64: (3, 21)}   # K -> (pools, hosts per pool) before the join
OVN_KS = (4, 8, 16)
OCTET = 242


def sdnctl_joins(k: int, rounds: int) -> list[tuple[float, float, int]]:
    """(join seconds, the joiner's OVS start-up seconds, OVSDB transactions) per round."""
    pools, hosts = LAYOUT[k]
    results = []
    with ScaleLab(pools, hosts, octet=OCTET) as scale:
        scale.start_daemon()
        scale.create_network("mesh", "mesh", encapsulation="vxlan")
        scale.wait_ports((k - 1) * (k - 2))
        for r in range(rounds):
            before = scale.counters()
            name = scale.lab.host_join("pool1")
            join = scale.lab.joins[name]
            after = scale.wait_ports(before[1] + 2 * (k - 1))
            results.append((scale.last_commit_at() - join.tunnels_at, join.ovs_start, after[0] - before[0]))
            print(f"  K={k} round {r}: join {results[-1][0] * 1000:,.0f} ms, {results[-1][2]} transactions "
                  f"(joiner's OVS start {join.ovs_start * 1000:,.0f} ms)", flush=True)
            deleted = scale.counters()[2]
            scale.lab.host_eject(name)
            scale.wait_ports(0, deleted + k - 1)
            wait(lambda: len(scale.status().get("hosts", {})) == k - 1, 30, "the ejected host gone from the status")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, nargs="+", default=[4, 8, 16, 64], choices=sorted(LAYOUT))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    started = time.monotonic()
    ours = {k: sdnctl_joins(k, args.rounds) for k in args.k}
    ovn_ks = [k for k in args.k if k in OVN_KS]
    theirs = measure_joins(ovn_ks, args.rounds) if ovn_ks else {}
    rows, csv_rows = [], []
    series: dict[str, tuple[list[float], list[report.Spread]]] = {"sdnctl": ([], []), "OVN": ([], [])}
    for k in args.k:
        join = report.spread(r[0] * 1000 for r in ours[k])
        ovs = report.spread(r[1] * 1000 for r in ours[k])
        txns = sorted({r[2] for r in ours[k]})
        series["sdnctl"][0].append(k)
        series["sdnctl"][1].append(join)
        ovn = report.spread(j.seconds * 1000 for j in theirs[k]) if k in theirs else None
        if ovn is not None:
            series["OVN"][0].append(k)
            series["OVN"][1].append(ovn)
        rows.append((k, join, ovs, "/".join(map(str, txns)), k, ovn or "-",
                     f"{join.median / ovn.median:.2f}x" if ovn else "-"))
        csv_rows += [(k, r, "sdnctl", f"{j * 1000:.1f}", f"{o * 1000:.1f}", t) for r, (j, o, t) in enumerate(ours[k])]
        csv_rows += [(k, r, "ovn", f"{j.seconds * 1000:.1f}", f"{j.ovs_start * 1000:.1f}", "")
                     for r, j in enumerate(theirs.get(k, []))]
    report.table(f"Host join, ms: median (min-max, n) -- {report.machine()}",
                 ("K", "sdnctl join", "joiner's OVS start (apart)", "transactions", "affected hosts", "OVN join",
                  "sdnctl/OVN"), rows)
    report.save_csv("join", ("k", "round", "who", "join_ms", "ovs_start_ms", "transactions"), csv_rows)
    report.save_plot("join", "A host joins a mesh: join event to the last tunnel written", "hosts (K)", "ms",
                     {label: value for label, value in series.items() if value[0]}, logy=True)
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
