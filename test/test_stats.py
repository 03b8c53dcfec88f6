"""The node's counters: per-frame latency medians per diagnostics window (ROS-free)."""

import types

from matte_ros.stats import MAX_STAMP_AGE
from matte_ros.stats import stamp_age
from matte_ros.stats import Stats
import pytest


def test_latency_medians_cover_one_window_and_skip_unstamped_frames():
    clock = [0.0]
    stats = Stats(clock=lambda: clock[0])
    for latency, added in ((0.010, 0.002), (0.030, 0.004), (0.020, 0.003)):
        stats.on_processed(0.005, {'segment': 0.004}, latency, added)
    stats.on_processed(0.005, {'segment': 0.004}, None, None)   # stamp of another clock
    clock[0] = 1.0
    snap = stats.snapshot()
    assert snap['processed'] == 4 and snap['latency_samples'] == 3
    assert snap['latency_ms[p50]'] == pytest.approx(20.0)
    assert snap['latency_ms[max]'] == pytest.approx(30.0)
    assert snap['node_added_ms[p50]'] == pytest.approx(3.0)
    # the next window starts empty: no sample, no key (rather than a stale value)
    stats.on_processed(0.005, {'segment': 0.004})
    clock[0] = 2.0
    snap = stats.snapshot()
    assert snap['processed'] == 5
    assert not any(key.startswith(('latency', 'node_added')) for key in snap)


def _stamp(sec, nanosec=0):
    return types.SimpleNamespace(sec=sec, nanosec=nanosec)   # builtin_interfaces/Time's fields


def test_stamp_age_counts_only_stamps_on_this_clock():
    now = 1700000000 * 10 ** 9 + 500000000
    assert stamp_age(_stamp(1700000000), now) == pytest.approx(0.5)
    assert stamp_age(_stamp(1700000000, 250000000), now) == pytest.approx(0.25)
    assert stamp_age(_stamp(0), now) is None                               # unset stamp
    assert stamp_age(_stamp(1700000001), now) is None                      # from the future
    assert stamp_age(_stamp(1700000000 - int(MAX_STAMP_AGE)), now) is None  # another clock
    assert stamp_age(_stamp(1700000000 - int(MAX_STAMP_AGE) + 1), now) == pytest.approx(
        MAX_STAMP_AGE - 0.5)
