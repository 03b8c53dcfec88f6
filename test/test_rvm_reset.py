"""
The rvm-after-a-reset measurement (``tools/rvm_reset.py``) measures what it says.

Its shortcut — reset the pipeline and run frames M… instead of running frames 0…M-1
first — must equal a reset injected inside a run, and its reference must be a run
without a reset.  Small DAVIS frames (320×180), the real model; skips without ../shared.
"""


from conftest import load_tool
from conftest import shared_path
import cv2
from matte_ros.cli import eval_cmd
from matte_ros.pipeline import Pipeline
import numpy as np

SMALL = (320, 180)


def reset_tool():
    return load_tool('rvm_reset')


def small_frames(tool, count):
    davis = shared_path('data', 'davis2016')
    return [(cv2.resize(frame, SMALL, interpolation=cv2.INTER_AREA),
             cv2.resize(truth.astype(np.uint8), SMALL, interpolation=cv2.INTER_NEAREST) > 0)
            for frame, truth in tool.load(davis, 'parkour', count)]


def pipeline():
    model = shared_path('models', 'rvm_mobilenetv3_fp32.onnx')
    return Pipeline(eval_cmd.config_values('rvm', ['models.model_path=' + model]),
                    backend='cpu')


def test_a_reset_at_m_equals_a_reset_inside_a_run():
    tool = reset_tool()
    frames = small_frames(tool, 6)
    measured = pipeline()
    try:
        result = tool.measure(measured, frames, [2, 3], count=3)
    finally:
        measured.close()
    assert sorted(result) == [2, 3]
    for at in (2, 3):
        inside = pipeline()
        plain = pipeline()
        try:
            tool.frame_j(inside, frames[:at])
            inside.reset('injected')
            with_reset = tool.frame_j(inside, frames[at:at + 3])
            without = tool.frame_j(plain, frames[:at + 3])[at:]
        finally:
            inside.close()
            plain.close()
        assert result[at] == (without, with_reset)
        assert min(with_reset) > 0.5                 # rvm finds the runner at this size
        assert with_reset != without, 'the reset changed nothing: the measure cannot fail'
