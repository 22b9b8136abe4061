"""The bridge's per-serial status limiter (pure; the MQTT flood itself:
tests/integration/test_status_flood.py)."""

from __future__ import annotations

from apps.meters.bridge import ADMIT, DROP, FIRST_OVER, StatusLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_serial_gets_its_limit_per_window_then_one_flag_then_drops():
    clock = Clock()
    limiter = StatusLimiter(3, window_s=60, clock=clock)
    assert [limiter.admit("A") for _ in range(6)] == [ADMIT] * 3 + [FIRST_OVER, DROP, DROP]
    assert limiter.admit("B") == ADMIT  # another serial has its own count
    clock.now += 59.9
    assert limiter.admit("A") == DROP  # A's window is still open
    clock.now += 0.2
    assert [limiter.admit("A") for _ in range(4)] == [ADMIT] * 3 + [FIRST_OVER]  # a new window
    clock.now += 61
    limiter.admit("C")
    assert set(limiter.windows) == {"C"}  # closed windows are forgotten
