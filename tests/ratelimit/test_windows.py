"""The in-memory sliding windows, on the service clock: the previous window's count fades as it slides
out, so no client doubles its rate at a window's edge, and Retry-After is exactly when room comes back."""

from __future__ import annotations

import pytest

from silver_auth.core import clock
from silver_auth.ratelimit.limiter import MemoryWindows
from silver_auth.throttle.policies import RatePolicy

POLICY = RatePolicy("probe", 10, 60)


@pytest.fixture
def windows() -> MemoryWindows:
    clock.advance(60 - clock.monotonic() % 60)  # start at a window's start
    return MemoryWindows()


def spend(windows: MemoryWindows, count: int, subject: str = "s") -> list[bool]:
    return [windows.hit(POLICY, subject).allowed for _ in range(count)]


def test_a_full_window_refuses_and_says_when_to_come_back(windows: MemoryWindows) -> None:
    assert spend(windows, 10) == [True] * 10
    refused = windows.hit(POLICY, "s")
    assert not refused.allowed and refused.remaining == 0
    clock.advance(refused.reset_seconds - 0.5)
    assert not windows.hit(POLICY, "s").allowed  # not before Retry-After
    clock.advance(0.5)
    assert windows.hit(POLICY, "s").allowed


def test_the_edge_of_a_window_does_not_double_the_rate(windows: MemoryWindows) -> None:
    clock.advance(59)
    assert spend(windows, 10) == [True] * 10
    clock.advance(2)  # a new window, but the previous one still nearly all overlaps
    assert spend(windows, 10).count(True) == 1
    clock.advance(30)  # half the previous window has slid out
    assert spend(windows, 10).count(True) == 5  # 10 * 29/60 + 1 = 5.8 weighted: room for 5


def test_subjects_and_policies_count_apart(windows: MemoryWindows) -> None:
    assert spend(windows, 11, "a").count(True) == 10
    assert spend(windows, 1, "b") == [True]
    assert windows.hit(RatePolicy("other", 1, 60), "a").allowed


def test_remaining_counts_down(windows: MemoryWindows) -> None:
    assert [windows.hit(POLICY, "s").remaining for _ in range(3)] == [9, 8, 7]


def test_old_counters_are_dropped(windows: MemoryWindows) -> None:
    for n in range(100):
        windows.hit(POLICY, f"address-{n}")
    clock.advance(180)
    windows.hit(POLICY, "late")
    assert len(windows._counts) == 1
