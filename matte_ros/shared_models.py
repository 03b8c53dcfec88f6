"""
Loaded models shared by the segmenters of one process, reference-counted.

One process may serve several cameras (:mod:`matte_ros.ros.multi`): each camera has its
own segmenter, with its own temporal state (RVM's recurrent state, a background model,
a smoothed probability), but the heavy part — the ONNX Runtime session, the LiteRT
interpreter, a TensorRT engine cache — is the same for all of them.  A segmenter asks
:data:`CACHE` for it with a key that says everything that defines the loaded object
(kind, model path and sha256, runtime, backend, options); the first request loads it,
the others take the same object, and the last :meth:`Lease.release` closes it.

The loaded object is stateless between calls (state travels in and out of each call),
but a session serves one call at a time here: each entry carries a :class:`FairLock`
that its users hold around a call.  The lock is first come, first served, so when N
cameras share a session none waits for more than the N - 1 calls queued before its own:
no camera is starved, and a slow camera delays the others by at most its own call.

A single-camera process holds one lease per key (two during a reload, when the new
pipeline is built beside the serving one: the same key then reuses the session).
"""

import threading
from typing import Any
from typing import Callable
from typing import Dict
from typing import Hashable
from typing import Optional


class FairLock:
    """A lock granted in the order it was asked for (a ticket lock), usable with ``with``."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._next = 0      # ticket of the next caller
        self._serving = 0   # ticket that holds the lock

    def acquire(self) -> None:
        """Wait until every earlier caller has had its turn, then hold the lock."""
        with self._cond:
            ticket = self._next
            self._next += 1
            while ticket != self._serving:
                self._cond.wait()

    def release(self) -> None:
        """Pass the lock to the next caller in line."""
        with self._cond:
            self._serving += 1
            self._cond.notify_all()

    def __enter__(self) -> 'FairLock':
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class _Entry:
    """One loaded object, its users and its call lock."""

    def __init__(self, value: Any, close: Optional[Callable[[Any], None]]):
        self.value = value
        self.close = close
        self.users = 0
        self.lock = FairLock()


class Lease:
    """A user's hold on a shared object: ``value``, its call ``lock``, and :meth:`release`."""

    def __init__(self, cache: 'SharedCache', key: Hashable, entry: _Entry):
        self._cache = cache
        self.key = key
        self.value = entry.value
        self.lock = entry.lock
        self._released = False

    @property
    def users(self) -> int:
        """Return how many leases hold the object now (0 once it is closed)."""
        return self._cache.users(self.key)

    def release(self) -> None:
        """Give the object back (once; later calls do nothing); the last user closes it."""
        if not self._released:
            self._released = True
            self._cache._release(self.key)


class SharedCache:
    """Loaded objects by key, each loaded once and closed when its last lease is released."""

    def __init__(self):
        self._entries: Dict[Hashable, _Entry] = {}
        self._lock = threading.Lock()       # guards _entries and the counters
        self._load_lock = threading.Lock()  # one load at a time: a key is never loaded twice
        #: How many objects were loaded (a cache hit does not count): tests and benchmarks.
        self.loads = 0

    def acquire(self, key: Hashable, load: Callable[[], Any],
                close: Optional[Callable[[Any], None]] = None) -> Lease:
        """
        Return a lease on the object of ``key``, calling ``load()`` if nobody holds one.

        ``load`` may be slow (a cache hit does not wait for it; another load does) and
        may raise: the error reaches the caller and nothing is cached.  ``close(value)``
        runs when the last lease is released.
        """
        lease = self._hit(key)
        if lease is not None:
            return lease
        with self._load_lock:
            lease = self._hit(key)   # loaded while this caller waited for the load lock
            if lease is not None:
                return lease
            value = load()
            entry = _Entry(value, close)
            entry.users = 1
            with self._lock:
                self._entries[key] = entry
                self.loads += 1
            return Lease(self, key, entry)

    def _hit(self, key: Hashable) -> Optional[Lease]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            entry.users += 1
            return Lease(self, key, entry)

    def users(self, key: Hashable) -> int:
        """Return how many leases hold the object of ``key`` (0 when none is loaded)."""
        with self._lock:
            entry = self._entries.get(key)
            return entry.users if entry is not None else 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _release(self, key: Hashable) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            entry.users -= 1
            if entry.users > 0:
                return
            del self._entries[key]
        if entry.close is not None:
            with entry.lock:   # a call in progress finishes before the object goes
                entry.close(entry.value)


#: The process's cache: every segmenter built in this process shares through it.
CACHE = SharedCache()
#: Cameras this process serves (at least 1; :mod:`matte_ros.ros.multi` counts its own):
#: at most this many frames ever batch together, so the memory budget counts no larger
#: batch.
CAMERAS = 1
_containers = 0   # cameras of the containers alive in this process


def add_cameras(count: int) -> None:
    """Count ``count`` more cameras served by this process (negative: fewer)."""
    global CAMERAS, _containers
    _containers = max(0, _containers + int(count))
    CAMERAS = max(1, _containers)
