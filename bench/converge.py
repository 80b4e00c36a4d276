"""Convergence of one cross-pool VXLAN mesh at K hosts: sdnctl against the script floor and the IDL floor.

Per K (16 = 2 x 8, 64 = 4 x 16, 200 = 10 x 20 OVSDB-only lab hosts) and per round:
- sdnctl: from the start of `network create` to the daemon's last OVSDB commit (its `last_commit_at`),
  once its hosts count the K(K-1) ports;
- the script floor: the same rows, deleted again, written by one `ovs-vsctl` per host, all at once;
- the IDL floor: the same rows written by pre-connected python-ovs IDL clients committing concurrently.
Each round ends with the rows deleted and the network destroyed, so the next one starts clean.
Run as root: .venv/bin/python bench/converge.py [--k 16 64 200] [--rounds N]
"""

from __future__ import annotations

import argparse
import time

import report
from scalelab import ScaleLab, delete_tunnels, dump_tunnels, idl_floor, script_floor

from sdnctl import networks
from sdnctl.config import load_config

LAYOUT = {4: (2, 2), 16: (2, 8), 64: (4, 16), 200: (10, 20)}   # K -> (pools, hosts per pool)
# A 200-host round takes about 4 minutes (lab, sdnctl's 39,800 ports, both floors): one fits the
# 10-minute budget beside five of each smaller K. `--rounds` sets every K's count.
DEFAULT_ROUNDS = {4: 5, 16: 5, 64: 5, 200: 1}
OCTET = 240


def one_k(k: int, rounds: int) -> list[tuple[int, int, float, float, float]]:
    pools, hosts = LAYOUT[k]
    rows = []
    with ScaleLab(pools, hosts, octet=OCTET) as scale:
        print(f"K={k}: lab up in {scale.lab_up_s:.1f} s", flush=True)
        for r in range(rounds):
            scale.start_daemon()
            name = f"mesh{r}"
            before = scale.counters()
            started = scale.create_network(name, "mesh", encapsulation="vxlan")
            scale.wait_ports(before[1] + k * (k - 1), timeout=540)
            sdnctl = scale.last_commit_at() - started
            scale.stop_daemon()
            network_id = _network_id(scale, name)
            tunnels = {h: [t for t in rows if t.port_ids.get("sdnctl-network") == network_id]
                       for h, rows in dump_tunnels(scale.lab).items()}
            if sum(len(v) for v in tunnels.values()) != k * (k - 1):
                raise SystemExit(f"bench: expected {k * (k - 1)} tunnel rows, found {sum(map(len, tunnels.values()))}")
            delete_tunnels(scale.lab, tunnels)
            script = script_floor(scale.lab, tunnels)
            delete_tunnels(scale.lab, tunnels)
            idl = idl_floor(scale.lab, tunnels)
            delete_tunnels(scale.lab, tunnels)
            _destroy(scale, name)
            rows.append((k, r, sdnctl * 1000, script * 1000, idl * 1000))
            print(f"  round {r}: sdnctl {sdnctl * 1000:,.0f} ms (network create {scale.create_s * 1000:,.0f} ms of it), script floor {script * 1000:,.0f} ms, "
                  f"IDL floor {idl * 1000:,.0f} ms", flush=True)
    return rows


def _network_id(scale: ScaleLab, name: str) -> str:
    with networks.Pools(load_config(scale.lab.config_path)) as pools:
        return networks.find_network(pools, name)[0]


def _destroy(scale: ScaleLab, name: str) -> None:
    with networks.Pools(load_config(scale.lab.config_path)) as pools:
        _, records = networks.find_network(pools, name)
        for pool, ref, _ in records:
            networks.destroy_network(pools, pool, ref)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, nargs="+", default=[16, 64, 200], choices=sorted(LAYOUT))
    parser.add_argument("--rounds", type=int, help="rounds per K (default: 5, and 1 at K=200)")
    args = parser.parse_args()
    started = time.monotonic()
    rows = [row for k in args.k for row in one_k(k, args.rounds or DEFAULT_ROUNDS[k])]
    summary = []
    series: dict[str, tuple[list[float], list[report.Spread]]] = {"sdnctl": ([], []), "script floor": ([], []),
                                                                  "IDL floor": ([], [])}
    for k in args.k:
        mine = [r for r in rows if r[0] == k]
        spreads = [report.spread(r[i] for r in mine) for i in (2, 3, 4)]
        for (label, (xs, ys)), s in zip(series.items(), spreads):
            xs.append(k)
            ys.append(s)
        summary.append((k, k * (k - 1), *spreads, f"{spreads[0].median / spreads[1].median:.2f}x",
                        f"{spreads[0].median / spreads[2].median:.2f}x"))
    report.table(f"Convergence of one VXLAN mesh, ms: median (min-max, n) -- {report.machine()}",
                 ("K", "ports", "sdnctl", "script floor", "IDL floor", "vs script", "vs IDL"), summary)
    report.save_csv("converge", ("k", "round", "sdnctl_ms", "script_floor_ms", "idl_floor_ms"), rows)
    report.save_plot("converge", "One cross-pool VXLAN mesh: network create to last commit", "hosts (K)", "ms",
                     series, logy=True)
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
