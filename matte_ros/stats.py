"""
Counters and rates for diagnostics and benchmarks (ROS-free).

The node feeds every received, published, dropped and rejected frame in here;
:meth:`Stats.snapshot` turns a window of them into rates and times.
"""

import collections
import re
import threading
import time
from typing import Dict
from typing import Optional

import numpy as np

#: Distinct rejection reasons counted separately; later new ones count as ``other``.
MAX_REASONS = 32
#: Per-frame latency samples kept per snapshot window (the newest win).
MAX_LATENCY_SAMPLES = 4096
#: A stamp older than this (seconds) is taken for another clock's: no latency counted.
MAX_STAMP_AGE = 60.0
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_NUMBER = re.compile(r'-?\d+')


def reason_key(reason: str) -> str:
    """
    Return the kind of a rejection reason, without the values that vary per message.

    ``unsupported encoding '16UC1' (accepted: ...)`` → ``unsupported encoding ...``;
    ``data is 10 bytes, expected step*height = 48`` → ``data is N bytes, expected
    step*height = N``.  So a flood of random encodings or sizes keeps a bounded table.
    """
    text = _NUMBER.sub('N', _QUOTED.sub('...', reason))
    return text.split(' (', 1)[0].strip()[:80] or 'unknown'


def stamp_age(stamp, now_ns: int) -> Optional[float]:
    """
    Return seconds from a header ``stamp`` (``sec``, ``nanosec``) to ``now_ns``, or None.

    None for an unset stamp or one more than :data:`MAX_STAMP_AGE` off (a camera
    stamping with its own clock): no latency is counted then.
    """
    stamp_ns = stamp.sec * 1000000000 + stamp.nanosec
    if stamp_ns == 0:
        return None
    age = (now_ns - stamp_ns) * 1e-9
    return age if 0.0 <= age < MAX_STAMP_AGE else None


class Stats:
    """Thread-safe running counts, with rates over the last snapshot period."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self.received = 0
        self.processed = 0
        self.failed = 0
        self.rejected = 0
        self.rejected_reasons: Dict[str, int] = collections.Counter()
        self.last_reject_reason = ''
        self.last_failure = ''
        self.stage_total: Dict[str, float] = collections.defaultdict(float)
        self._window_start = clock()
        self._window_received = 0
        self._window_processed = 0
        self._window_time = 0.0
        self._window_stages: Dict[str, float] = collections.defaultdict(float)
        self._window_latency = collections.deque(maxlen=MAX_LATENCY_SAMPLES)
        self._window_added = collections.deque(maxlen=MAX_LATENCY_SAMPLES)
        self.last_processing_time = 0.0

    def on_received(self) -> None:
        """Count a message that arrived on the input topic."""
        with self._lock:
            self.received += 1
            self._window_received += 1

    def on_rejected(self, reason: str) -> None:
        """Count a message refused before processing (bad encoding, too large...)."""
        key = reason_key(reason)
        with self._lock:
            self.rejected += 1
            if key not in self.rejected_reasons and len(self.rejected_reasons) >= MAX_REASONS:
                key = 'other'
            self.rejected_reasons[key] += 1
            self.last_reject_reason = reason

    def on_failed(self, reason: str) -> None:
        """Count a frame whose processing raised (the frame is dropped)."""
        with self._lock:
            self.failed += 1
            self.last_failure = reason

    def on_processed(self, seconds: float, stages: Dict[str, float],
                     latency: Optional[float] = None, added: Optional[float] = None) -> None:
        """
        Count a frame whose outputs were published, with its stage times.

        ``latency``: seconds from the input's stamp to its outputs published; ``added``:
        the part of it that was not the segmenter pipeline (DDS in, waiting, conversion,
        publishing).  None when the stamp cannot be compared with the node's clock.
        """
        with self._lock:
            if latency is not None and added is not None:
                self._window_latency.append(latency)
                self._window_added.append(added)
            self.processed += 1
            self._window_processed += 1
            self._window_time += seconds
            self.last_processing_time = seconds
            for stage, value in stages.items():
                self.stage_total[stage] += value
                self._window_stages[stage] += value

    def snapshot(self) -> Dict[str, float]:
        """Return rates over the time since the previous snapshot, and the totals."""
        with self._lock:
            now = self._clock()
            span = max(now - self._window_start, 1e-9)
            out = {
                'input_rate_hz': self._window_received / span,
                'output_rate_hz': self._window_processed / span,
                'mean_processing_ms': (1000.0 * self._window_time / self._window_processed
                                       if self._window_processed else 0.0),
                'received': self.received,
                'processed': self.processed,
                'failed': self.failed,
                'rejected': self.rejected,
            }
            # mean time per processed frame of each stage, ``stage_ms[convert_in]`` etc.
            for stage, total in sorted(self._window_stages.items()):
                out['stage_ms[%s]' % stage] = (1000.0 * total / self._window_processed
                                               if self._window_processed else 0.0)
            # per-frame medians: stamp to outputs published, and what the node added to it
            if self._window_latency:
                out['latency_ms[p50]'] = 1000.0 * float(np.median(self._window_latency))
                out['latency_ms[max]'] = 1000.0 * max(self._window_latency)
                out['node_added_ms[p50]'] = 1000.0 * float(np.median(self._window_added))
                out['latency_samples'] = len(self._window_latency)
            self._window_latency.clear()
            self._window_added.clear()
            self._window_start = now
            self._window_received = 0
            self._window_processed = 0
            self._window_time = 0.0
            for stage in self._window_stages:
                self._window_stages[stage] = 0.0
            return out
