"""
A one-place mailbox between the subscription callback and the processing thread.

Only the latest frame waits: a frame that arrives while another is waiting replaces
it, and the replaced one is counted as dropped.  So the node never builds a queue
and its latency stays bounded under overload.
"""

import threading
from typing import Any
from typing import Callable
from typing import Optional


class FrameSlot:
    """Hold at most one pending item; ``put`` replaces, ``take`` waits."""

    def __init__(self, merge: Optional[Callable[[Any, Any], Any]] = None):
        """``merge(dropped, newest)``: what waits instead of ``newest`` when it drops one."""
        self._merge = merge
        self._cond = threading.Condition()
        self._item: Any = None
        self._closed = False
        self.dropped = 0

    def put(self, item: Any) -> None:
        """Offer the newest item, dropping any item still waiting."""
        with self._cond:
            if self._item is not None:
                self.dropped += 1
                if self._merge is not None:
                    item = self._merge(self._item, item)
            self._item = item
            self._cond.notify()

    def take(self, timeout: Optional[float] = None) -> Any:
        """Return the waiting item (None on timeout or once closed)."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return None if self._closed else item

    def close(self) -> None:
        """Wake the consumer for good; later ``take`` calls return None."""
        with self._cond:
            self._closed = True
            self._item = None
            self._cond.notify_all()

    def reopen(self) -> None:
        """Accept items again after :meth:`close`."""
        with self._cond:
            self._closed = False
