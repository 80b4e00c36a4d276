"""Convergence time of a 2-pool x 3-host private network: after `network create`, and after a host join.

Measured from the XAPI change (the create call / the join) to the daemon's last OVSDB commit,
taken from the daemon's status (`last_commit_at`) once every tunnel is observed up.
Run as root: .venv/bin/python bench/converge.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sdnctl import networks
from sdnctl.config import load_config
from sdnctl.lab.lab import Lab

ROOT = Path("/run/sdnctl-bench")


def status(lab: Lab) -> dict:
    path = lab.dir / "controller" / "state" / "status.json"
    return json.loads(path.read_text()) if path.exists() else {}


def converged(lab: Lab, name: str, hosts: int) -> bool:
    network = next((n for n in status(lab).get("networks", []) if n["name"] == name), None)
    if not network or len([h for h in network["hosts"] if h["eligible"]]) != hosts:
        return False
    tunnels = [t for h in network["hosts"] for t in h["tunnels"]]
    return bool(tunnels) and all(t["desired"] and t["observed"] for t in tunnels)


def wait(probe, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise SystemExit("bench: timed out")
        time.sleep(0.02)


def one_round(octet: int, topology: str) -> tuple[float, float]:
    lab = Lab(pools=2, hosts=3, octet=octet, root=ROOT)
    lab.up()
    daemon = subprocess.Popen([sys.executable, "-m", "sdnctl.cli", "run", "--config", str(lab.config_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: status(lab).get("hosts") and len(status(lab)["hosts"]) == 6
             and all(h["connected"] for h in status(lab)["hosts"].values()))
        request = networks.CreateRequest(name="bench", pools=("pool1", "pool2"), pif_device="eth0",
                                         topology=topology)
        with networks.Pools(load_config(lab.config_path), ["pool1", "pool2"]) as pools:
            started = time.time()
            networks.create(pools, request, lambda text: None)
            print(f"  (network create itself: {(time.time() - started) * 1000:.0f} ms)", flush=True)
        wait(lambda: converged(lab, "bench", 6))
        create = status(lab)["last_commit_at"] - started
        started = time.time()
        lab.host_join("pool1")
        wait(lambda: converged(lab, "bench", 7))
        join = status(lab)["last_commit_at"] - started
        return create, join
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=15)
        lab.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for topology in ("star", "mesh"):
        results = [one_round(200 + i, topology) for i in range(args.rounds)]
        for label, values in (("network create", [r[0] for r in results]), ("host join", [r[1] for r in results])):
            print(f"{topology:<4} {label:<15} median {statistics.median(values) * 1000:7.1f} ms   "
                  f"min {min(values) * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms   (n={len(values)})")


if __name__ == "__main__":
    main()
