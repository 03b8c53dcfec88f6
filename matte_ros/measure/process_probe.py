"""
What a running process holds, read from ``/proc`` (Linux; ROS-free).

The reliability harness samples the node's resident memory, threads and open file
descriptors before and after lifecycle cycles and during a soak, to show that nothing
leaks.  Reading ``/proc/<pid>`` needs no cooperation from the process.
"""

from dataclasses import dataclass
import os
from typing import Optional


@dataclass(frozen=True)
class Usage:
    """One sample of a process: resident memory (KiB), thread count, open fds."""

    rss_kb: int
    threads: int
    fds: int

    def rss_mb(self) -> float:
        """Return the resident set size in MiB."""
        return self.rss_kb / 1024.0


def rss_kb(pid: int) -> int:
    """Return the resident set size of ``pid`` in KiB (``VmRSS`` of /proc/pid/status)."""
    with open('/proc/%d/status' % pid) as stream:
        for line in stream:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise OSError('no VmRSS for process %d (a zombie?)' % pid)


def threads(pid: int) -> int:
    """Return the number of threads of ``pid`` (entries of /proc/pid/task)."""
    return len(os.listdir('/proc/%d/task' % pid))


def fds(pid: int) -> int:
    """Return the number of open file descriptors of ``pid`` (entries of /proc/pid/fd)."""
    return len(os.listdir('/proc/%d/fd' % pid))


def sample(pid: Optional[int] = None) -> Usage:
    """Return the :class:`Usage` of ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    return Usage(rss_kb(pid), threads(pid), fds(pid))


def supported() -> bool:
    """Tell whether this system has the /proc files the probe reads."""
    return os.path.isfile('/proc/self/status') and os.path.isdir('/proc/self/task')
