"""
Heap settings (matte_ros.heap): frame-sized buffers freed together stay mapped.

Measured, not timed: minor page faults while a thread copies four 900 KB buffers
(a VGA bgr8 frame each, as one message hop makes) and frees them, round after round.
"""

import os
import platform
import subprocess
import sys

from matte_ros import heap
import pytest

ROUNDS = """
import resource, sys, threading
from matte_ros import heap
applied = heap.keep_freed_frames()
frame = bytes(640 * 480 * 3)
faults = []

def rounds():
    for n in (5, 50):   # warm up, then count
        start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(n):
            copies = [bytearray(frame) for _ in range(4)]
            del copies
        faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / n)

worker = threading.Thread(target=rounds)
worker.start()
worker.join()
print(applied, faults[-1])
"""

glibc = pytest.mark.skipif(not sys.platform.startswith('linux')
                           or platform.libc_ver()[0] != 'glibc', reason='glibc only')


def _faults_per_round(**env):
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith('MALLOC_') and k != 'MATTE_ROS_HEAP_TUNING'}
    environ.update(env)
    out = subprocess.run([sys.executable, '-c', ROUNDS], env=environ, check=True,
                         capture_output=True, text=True, timeout=60).stdout.split()
    return out[0] == 'True', float(out[1])


@glibc
def test_freed_frames_stay_mapped_only_with_the_setting():
    applied, tuned = _faults_per_round()
    assert applied and tuned < 20, 'page faults per round with the heap setting: %s' % tuned
    applied, untuned = _faults_per_round(MATTE_ROS_HEAP_TUNING='0')
    # without it glibc trims the freed frames away: every round faults them in again
    # (4 x 900 KB = 900 pages); this shows what the setting is for
    assert not applied and untuned > 200, untuned


def test_left_alone_when_the_user_tunes_malloc_or_opts_out():
    assert heap.keep_freed_frames({'MALLOC_ARENA_MAX': '2'}) is False
    assert heap.keep_freed_frames({'GLIBC_TUNABLES': 'glibc.malloc.trim_threshold=1'}) is False
    assert heap.keep_freed_frames({'MATTE_ROS_HEAP_TUNING': '0'}) is False
