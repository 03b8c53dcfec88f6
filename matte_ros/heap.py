"""
Heap settings for the processes that move camera frames: keep freed frame buffers.

glibc hands a freed block above its mmap threshold back to the kernel and trims free memory
at the top of a heap beyond its trim threshold.  It raises both as blocks are freed, but
only to one block's size (mmap) and twice that (trim), while rclpy and Fast DDS allocate
and free several frame-sized buffers per message (the serialised payload, the C message,
the Python array): freed together, they are trimmed, and the next message is copied into
fresh pages, faulted in 4 KiB at a time.  Measured here, one
hop of a 640x480 bgr8 image between two rclpy processes: ~650 minor page faults per message
at the subscriber and 2.3 ms median; with the thresholds below in both processes, 5 faults
and 1.2 ms.  Freed memory up to the trim threshold then stays at the top of each malloc
heap (glibc keeps one per thread that allocates, at most 8 per core), so RSS can sit
above what the process uses and creep towards that bound: the benchmark's overload runs
saw RSS move by -1.6 to 9.9 MiB over a run (a 16 MiB trim threshold gave the same VGA hop,
1.3 ms: the way to bound it tighter if that creep matters).

Set before the first frame, by each entry point that moves frames (node, player, recorder,
echo node, ``matte-ros``).  Left alone where the user tuned malloc through the environment,
on C libraries other than glibc, or with ``MATTE_ROS_HEAP_TUNING=0``.
"""

import ctypes
import functools
import os
import platform
import sys

#: mallopt() parameter numbers, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap (glibc's upper bound on 64-bit: 32 MiB; a
#: 3840x2160 bgr8 frame is 24 MiB).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of a heap up to this size is kept for the next frame.
TRIM_THRESHOLD = 64 << 20


def _user_tuned(environ) -> bool:
    """Return True when the environment already tunes malloc (glibc reads these itself)."""
    if any(key.startswith('MALLOC_') for key in environ):
        return True
    return 'glibc.malloc' in environ.get('GLIBC_TUNABLES', '')


@functools.lru_cache(maxsize=None)
def _set_thresholds() -> bool:
    """Call glibc's mallopt() once per process; return whether both settings took."""
    if not sys.platform.startswith('linux') or platform.libc_ver()[0] != 'glibc':
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # The mmap threshold first: setting it also stops glibc adjusting both on its own.
    return (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)


def keep_freed_frames(environ=None) -> bool:
    """
    Raise glibc's mmap and trim thresholds for this process; return whether they are set.

    Idempotent.  False (and nothing changed) when not on Linux glibc, when the
    environment tunes malloc already, or when ``MATTE_ROS_HEAP_TUNING=0``.
    """
    environ = os.environ if environ is None else environ
    if environ.get('MATTE_ROS_HEAP_TUNING', '1') == '0' or _user_tuned(environ):
        return False
    return _set_thresholds()
