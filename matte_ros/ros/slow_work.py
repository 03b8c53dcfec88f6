"""
Slow work off the executor thread, for services that answer once it is done (bounded).

rclpy runs service callbacks, ``on_configure`` and parameter callbacks on the executor's
one thread; loading a model or a picture there freezes every other service and the
frames.  A service whose request may need slow work is served by a coroutine instead
(:func:`serve_after`): the coroutine starts a :class:`Job` on a thread of its own and
yields to the executor until the job is done (rclpy resumes a pending coroutine each time
the executor wakes; the job wakes it through a guard condition), then runs the original,
synchronous callback, which only commits what the job made.  The service is moved to a
callback group of its own, so the other services (``get_state``, ``get_parameters``,
``~/reset``) and the frames keep being served meanwhile; requests to the slow services
queue behind the one in progress.

The wait is bounded by :data:`WAIT_LIMIT_S`: past it the request is answered as failed
("not applied") and the job's result is discarded when it ends (a model it downloaded
stays in the cache, so repeating the request succeeds at once).
"""

import threading
import time
from typing import Any
from typing import Callable
from typing import Optional

#: Longest time a request waits for its slow work before it is answered as failed (s).
WAIT_LIMIT_S = 30.0


class Job:
    """
    One piece of slow work on a thread of its own; ``wake()`` is called when it ends.

    ``discard`` (given the result) releases a result nobody will take, when the job was
    abandoned (:meth:`abandon`) before it ended.
    """

    def __init__(self, work: Callable[[], Any], wake: Callable[[], None],
                 discard: Optional[Callable[[Any], None]] = None, name: str = 'matte_load'):
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self._work = work
        self._wake = wake
        self._discard = discard
        self._lock = threading.Lock()
        self._abandoned = False
        self._finished = False
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._work()
        except BaseException as exc:  # noqa: B902 - any failure is the job's answer
            self.error = exc
        with self._lock:
            self._finished = True
            abandoned = self._abandoned
        if abandoned:
            self._release()
        self.done.set()
        self._wake()

    def _release(self) -> None:
        if self.error is None and self._discard is not None:
            self._discard(self.result)

    def abandon(self) -> None:
        """Say that nobody takes the result; it is discarded when the job ends."""
        with self._lock:
            if not self._finished:
                self._abandoned = True
                return
        self._release()

    def running(self) -> bool:
        """Tell whether the work is still going on (its result not yet released)."""
        return not self.done.is_set()


class _Until:
    """Awaitable that yields to the executor until ``job`` ends or ``deadline`` passes."""

    def __init__(self, job: Job, deadline: float):
        self.job = job
        self.deadline = deadline

    def __await__(self):
        while self.job.running() and time.monotonic() < self.deadline:
            yield


async def finished(job: Job, wake: Callable[[], None], limit: float = WAIT_LIMIT_S) -> bool:
    """Wait (yielding to the executor) until ``job`` ends, at most ``limit`` s; True if it did."""
    timer = threading.Timer(limit, wake)   # wakes the executor at the deadline
    timer.daemon = True
    timer.start()
    try:
        await _Until(job, time.monotonic() + limit)
    finally:
        timer.cancel()
    return not job.running()


def serve_after(service, before, after, group, logger) -> None:
    """
    Make ``service`` run the coroutine ``before(request)``, its own callback, ``after()``.

    ``before`` prepares what the callback will commit and must not raise (an exception
    is logged and the callback runs as if nothing was prepared); ``after`` releases what
    the callback did not take.  The service moves to ``group`` so that its pending
    requests hold no other callback.
    """
    original = service.callback

    async def call(request, response):
        try:
            await before(request)
        except Exception as exc:  # noqa: B902 - the original callback still answers
            logger.error('preparing %s failed: %s' % (service.srv_type.__name__, exc))
        try:
            return original(request, response)
        finally:
            after()

    call.guarded = getattr(original, 'guarded', False)
    service.callback = call
    service.callback_group = group
    group.add_entity(service)
