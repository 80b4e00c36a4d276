"""The one retry schedule: finite, capped, jittered ±20 %, restarted after a success."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdnctl import retry


@pytest.mark.parametrize(("attempt", "step"), [
    (-1, 0.5), (0, 0.5), (1, 1), (2, 2), (3, 4), (4, 8), (5, 15), (6, 15), (1000, 15),
], ids=["negative", "first", "second", "third", "fourth", "fifth", "last", "past-the-end", "far-past-the-end"])
def test_delay_follows_the_schedule_within_jitter(attempt, step):
    assert step * 0.8 <= retry.delay(attempt) <= step * 1.2


@given(st.integers(min_value=-5, max_value=10_000),
       st.lists(st.floats(min_value=0.01, max_value=100), min_size=1, max_size=8).map(tuple))
def test_delay_is_finite_and_capped_by_the_last_step(attempt, schedule):
    assert 0 < retry.delay(attempt, schedule) <= max(schedule) * 1.2


def test_schedule_is_finite_increasing_and_capped():
    assert list(retry.SCHEDULE) == sorted(retry.SCHEDULE) and retry.SCHEDULE[-1] == 15


def test_backoff_grows_then_resets_on_success():
    backoff = retry.Backoff((1, 2, 4))
    waits = [backoff.next() for _ in range(5)]
    assert all(0.8 * step <= wait <= 1.2 * step for wait, step in zip(waits, (1, 2, 4, 4, 4), strict=True)), waits
    assert backoff.attempt == 5
    backoff.reset()
    assert backoff.attempt == 0 and 0.8 <= backoff.next() <= 1.2


def test_backoff_refuses_an_empty_schedule():
    with pytest.raises(ValueError, match="at least one step"):
        retry.Backoff(())
