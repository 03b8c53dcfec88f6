"""
Segmenter ``instance``: person selection, threshold mapping, weights loading.

No Mask R-CNN weights ship with matte_ros, so these tests build a randomly initialised
torchvision ``maskrcnn_resnet50_fpn`` themselves, save its state dict and load it
through the segmenter's real loading code.  Its detections are meaningless; the tests
check shapes, the plumbing from detections to alpha and mask, and the errors.  The
selection and threshold rules are checked on controlled arrays.
"""

import importlib
import os

from matte_ros.segmenters import create
from matte_ros.segmenters import instance
from matte_ros.segmenters import SegmenterError
import numpy as np
import pytest

torch = pytest.importorskip('torch')


def masks_and_scores():
    """Return three controlled person masks (4×6) and their scores."""
    masks = np.zeros((3, 4, 6), np.float32)
    masks[0, 0, 0] = 0.9          # best score, 1 pixel
    masks[1, :, :3] = 0.6         # 12 pixels, mid score
    masks[2, 3, :] = 0.8          # 6 pixels, low score
    return np.array([0.95, 0.7, 0.4], np.float32), masks


def test_select_best_largest_all():
    scores, masks = masks_and_scores()
    best = instance.select_instances(scores, masks, 0.5, 0.3, 'best')
    np.testing.assert_array_equal(best, masks[0])
    largest = instance.select_instances(scores, masks, 0.5, 0.3, 'largest')
    np.testing.assert_array_equal(largest, masks[1])
    union = instance.select_instances(scores, masks, 0.5, 0.3, 'all')
    np.testing.assert_array_equal(union, np.maximum(masks[0], masks[1]))  # 0.4 < confidence
    everyone = instance.select_instances(scores, masks, 0.0, 0.3, 'all')
    np.testing.assert_array_equal(everyone, masks.max(axis=0))
    assert not instance.select_instances(scores, masks, 0.96, 0.3, 'all').any()
    # 'largest' counts pixels above mask_threshold: at 0.7 mask 1 has none, mask 0 one.
    assert instance.select_instances(scores, masks, 0.5, 0.7, 'largest')[0, 0] == 0.9
    with pytest.raises(SegmenterError, match='instance.select'):
        instance.select_instances(scores, masks, 0.5, 0.3, 'biggest')


@pytest.mark.parametrize('mask_threshold,threshold', [(0.3, 0.5), (0.7, 0.5), (0.5, 0.2),
                                                      (0.0, 0.5), (1.0, 0.5)])
def test_remap_puts_mask_threshold_on_the_pipeline_threshold(mask_threshold, threshold):
    prob = np.random.default_rng(1).random((50, 60)).astype(np.float32)
    prob[0, :4] = [0.0, 1.0, mask_threshold, np.nextafter(np.float32(mask_threshold), 2)]
    alpha = instance.remap(prob, mask_threshold, threshold)
    assert alpha.dtype == np.float32 and alpha.shape == prob.shape
    np.testing.assert_array_equal(alpha > threshold, prob > mask_threshold)
    order = np.argsort(prob, axis=None)
    assert (np.diff(alpha.ravel()[order]) >= 0).all()  # monotone: soft edges kept
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """Save the state dict of a randomly initialised Mask R-CNN (built here, 2 classes)."""
    from matte_ros.segmenters import torchvision_ops
    torchvision_ops.import_torchvision()
    from torchvision.models.detection import maskrcnn_resnet50_fpn
    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=2)
    path = tmp_path_factory.mktemp('instance') / 'random_maskrcnn.pth'
    torch.save(model.state_dict(), str(path))
    return path


@pytest.fixture
def small_input(monkeypatch):
    """Run the detector at a small input size (the test frames are small)."""
    monkeypatch.setattr(instance.InstanceSegmenter, 'min_size', 64)
    monkeypatch.setattr(instance.InstanceSegmenter, 'max_size', 96)


def config(path, **extra):
    values = {'instance.weights': str(path), 'instance.confidence': 0.0,
              'instance.mask_threshold': 0.3, 'instance.select': 'all', 'threshold': 0.5}
    values.update(extra)
    return values


def test_random_model_loads_and_its_detections_become_the_matte(weights, small_input):
    from matte_ros.pipeline import Pipeline
    pipeline = Pipeline({'segmenter': 'instance', 'instance.weights': str(weights),
                         'instance.confidence': 0.0, 'instance.select': 'all',
                         'composite.mode': 'none'}, backend='cpu')
    seg = pipeline.segmenter
    assert isinstance(seg, instance.InstanceSegmenter)
    assert 'maskrcnn_resnet50_fpn' in seg.describe()
    seg.model.rpn._post_nms_top_n['testing'] = 30   # fewer proposals: a faster test
    seg.model.roi_heads.detections_per_img = 8
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    scores, masks = seg.detect(frame)
    assert masks.shape[1:] == (48, 64) and len(scores) == len(masks)
    assert len(scores) > 0, 'the random model should report some low-confidence persons'
    result = pipeline.process(frame)
    assert result.mask.shape == (48, 64) and result.alpha.shape == (48, 64)
    expected = masks.max(axis=0) > 0.3           # select all, confidence 0
    np.testing.assert_array_equal(result.mask > 0, expected)

    pipeline.update({'instance.select': 'best'})
    best = pipeline.process(frame)
    np.testing.assert_array_equal(best.mask > 0, masks[int(np.argmax(scores))] > 0.3)

    pipeline.update({'instance.confidence': 1.0})  # no random detection scores 1.0
    assert not pipeline.process(frame).mask.any()
    pipeline.close()


def test_wrong_shape_weights_fail_with_what_and_where(weights, tmp_path, small_input):
    state = torch.load(str(weights), weights_only=True)
    state['backbone.body.conv1.weight'] = torch.zeros(8, 3, 3, 3)
    bad = tmp_path / 'bad.pth'
    torch.save(state, str(bad))
    with pytest.raises(SegmenterError, match='does not fit maskrcnn_resnet50_fpn') as err:
        create('instance', config(bad))
    assert str(bad) in str(err.value) and 'conv1' in str(err.value)


def test_missing_or_unsafe_weights_are_refused(tmp_path):
    with pytest.raises(SegmenterError, match='set instance.weights'):
        create('instance', config(''))
    with pytest.raises(SegmenterError, match='no file at'):
        create('instance', config(tmp_path / 'absent.pth'))
    pickled = tmp_path / 'object.pth'
    torch.save({'model': Exotic()}, str(pickled))   # a pickled object, not tensors
    with pytest.raises(SegmenterError, match='not a tensors-only state dict'):
        create('instance', config(pickled))
    other = tmp_path / 'other.pth'
    torch.save({'weight': torch.zeros(2)}, str(other))
    with pytest.raises(SegmenterError, match='not a torchvision Mask R-CNN state dict'):
        create('instance', config(other))


class Exotic:
    """An arbitrary class: weights_only loading must not unpickle it."""


@pytest.fixture
def user_cache(monkeypatch, tmp_path):
    """Make tmp_path/xdg the user cache; return its model cache directory (not made)."""
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    return tmp_path / 'xdg' / 'matte_ros' / 'models'


def published_as(monkeypatch, path):
    """
    Make torchvision's table name ``path``'s bytes as the published COCO weights.

    The stand-in has the two members the loader uses: ``url`` (its file name carries the
    sha256 prefix, as torchvision's names do) and ``get_state_dict``, which must not be
    called here (no network: a download attempt fails the test).
    """
    import hashlib
    import types
    prefix = hashlib.sha256(open(path, 'rb').read()).hexdigest()[:8]

    def get_state_dict(*args, **kwargs):
        raise AssertionError('a download was attempted')
    url = 'https://download.pytorch.org/models/maskrcnn_resnet50_fpn_coco-%s.pth' % prefix
    stand_in = types.SimpleNamespace(url=url, get_state_dict=get_state_dict)
    monkeypatch.setattr(instance, 'torchvision_weights', lambda choice: stand_in)
    return url


def test_torchvision_weights_come_from_the_model_cache(weights, user_cache, monkeypatch,
                                                       small_input):
    # torchvision's own table gives the URL; the cache file is named as torch.hub names it
    url = instance.torchvision_weights('torchvision').url
    assert url.endswith('/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth')
    _, target = instance.torchvision_target(url, {'models.model_dir': str(user_cache)})
    assert target == str(user_cache / 'torchvision' / url.rsplit('/', 1)[1])
    # a state dict the test made, published under its own sha256 prefix and placed where
    # the download would go: used as is (no network here)
    url = published_as(monkeypatch, weights)
    directory, target = instance.torchvision_target(url, {'models.model_dir': str(user_cache)})
    os.makedirs(directory)
    os.symlink(str(weights), target)
    seg = create('instance', config('torchvision', **{'models.model_dir': str(user_cache)}))
    assert seg.weights_file == target and target in seg.describe()
    state = torch.load(str(weights), weights_only=True)
    name = 'roi_heads.mask_predictor.mask_fcn_logits.weight'
    assert torch.equal(seg.model.state_dict()[name], state[name])
    seg.close()


def test_a_cached_file_that_is_not_the_published_one_is_refused(weights, user_cache):
    # the published name (prefix bf2d0c1e) holding other weights: hashed, refused unloaded
    url = instance.torchvision_weights('torchvision').url
    directory, target = instance.torchvision_target(url, {'models.model_dir': str(user_cache)})
    os.makedirs(directory)
    os.symlink(str(weights), target)
    with pytest.raises(SegmenterError, match='cached file %s is not the published one .*'
                       'bf2d0c1e.*not loaded; delete it' % target):
        create('instance', config('torchvision', **{'models.model_dir': str(user_cache)}))


def test_a_cached_file_is_loaded_tensors_only(user_cache, monkeypatch, tmp_path):
    pickled = tmp_path / 'object.pth'
    torch.save({'model': Exotic()}, str(pickled))   # right prefix, a pickled object
    url = published_as(monkeypatch, pickled)
    directory, target = instance.torchvision_target(url, {'models.model_dir': str(user_cache)})
    os.makedirs(directory)
    os.rename(pickled, target)
    with pytest.raises(SegmenterError, match='is not a tensors-only state dict'):
        create('instance', config('torchvision', **{'models.model_dir': str(user_cache)}))


def test_weights_planted_in_a_model_dir_outside_the_cache_are_never_read(
        weights, user_cache, monkeypatch, tmp_path):
    url = published_as(monkeypatch, weights)   # even a file with the right hash prefix
    outside = tmp_path / 'opt-models'          # what a hostile models.model_dir points at
    planted = outside / 'torchvision' / url.rsplit('/', 1)[1]
    os.makedirs(planted.parent)
    os.symlink(str(weights), planted)
    values = {'models.model_dir': str(outside), 'models.auto_fetch': False}
    _, target = instance.torchvision_target(url, values)
    assert target == str(user_cache / 'torchvision' / planted.name)
    with pytest.raises(SegmenterError, match='not in the model cache .*at %s' % target):
        create('instance', config('torchvision', **values))
    assert os.listdir(outside) == ['torchvision'] and not os.path.exists(user_cache)


def test_torchvision_weights_offline_say_what_file_to_place_where(user_cache):
    cache = str(user_cache)
    for choice in ('torchvision', 'torchvision_v2'):
        url = instance.torchvision_weights(choice).url
        _, target = instance.torchvision_target(url, {'models.model_dir': cache})
        with pytest.raises(SegmenterError) as err:
            offline = {'models.model_dir': cache, 'models.auto_fetch': False}
            create('instance', config(choice, **offline))
        assert url in str(err.value) and ('at %s' % target) in str(err.value)


def test_pure_torch_nms_keeps_what_greedy_suppression_keeps():
    from matte_ros.segmenters import torchvision_ops
    gen = torch.Generator().manual_seed(3)
    corner = torch.rand(200, 2, generator=gen) * 100
    boxes = torch.cat([corner, corner + 5 + torch.rand(200, 2, generator=gen) * 40], 1)
    scores = torch.rand(200, generator=gen)
    kept = torchvision_ops.nms(boxes, scores, 0.4).tolist()

    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
        return inter / (area - inter)

    expected = []
    for i in sorted(range(200), key=lambda k: -float(scores[k])):
        if all(iou(boxes[i].tolist(), boxes[j].tolist()) <= 0.4 for j in expected):
            expected.append(i)
    assert kept == expected
    assert 10 < len(kept) < 200  # some, not all, suppressed
    assert torchvision_ops.nms(boxes[:0], scores[:0], 0.4).numel() == 0


def test_grid_sample_roi_align_matches_torchvision_sampling():
    from matte_ros.segmenters import torchvision_ops
    torchvision_ops.import_torchvision()
    eager = importlib.import_module('torchvision.ops.roi_align')._roi_align
    eager = torchvision_ops._EAGER_ROI_ALIGN or getattr(eager, '__wrapped__', eager)
    gen = torch.Generator().manual_seed(5)
    features = torch.rand(2, 8, 20, 30, generator=gen)
    corner = torch.rand(40, 2, generator=gen) * torch.tensor([100.0, 60.0])
    boxes = torch.cat([corner, corner + 1 + torch.rand(40, 2, generator=gen) * 20], 1)
    rois = torch.cat([torch.randint(0, 2, (40, 1), generator=gen).float(), boxes], 1)
    for aligned in (False, True):
        ours = torchvision_ops.roi_align(features, rois, 0.25, 7, 5, 2, aligned)
        torch.testing.assert_close(ours, eager(features, rois, 0.25, 7, 5, 2, aligned),
                                   rtol=1e-5, atol=1e-5)
    # torchvision's C++ kernel counts samples more than 1 px off the map as 0 (its
    # pure-Python transcription clamps them instead): a box far outside pools to 0.
    far = torch.tensor([[0.0, 200.0, 150.0, 260.0, 190.0]])
    assert not torchvision_ops.roi_align(features, far, 0.25, 7, 7, 2, False).any()


def test_an_unsafe_file_in_the_torchvision_cache_is_refused_without_blocking(user_cache):
    cache = str(user_cache)
    url = instance.torchvision_weights('torchvision').url
    directory, target = instance.torchvision_target(url, {'models.model_dir': cache})
    os.makedirs(directory)
    os.mkfifo(target)   # torch.hub would block reading it
    with pytest.raises(SegmenterError, match='cached file is unusable.*not a regular file'):
        create('instance', config('torchvision', **{'models.model_dir': cache}))
