"""
A frame the node drops under load is no gap in the camera's stream.

rvm resets its recurrent state when the stamp jumps by more than ``rvm.max_gap``.  A
node slower than its camera drops frames (latest-frame mailbox), so the frames it
processes are further apart than the camera sent them; judged on those, every frame
of a slow stream looked like a jump, reset the state and (with ``rvm.settle_frames``)
paid the settling runs again: four rvm cameras in one process fell from about 8 to
2 fps in ``matte-ros bench --cameras``.  The gap rule now judges the stream: the
mailbox carries the largest stamp step among the frames that arrived.
"""

import os

from conftest import ENV
from conftest import shared_path
from live_node import LiveNode
from live_node import textured_frames
from matte_ros import params
from matte_ros.frame_slot import FrameSlot
from matte_ros.pipeline import Pipeline
from matte_ros.ros.node import Arrival
from matte_ros.segmenters.base import Continuity


def test_continuity_judges_the_stream_step_when_given():
    rule = Continuity(max_gap=1.0)
    assert rule.check((4, 4, 3), 10.0, 'cam') is None
    rule.stream_gap = 0.05             # frames in between were dropped, none far apart
    assert rule.check((4, 4, 3), 15.0, 'cam') is None
    assert rule.check((4, 4, 3), 17.0, 'cam').startswith('stamp jumped by 2.000')
    rule.stream_gap = 1.5              # the camera itself paused, frames dropped after
    assert rule.check((4, 4, 3), 17.2, 'cam').startswith('stamp jumped by 1.500')
    rule.stream_gap = 0.05             # backwards is judged on the frames, as before
    assert rule.check((4, 4, 3), 16.0, 'cam') == 'stamp went backwards'
    assert rule.stream_gap is None     # used once


def test_the_mailbox_keeps_the_largest_step_of_the_frames_it_dropped():
    slot = FrameSlot(merge=Arrival.merge)
    slot.put(Arrival('a', 0.03))
    slot.put(Arrival('b', 2.0))
    slot.put(Arrival('c', 0.03))
    got = slot.take(0.1)
    assert (got.msg, got.gap, slot.dropped) == ('c', 2.0, 2)
    slot.put(Arrival('d', None))       # first frame after activation: no step known
    slot.put(Arrival('e', 0.04))
    got = slot.take(0.1)
    assert (got.msg, got.gap) == ('e', 0.04)
    slot.put(Arrival('f', 0.5))
    slot.put(Arrival('g', None))
    assert slot.take(0.1).gap == 0.5


def _rvm_values(**more):
    values = params.defaults()
    values.update({'segmenter': 'rvm', 'backend': 'cpu', 'models.auto_fetch': False,
                   'models.model_path': shared_path('models', 'rvm_mobilenetv3_fp32.onnx'),
                   'rvm.downsample_ratio': 0.5, 'rvm.max_gap': 1.0,
                   'rvm.settle_frames': 0, 'composite.mode': 'none'})
    values.update(more)
    return values


def test_pipeline_passes_the_stream_step_to_the_segmenter():
    frame = textured_frames(1, 96, 128)[0]
    pipeline = Pipeline(_rvm_values())
    try:
        pipeline.process(frame, 10.0, 'cam')
        pipeline.process(frame, 13.0, 'cam', stream_gap=0.07)
        assert pipeline.segmenter.resets == 0
        pipeline.process(frame, 16.0, 'cam')
        assert pipeline.segmenter.resets == 1
        assert pipeline.segmenter.last_reset_reason.startswith('stamp jumped by 3.000')
    finally:
        pipeline.close()


def test_a_slow_node_dropping_frames_does_not_reset_rvm_on_every_frame(client_node,
                                                                       tmp_path):
    # rvm at 640x480 takes far longer than the 0.1 s max_gap set here, while the camera
    # sends every 1/30 s: the node drops most frames, the stream has no gap
    values = {k: v for k, v in _rvm_values(**{'rvm.max_gap': 0.1,
                                              'rvm.downsample_ratio': 0.75,
                                              'max_pixels': 640 * 480,   # the budget
                                              'diagnostics_period': 0.25}).items()
              if k in ('segmenter', 'backend', 'models.auto_fetch', 'models.model_path',
                       'rvm.downsample_ratio', 'rvm.max_gap', 'rvm.settle_frames',
                       'max_pixels',
                       'composite.mode', 'diagnostics_period')}
    node = LiveNode(client_node, '/stream_gaps', values, ENV,
                    os.path.join(str(tmp_path), 'node.log'))
    try:
        node.configure_activate()
        frames = textured_frames(4, 480, 640)
        sent = 0
        for second in range(3):
            for k in range(30):
                node.send(frames[sent % 4], 100 + second, k * 33_333_333)
                sent += 1
                node.spin(1.0 / 30)
        assert node.spin(20.0, lambda: node.counts['mask'] >= 3), node.log_tail()
        assert node.wait_diagnostics(lambda n: n.counter('dropped') > 10), node.log_tail()
        processed = node.counts['mask']
        assert processed < sent / 2, 'the node was not slower than the camera'
        assert node.counter('resets') == 0, (
            'rvm reset %s times (%s) on a stream without gaps'
            % (node.diagnostics.get('resets'), node.diagnostics.get('last_reset_reason')))
        # a real pause of the camera still resets
        node.send(frames[0], 110, 0)
        assert node.wait_output(110), node.log_tail()
        assert node.wait_diagnostics(lambda n: n.counter('resets') == 1), node.diagnostics
        assert node.diagnostics['last_reset_reason'].startswith('stamp jumped')
    finally:
        node.stop()
