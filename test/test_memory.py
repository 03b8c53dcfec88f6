"""
Memory budget: what each segmenter and compositing need, and the pipeline's refusals.

The pipeline refuses (with the figure) a configuration or a frame size over
``memory_budget_mb``.
"""

from matte_ros import memory
from matte_ros import params
from matte_ros.pipeline import Pipeline
from matte_ros.segmenters import segmenter_class
from matte_ros.segmenters import SegmenterError
import numpy as np
import pytest

HD = 1920 * 1080


def values(**extra):
    """Return the core's defaults with ``extra`` (dots written as __) applied."""
    config = params.core_defaults()
    config.update({k.replace('__', '.'): v for k, v in extra.items()})
    return config


def test_consensus_need_is_what_its_model_states_plus_the_alpha():
    from matte_ros.segmenters.bgsub_consensus import SampleConsensus
    bgsub = segmenter_class('bgsub')
    for samples in (2, 10, 64):
        need = bgsub.memory_bytes(values(bgsub__consensus__samples=samples), HD)
        assert need == (SampleConsensus.bytes_per_pixel(samples) + bgsub.ALPHA_BYTES) * HD
        assert need > 3 * samples * HD   # the uint8 samples themselves
    assert bgsub.memory_bytes(values(bgsub__algorithm='mog2'), HD) == \
        (bgsub.MIXTURE_BYTES + bgsub.ALPHA_BYTES) * HD


@pytest.mark.parametrize('name', params.SEGMENTERS)
def test_every_segmenter_states_a_need_that_grows_with_pixels(name):
    cls = segmenter_class(name)
    small = cls.memory_bytes(values(segmenter=name), 640 * 480)
    big = cls.memory_bytes(values(segmenter=name), HD)
    assert 0 < small < big


def test_defaults_fit_the_default_budget_at_max_pixels():
    for name in params.SEGMENTERS:
        config = values(segmenter=name)
        assert memory.check(config, config['max_pixels'], 'max_pixels') <= \
            config['memory_budget_mb'] * memory.MB


def test_pipeline_refuses_a_setting_over_budget_with_the_figure():
    config = values(segmenter='bgsub', bgsub__consensus__samples=64, max_pixels=HD,
                    memory_budget_mb=256)
    need = memory.need_bytes(config, HD)
    with pytest.raises(memory.MemoryBudgetError) as info:
        Pipeline(config)
    assert '%d MB' % -(-need // memory.MB) in str(info.value)
    assert 'memory_budget_mb 256' in str(info.value)


def test_update_and_frames_are_checked_too():
    pipe = Pipeline(values(segmenter='framediff', max_pixels=HD, memory_budget_mb=256))
    with pytest.raises(memory.MemoryBudgetError):
        pipe.update({'max_pixels': 3840 * 2160})
    assert pipe.config['max_pixels'] == HD           # nothing changed
    with pytest.raises(memory.MemoryBudgetError, match='needs 109 MB'):
        pipe.update({'memory_budget_mb': 64})        # framediff at HD: ~109 MB
    assert pipe.config['memory_budget_mb'] == 256
    pipe.update({'memory_budget_mb': 128, 'threshold': 0.7})
    assert pipe.config['memory_budget_mb'] == 128 and pipe.config['threshold'] == 0.7
    small = np.zeros((120, 160, 3), np.uint8)
    assert pipe.process(small).mask.shape == (120, 160)


def test_a_frame_over_budget_is_refused_before_processing():
    pipe = Pipeline(values(segmenter='framediff', max_pixels=64 * 64,
                           memory_budget_mb=64))
    pipe.config = pipe.config.with_updates({'max_pixels': 10 ** 8})  # bypass on purpose
    big = np.zeros((4000, 4000, 3), np.uint8)   # 16 Mpx × ~59 B > 64 MB
    with pytest.raises(memory.MemoryBudgetError, match='frame 4000×4000'):
        pipe.process(big)
    assert pipe.segmenter.resets == 0


def test_the_stabiliser_counts_only_when_enabled():
    from matte_ros import stabilizer
    off = memory.need_bytes(values(), HD)
    on = memory.need_bytes(values(stabilizer__enabled=True), HD)
    assert on - off == stabilizer.BYTES_PER_PIXEL * HD


def test_a_refused_update_changes_nothing():
    # samples 2 and min_matches 3 are each in range, together refused by the model; the
    # compositor's mode in the same update must not be left switched.
    pipeline = Pipeline(values(segmenter='bgsub', bgsub__consensus__samples=2))
    with pytest.raises(SegmenterError, match='min_matches'):
        pipeline.update({'composite.mode': 'color', 'bgsub.consensus.min_matches': 3})
    assert pipeline.compositor.mode == 'blur' and pipeline.config['composite.mode'] == 'blur'
    assert pipeline.segmenter.config['bgsub.consensus.min_matches'] == 2
    pipeline.update({'composite.mode': 'color'})
    assert pipeline.compositor.mode == 'color'
    pipeline.close()


def test_rvm_counts_the_batch_its_frames_may_run_in(monkeypatch):
    from matte_ros import shared_models
    rvm = segmenter_class('rvm')

    def need(batch_max, cameras, ratio=0.0, **extra):
        monkeypatch.setattr(shared_models, 'CAMERAS', cameras)
        return rvm.memory_bytes(values(segmenter='rvm', rvm__batch_max=batch_max,
                                       rvm__downsample_ratio=ratio, **extra), HD)

    # one camera never batches: batch_max costs nothing there
    assert need(1, 1) == need(4, 1) == need(16, 1)
    one, two, four = need(1, 4), need(2, 4), need(4, 4)
    assert one < two < four
    assert four - one == 3 * (two - one)      # each further frame of a batch costs the same
    assert two - one == one - rvm.fixed_bytes  # ... as much as the first frame
    assert need(16, 4) == four                # no batch holds more frames than cameras
    # only ONNX Runtime's CPU runner batches: others count one frame with any batch_max
    for other in ({'backend': 'cuda'}, {'backend': 'tensorrt'},
                  {'rvm__runtime': 'openvino'}, {'rvm__runtime': 'torchscript'}):
        assert need(4, 4, **other) == one, other
    # the model works on the downsampled frame: a set ratio of 1 costs far more
    assert need(1, 1, 1.0) - rvm.fixed_bytes > 4 * (one - rvm.fixed_bytes)


def test_rvm_at_full_ratio_on_4k_is_refused_and_a_batch_is_named(monkeypatch):
    from matte_ros import shared_models
    monkeypatch.setattr(shared_models, 'CAMERAS', 1)
    full = params.Config().with_updates({'segmenter': 'rvm', 'rvm.downsample_ratio': 1.0})
    with pytest.raises(memory.MemoryBudgetError, match='memory_budget_mb') as err:
        memory.check(full.values, 3840 * 2160, 'max_pixels 8294400')   # ~5 GB of activations
    assert 'batch' not in str(err.value)
    # the automatic ratio fits; four cameras batching 4 frames each do not, and say why
    batched = params.Config().with_updates({'segmenter': 'rvm', 'rvm.batch_max': 4,
                                            'rvm.downsample_ratio': 0.5})
    memory.check(batched.values, 3840 * 2160, 'max_pixels 8294400')
    monkeypatch.setattr(shared_models, 'CAMERAS', 4)
    with pytest.raises(memory.MemoryBudgetError,
                       match='a batch of 4 frames: rvm.batch_max 4, 4 cameras'):
        memory.check(batched.values, 3840 * 2160, 'max_pixels 8294400')
