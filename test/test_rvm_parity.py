"""
rvm through the pipeline scores like a straight ONNX Runtime loop (reduced DAVIS run).

A short version of ``tools/rvm_parity.py``: the first frames of one DAVIS sequence, at
RVM's usual ratio 0.6 and at the automatic ratio.  Needs ../shared (skips without it).
"""


from conftest import load_tool
from conftest import shared_path
import pytest


def parity_tool():
    return load_tool('rvm_parity')


@pytest.mark.parametrize('ratio', [0.6, 0.0])
def test_pipeline_matches_a_plain_onnxruntime_loop_on_davis(ratio):
    model = shared_path('models', 'rvm_mobilenetv3_fp32.onnx')
    davis = shared_path('data', 'davis2016')
    row = parity_tool().compare('parkour', ratio, max_frames=5, root=davis, model=model)
    assert row['frames'] == 5
    assert row['J_plain'] > 0.8        # the reference loop itself works on parkour
    assert abs(row['dJ']) <= 0.005
    assert row['alpha_diff'] <= 1.0    # mono8 alpha vs float alpha: rounding only
