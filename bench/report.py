"""What every bench/ script shares: median and spread, a table on stdout, a CSV and a PNG under docs/bench/.

No bench fails on a number: each measures, prints and saves, and exits 0 unless the measurement itself broke.
"""

from __future__ import annotations

import csv
import os
import platform
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "docs" / "bench"


@dataclass(frozen=True)
class Spread:
    """Median, min and max of n runs."""
    median: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.median:,.1f} ({self.low:,.1f}-{self.high:,.1f}, n={self.n})"


def spread(values: Iterable[float]) -> Spread:
    values = list(values)
    return Spread(statistics.median(values), min(values), max(values), len(values))


def machine() -> str:
    """One line naming the machine the numbers come from."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    ovs = subprocess.run(["ovsdb-server", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return (f"{os.cpu_count()} cores, {memory:.0f} GiB, {platform.platform(terse=True)}, "
            f"Python {platform.python_version()}, {ovs.strip()}")


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print rows under a header, columns aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for i, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))


def save_csv(name: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    print(f"saved {path}")
    return path


def save_plot(name: str, title: str, xlabel: str, ylabel: str, series: dict[str, tuple[list[float], list[Spread]]],
              *, logy: bool = False) -> Path:
    """One line per series: the medians, with the min-max spread as error bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, (xs, spreads) in series.items():
        medians = [s.median for s in spreads]
        errors = [[s.median - s.low for s in spreads], [s.high - s.median for s in spreads]]
        ax.errorbar(xs, medians, yerr=errors, marker="o", capsize=4, label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = OUT / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"saved {path}")
    return path
