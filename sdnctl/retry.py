"""sdnctl's one retry schedule: finite, capped, jittered, and restarted after a success."""

from __future__ import annotations

import random

SCHEDULE = (0.5, 1, 2, 4, 8, 15)  # seconds; the last step repeats


def delay(attempt: int, schedule: tuple[float, ...] = SCHEDULE) -> float:
    """The delay before retry number `attempt` (0-based): the schedule's step, capped at its last, ±20 %.

    The jitter keeps daemons and hosts that failed together from retrying in step.
    """
    return schedule[min(max(attempt, 0), len(schedule) - 1)] * random.uniform(0.8, 1.2)


class Backoff:
    """A retry schedule that resets on success."""

    attempt: int

    def __init__(self, schedule: tuple[float, ...] = SCHEDULE) -> None:
        if not schedule:
            raise ValueError("a retry schedule needs at least one step")
        self.schedule = schedule
        self.attempt = 0

    def next(self) -> float:
        """The delay for this failure; the next failure waits longer, up to the schedule's last step."""
        wait = delay(self.attempt, self.schedule)
        self.attempt += 1
        return wait

    def reset(self) -> None:
        """After a success: the next failure starts the schedule again."""
        self.attempt = 0
