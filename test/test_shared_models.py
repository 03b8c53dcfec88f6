"""
The per-process model cache: loaded once, closed with its last user, taken in turn.

And the point of it: two rvm segmenters sharing one ONNX Runtime session, fed two
interleaved streams, give each stream the alphas that a segmenter of its own gives.
"""

import threading
import time

from conftest import davis_frames
from conftest import shared_path
from matte_ros import params
from matte_ros import segmenters
from matte_ros import shared_models
from matte_ros.segmenters import rvm_runner
import numpy as np
import pytest


def test_a_key_is_loaded_once_and_closed_with_its_last_lease():
    cache = shared_models.SharedCache()
    closed = []
    first = cache.acquire('k', lambda: object(), closed.append)
    second = cache.acquire('k', lambda: pytest.fail('loaded twice'), closed.append)
    other = cache.acquire('other', lambda: 'o')
    assert first.value is second.value and cache.loads == 2 and first.users == 2
    first.release()
    first.release()   # a second release of the same lease does nothing
    assert closed == [] and second.users == 1
    second.release()
    assert closed == [first.value] and cache.users('k') == 0 and len(cache) == 1
    other.release()
    third = cache.acquire('k', lambda: 'new')
    assert third.value == 'new' and cache.loads == 3


def test_a_failed_load_caches_nothing():
    cache = shared_models.SharedCache()

    def broken():
        raise RuntimeError('no such model')

    with pytest.raises(RuntimeError):
        cache.acquire('k', broken)
    assert len(cache) == 0 and cache.acquire('k', lambda: 1).value == 1


def test_the_call_lock_serves_waiters_in_arrival_order():
    lock = shared_models.FairLock()
    order = []
    lock.acquire()   # held: the others queue up in the order they start
    threads = []
    for i in range(5):
        thread = threading.Thread(target=lambda i=i: (lock.acquire(), order.append(i),
                                                      lock.release()))
        thread.start()
        threads.append(thread)
        while lock._next != i + 2:   # wait until this one holds its ticket
            time.sleep(0.001)
    lock.release()
    for thread in threads:
        thread.join(5.0)
    assert order == [0, 1, 2, 3, 4]


def _queued(batcher) -> int:
    """Return how many users wait for the held session with a ticket (their frame pending)."""
    lock = batcher.session
    with lock._cond:
        return lock._next - lock._serving - 1   # the holder's own ticket is not a wait


def _run_queued(batcher, jobs) -> None:
    """
    Run ``jobs`` (each a camera's ``process`` call) queued for the session in this order.

    The session is held while each job starts and takes its ticket, then let go, so the
    first job's frame leads the first batch with every other frame waiting.
    """
    threads = []
    batcher.session.acquire()
    try:
        for job in jobs:
            threads.append(threading.Thread(target=job))
            threads[-1].start()
            end = time.monotonic() + 30.0
            while _queued(batcher) < len(threads) and time.monotonic() < end:
                time.sleep(0.001)
    finally:
        batcher.session.release()
    for thread in threads:
        thread.join(60.0)


def _rvm_config():
    return dict(params.defaults(), **{
        'segmenter': 'rvm',
        'models.model_path': shared_path('models', 'rvm_mobilenetv3_fp32.onnx'),
        'models.auto_fetch': False, 'rvm.downsample_ratio': 0.5})


def test_rvm_streams_on_one_shared_session_equal_their_own_sessions(monkeypatch):
    # a cache of its own: segmenters of earlier tests may still hold the model
    monkeypatch.setattr(shared_models, 'CACHE', shared_models.SharedCache())
    config = _rvm_config()
    size = (224, 128)
    streams = [davis_frames(name, 4, size) for name in ('parkour', 'dance-twirl')]
    loads = shared_models.CACHE.loads
    shared = [segmenters.create('rvm', config, 'cpu') for _ in streams]
    assert shared_models.CACHE.loads == loads + 1
    assert shared[0].runner.users == 2
    monkeypatch.setattr(shared_models, 'CACHE', None)   # build private runners
    own = [segmenters.create('rvm', config, 'cpu') for _ in streams]
    assert not isinstance(own[0].runner, rvm_runner.SharedRunner)
    try:
        for i in range(4):
            for k in range(2):
                got = shared[k].process(streams[k][i], 10.0 + i, 'cam%d' % k).alpha
                want = own[k].process(streams[k][i], 10.0 + i, 'cam%d' % k).alpha
                assert np.abs(got - want).max() <= 1e-5, 'stream %d frame %d' % (k, i)
        # the streams differ, so a state mixed up between them would show
        assert np.abs(shared[0].state.r4 - shared[1].state.r4).max() > 1e-3
    finally:
        for seg in shared + own:
            seg.close()


@pytest.mark.parametrize('batch_max, batches_per_frame', [(4, 1), (2, 2), (1, 3)])
def test_rvm_frames_waiting_together_run_as_one_batch_equal_to_their_own_sessions(
        monkeypatch, batch_max, batches_per_frame):
    # three cameras' frames wait together: rvm.batch_max 4 runs them as one batch,
    # 2 as a batch of two and one alone, 1 one by one; every alpha equals a private run
    # (no settling: each first frame is then one inference, so the count is per round)
    monkeypatch.setattr(shared_models, 'CACHE', shared_models.SharedCache())
    config = dict(_rvm_config(), **{'rvm.batch_max': batch_max, 'rvm.settle_frames': 0})
    size = (224, 128)
    streams = [davis_frames(name, 3, size) for name in ('parkour', 'dance-twirl')]
    streams.append(streams[0][::-1])   # a third camera, its own stream
    shared = [segmenters.create('rvm', config, 'cpu') for _ in streams]
    batcher = shared[0].runner.batcher
    monkeypatch.setattr(shared_models, 'CACHE', None)
    own = [segmenters.create('rvm', config, 'cpu') for _ in streams]
    try:
        for i in range(3):
            got = [None] * len(streams)
            batches = batcher.batches

            def work(k):
                got[k] = shared[k].process(streams[k][i], 10.0 + i, 'cam%d' % k).alpha

            _run_queued(batcher, [lambda k=k: work(k) for k in range(len(streams))])
            assert batcher.batches == batches + batches_per_frame, (
                'three frames with rvm.batch_max %d' % batch_max)
            for k in range(len(streams)):
                want = own[k].process(streams[k][i], 10.0 + i, 'cam%d' % k).alpha
                assert np.abs(got[k] - want).max() <= 1e-5, 'camera %d frame %d' % (k, i)
    finally:
        for seg in shared + own:
            seg.close()


def test_cameras_that_differ_in_batch_max_or_foreground_share_one_session(monkeypatch):
    # rvm.batch_max and publish_foreground decide per call, not what is loaded: one
    # session for all three cameras, each camera's frames with what it asked for
    monkeypatch.setattr(shared_models, 'CACHE', shared_models.SharedCache())
    base = dict(_rvm_config(), **{'rvm.settle_frames': 0})
    configs = [dict(base, **{'rvm.batch_max': 1}),
               dict(base, **{'rvm.batch_max': 4, 'publish_foreground': True}),
               dict(base, **{'rvm.batch_max': 2})]
    loads = shared_models.CACHE.loads
    shared = [segmenters.create('rvm', config, 'cpu') for config in configs]
    try:
        assert shared_models.CACHE.loads == loads + 1
        assert shared[0].runner.users == 3
        batcher = shared[0].runner.batcher
        frame = davis_frames('parkour', 1, (224, 128))[0]
        results = [seg.process(frame, 10.0, 'cam') for seg in shared]
        assert results[1].foreground is not None
        assert results[0].foreground is None and results[2].foreground is None
        # with all three frames waiting, the camera that leads decides the batch's bound:
        # camera 0 (1) runs alone, then camera 1 (4) takes the other two; camera 1 first
        # takes all three
        for stamp, (leader, batches) in enumerate(((0, 2), (1, 1)), 11):
            before = batcher.batches
            order = [leader] + [k for k in range(3) if k != leader]
            _run_queued(batcher, [lambda k=k, stamp=stamp: shared[k].process(
                frame, float(stamp), 'cam') for k in order])
            assert batcher.batches - before == batches, 'leader camera %d' % leader
    finally:
        for seg in shared:
            seg.close()
