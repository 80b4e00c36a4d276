"""Plug to first forwarded frame: how long a replugged VIF waits for sdnctl to admit it.

A VM floods raw echo requests every 1 ms (tests/integration/rawflood.py, no ARP); the receiver's
namespace timestamps the first one that arrives after `VIF.plug` returns. With rules (a deny on
UDP, so ICMP is allowed through port security) and without. Lab octet 88 by default.

    sudo .venv/bin/python -m bench.plug_to_first_frame [--rounds 15] [--octet 88]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sdnctl.lab.lab import Lab
from tests.integration.conftest import Daemon, run_cli
from tests.integration.test_admission import call, mac_of, start_flood
from tests.integration.test_dataplane import boot_guest, ping
from tests.waiting import wait_for

RECEIVER = """
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind(("eth0", 0))
while True:
    frame = s.recv(2048)
    if frame[23] == 1 and frame[34] == 8 and frame[26:30] == socket.inet_aton(sys.argv[1]):
        print(time.monotonic(), flush=True)
"""


def first_arrival(receiver: subprocess.Popen, after: float, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = receiver.stdout.readline()
        if line and float(line) > after:
            return float(line) - after
    raise AssertionError("no frame arrived")


def measure(lab: Lab, ns_a: str, ns_b: str, vif_b: str, rounds: int) -> list[float]:
    receiver = subprocess.Popen(["ip", "netns", "exec", ns_a, sys.executable, "-c", RECEIVER, "192.0.2.2"],
                                stdout=subprocess.PIPE, text=True)
    flood = start_flood(ns_b, mac_of(ns_a), "192.0.2.1", "192.0.2.2", Path("/tmp/sdnctl-bench-sent"))
    ref = call(lab, "VIF.get_by_uuid", vif_b)
    out = []
    try:
        for _ in range(rounds):
            call(lab, "VIF.unplug", ref)
            start = time.monotonic()
            call(lab, "VIF.plug", ref)
            out.append(first_arrival(receiver, start))
    finally:
        flood.kill(), receiver.kill()
        flood.wait(), receiver.wait()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--octet", type=int, default=88)
    args = parser.parse_args()
    root = Path("/run/sdnctl-bench")
    lab = Lab(pools=1, hosts=2, dataplane=True, octet=args.octet, root=root)
    lab.up()
    daemon = Daemon(lab.config_path, root / "daemon.log")
    try:
        daemon.start()
        run_cli("network", "create", "--name", "dp", "--pool", "pool1", "--pif-device", "eth1",
                "--topology", "star", config=lab.config_path)
        ns_a, _ = boot_guest(lab, "dp", "p1h1", "192.0.2.1")
        ns_b, vif_b = boot_guest(lab, "dp", "p1h2", "192.0.2.2")
        wait_for(lambda: ping(ns_b, "192.0.2.1"), timeout=30, what="B pings A")
        without = measure(lab, ns_a, ns_b, vif_b, args.rounds)
        run_cli("rule", "add", "--vif", vif_b, "--deny", "--protocol", "udp", config=lab.config_path)
        time.sleep(1)  # a bench, not a test: let the rule settle before measuring
        with_rules = measure(lab, ns_a, ns_b, vif_b, args.rounds)
        for name, values in (("without rules", without), ("with rules", with_rules)):
            ms = sorted(v * 1000 for v in values)
            print(f"{name}: median {statistics.median(ms):.0f} ms, min {ms[0]:.0f}, max {ms[-1]:.0f} "
                  f"({len(ms)} plugs)")
    finally:
        daemon.kill(signal.SIGTERM)
        lab.down()


if __name__ == "__main__":
    main()
