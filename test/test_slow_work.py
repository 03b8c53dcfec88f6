"""
Slow work off the executor thread: jobs, the bounded wait, discarding late results.

The coroutine is driven here as rclpy's executor drives a pending service callback:
``send(None)`` each time the executor wakes, until it finishes.
"""

import threading
import time

from matte_ros.ros import slow_work


def drive(coroutine, timeout=10.0):
    """Resume ``coroutine`` until it returns (as the executor does); return its value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            coroutine.send(None)
        except StopIteration as stop:
            return stop.value
        time.sleep(0.005)
    raise AssertionError('the coroutine never finished')


def test_a_job_runs_on_its_own_thread_and_wakes_the_executor():
    woken = threading.Event()
    caller = threading.get_ident()
    job = slow_work.Job(lambda: threading.get_ident(), woken.set)
    assert drive(slow_work.finished(job, lambda: None, limit=5.0)) is True
    assert woken.is_set()
    assert job.result != caller and job.error is None


def test_an_error_is_the_jobs_answer():
    def fail():
        raise ValueError('no such picture')
    job = slow_work.Job(fail, lambda: None)
    assert drive(slow_work.finished(job, lambda: None)) is True
    assert isinstance(job.error, ValueError) and job.result is None


def test_past_the_bound_the_wait_ends_and_a_late_result_is_discarded():
    release = threading.Event()
    discarded = []
    job = slow_work.Job(lambda: release.wait(10.0) and 'pipeline', lambda: None,
                        discard=discarded.append)
    start = time.monotonic()
    assert drive(slow_work.finished(job, lambda: None, limit=0.2)) is False
    assert 0.2 <= time.monotonic() - start < 5.0
    job.abandon()
    assert job.running() and not discarded
    release.set()
    assert job.done.wait(5.0)
    assert discarded == ['pipeline']


def test_abandoning_a_finished_job_discards_at_once():
    discarded = []
    job = slow_work.Job(lambda: 'made', lambda: None, discard=discarded.append)
    job.done.wait(5.0)
    job.abandon()
    assert discarded == ['made']
