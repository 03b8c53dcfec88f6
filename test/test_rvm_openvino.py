"""
Segmenter rvm on rvm.runtime openvino: fp32 parity with ONNX Runtime, int8 derivation.

Runs the real RVM model in ../shared/models with OpenVINO (skips when the model, the
DAVIS frames, OpenVINO or NNCF are absent).  The int8 tests derive a real int8 model
with ``matte-ros models derive-int8``'s code from a few 320×240 frames the test takes
from DAVIS parkour (ratio 1, quick); they check the files, the manifest, the checksum
verification and the quality gate, not int8 quality (that is tools/bench_rvm.py's job).
"""

import json
import os

from conftest import davis_frames
from conftest import temporary_user_cache
import cv2
from matte_ros import models
from matte_ros import params
from matte_ros.cli import main as cli_main
from matte_ros.segmenters import create
from matte_ros.segmenters import rvm_int8
from matte_ros.segmenters import rvm_openvino
from matte_ros.segmenters import SegmenterError
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, '..', 'shared')
RVM_FILE = os.path.join(SHARED, 'models', 'rvm_mobilenetv3_fp32.onnx')
SIZE = (320, 240)  # (width, height): long side ≤ 512, so downsample ratio 1


def need(path):
    """Skip the test when a shared file or directory is absent."""
    if not os.path.exists(path):
        pytest.skip('%s absent (tests read ../shared beside the repo)' % path)


def rvm_config(model_dir, runtime='openvino', precision='fp32'):
    """Return a full config that runs RVM from the shared file."""
    need(RVM_FILE)
    pytest.importorskip('openvino', reason='OpenVINO not installed (rvm.runtime openvino)')
    cfg = params.defaults()
    cfg.update({'models.model_path': RVM_FILE, 'models.model_dir': str(model_dir),
                'rvm.runtime': runtime, 'rvm.precision': precision})
    return cfg


@pytest.fixture(scope='module', autouse=True)
def user_cache(tmp_path_factory):
    """Make a temporary folder the user cache ($XDG_CACHE_HOME) for the whole module."""
    yield from temporary_user_cache(tmp_path_factory)


@pytest.fixture(scope='module')
def frames():
    """Return the first 17 DAVIS parkour images at 320×240 (BGR)."""
    return davis_frames('parkour', 17, SIZE)


@pytest.fixture(scope='module')
def derived(user_cache, frames):
    """Derive the int8 model for ratio 1 once (alpha only, as rvm runs); return (dir, manifest)."""
    need(RVM_FILE)
    pytest.importorskip('openvino', reason='OpenVINO not installed')
    pytest.importorskip('nncf', reason='NNCF not installed (matte-ros models derive-int8)')
    model_dir = user_cache / 'derived-here'   # a models.model_dir inside the cache
    manifest = rvm_int8.derive(RVM_FILE, models.sha256_file(RVM_FILE), 1.0, frames[:15],
                               rvm_openvino.openvino_dir({'models.model_dir': str(model_dir)}),
                               source='test frames', log=lambda *_: None, alpha_only=True)
    return model_dir, manifest


def run(segmenter, frames):
    """Return the alphas of the frames, in order."""
    return [segmenter.process(f).alpha for f in frames]


def test_openvino_fp32_matches_onnx_runtime(tmp_path, frames):
    reference = create('rvm', rvm_config(tmp_path, 'onnxruntime'), 'cpu')
    segmenter = create('rvm', rvm_config(tmp_path), 'cpu')
    try:
        expected, got = run(reference, frames[:5]), run(segmenter, frames[:5])
        assert 'OpenVINO fp32' in segmenter.describe()
        for a, b in zip(expected, got):
            assert b.shape == a.shape and b.dtype == np.float32
            assert float(np.abs(a - b).max()) < 2e-3
        # The state is carried: a reset makes frame 5 differ from its carried result.
        carried = segmenter.process(frames[5]).alpha
        segmenter.reset('test')
        fresh = segmenter.process(frames[5]).alpha
        assert float(np.abs(carried - fresh).max()) > 1e-3
    finally:
        reference.close()
        segmenter.close()


def test_openvino_without_foreground_runs_the_alpha_only_model(tmp_path, frames):
    alpha = create('rvm', rvm_config(tmp_path), 'cpu')
    config = rvm_config(tmp_path)
    config['publish_foreground'] = True
    both = create('rvm', config, 'cpu')
    try:
        for frame in frames[:3]:
            a, b = alpha.process(frame), both.process(frame)
            assert a.foreground is None and b.foreground.shape == frame.shape
            np.testing.assert_allclose(a.alpha, b.alpha, atol=1e-5)
        assert alpha.runner.model_file.endswith('.alpha.onnx')
        assert not both.runner.model_file.endswith('.alpha.onnx')
    finally:
        alpha.close()
        both.close()


def test_derived_int8_model_runs_and_is_checked(derived, frames):
    model_dir, manifest = derived
    assert manifest['source_sha256'] == models.sha256_file(RVM_FILE)
    assert manifest['ratio'] == '1.000000'
    assert manifest['calibration']['frames'] == 12  # 15 frames, every 5th held out
    assert manifest['quality']['scored_frames'] == 3
    assert manifest['quality']['mean_iou_vs_fp32'] >= rvm_int8.MIN_IOU
    assert manifest['outputs'] == 'alpha only'
    stem = rvm_openvino.int8_stem(RVM_FILE, manifest['source_sha256'], 1.0,
                                  rvm_openvino.openvino_dir({'models.model_dir': str(model_dir)}),
                                  alpha_only=True)
    with open(stem + '.json', encoding='utf-8') as stream:
        assert json.load(stream)['files']['bin'] == models.sha256_file(stem + '.bin')
    # int8 weights: the .bin is far smaller than the fp32 ONNX.
    assert os.path.getsize(stem + '.bin') < 0.5 * os.path.getsize(RVM_FILE)
    int8 = create('rvm', rvm_config(model_dir, precision='int8'), 'cpu')
    fp32 = create('rvm', rvm_config(model_dir), 'cpu')
    try:
        a8, a32 = run(int8, frames[:3]), run(fp32, frames[:3])
        assert 'OpenVINO int8' in int8.describe() and stem.endswith(
            os.path.splitext(int8.runner.model_file)[0].rsplit('/', 1)[-1])
        for a, b in zip(a8, a32):
            assert a.shape == b.shape
            assert 0 < float(np.abs(a - b).max())  # really another model ...
            union = ((a > 0.5) | (b > 0.5)).sum()
            assert ((a > 0.5) & (b > 0.5)).sum() / union > 0.8  # ... of the same person
    finally:
        int8.close()
        fp32.close()


def copy_int8(source, copy, change=lambda name, data: data):
    """Copy the int8 files (manifest and seal included) from ``source`` to ``copy``."""
    os.makedirs(copy, mode=0o700, exist_ok=True)
    for name in os.listdir(source):
        if '.int8.' in name:
            data = open(os.path.join(source, name), 'rb').read()
            (copy / name).write_bytes(change(name, data))


def test_tampered_int8_model_is_refused(derived, user_cache):
    model_dir, manifest = derived
    source = rvm_openvino.openvino_dir({'models.model_dir': str(model_dir)})
    copy = user_cache / 'copy' / 'openvino'

    def flip_bin(name, data):
        return data[:-1] + bytes([data[-1] ^ 1]) if name.endswith('.bin') else data
    copy_int8(source, copy, flip_bin)
    with pytest.raises(SegmenterError, match='fails its checksum') as err:
        rvm_openvino.int8_model(RVM_FILE, manifest['source_sha256'], 1.0, str(copy),
                                alpha_only=True)
    assert manifest['files']['bin'] not in str(err.value)   # no digest given out
    # the manifest edited to name the changed .bin: its seal no longer matches
    changed = models.sha256_file(str(next(copy.glob('*.bin'))))

    def edit_manifest(name, data):
        if name.endswith('.json'):
            return data.replace(manifest['files']['bin'].encode(), changed.encode())
        return flip_bin(name, data)
    copy_int8(source, copy, edit_manifest)
    with pytest.raises(SegmenterError, match='int8 manifest .* does not match its seal.*'
                                             'derive it again'):
        rvm_openvino.int8_model(RVM_FILE, manifest['source_sha256'], 1.0, str(copy),
                                alpha_only=True)
    for seal in copy.glob('*' + models.SEAL_SUFFIX):
        seal.unlink()
    with pytest.raises(SegmenterError, match='has no readable seal'):
        rvm_openvino.int8_model(RVM_FILE, manifest['source_sha256'], 1.0, str(copy),
                                alpha_only=True)
    # with publish_foreground the model with foreground colours is needed: none derived
    with pytest.raises(SegmenterError, match='--foreground'):
        rvm_openvino.int8_model(RVM_FILE, manifest['source_sha256'], 1.0, str(copy))


def test_int8_without_a_derived_model_fails_configure(tmp_path):
    with pytest.raises(SegmenterError, match='derive-int8'):
        create('rvm', rvm_config(tmp_path, precision='int8'), 'cpu')
    cfg = rvm_config(tmp_path, precision='int8')
    cfg['rvm.downsample_ratio'] = 0.5
    with pytest.raises(SegmenterError, match='ratio 0.500000'):
        create('rvm', cfg, 'cpu')


def test_int8_needs_the_openvino_runtime(tmp_path):
    with pytest.raises(SegmenterError, match='needs rvm.runtime openvino'):
        create('rvm', rvm_config(tmp_path, 'onnxruntime', 'int8'), 'cpu')


def test_quality_gate_writes_nothing(user_cache, frames):
    need(RVM_FILE)
    pytest.importorskip('openvino', reason='OpenVINO not installed')
    pytest.importorskip('nncf', reason='NNCF not installed')
    directory = str(user_cache / 'gate' / 'openvino')
    with pytest.raises(SegmenterError, match='rejected'):
        rvm_int8.derive(RVM_FILE, models.sha256_file(RVM_FILE), 1.0, frames[:15], directory,
                        min_iou=1.01, log=lambda *_: None)
    # Frames without anyone in view cannot be judged: refused as well.
    empty = [np.full_like(frames[0], 90) for _ in range(10)]
    with pytest.raises(SegmenterError, match='cannot judge'):
        rvm_int8.derive(RVM_FILE, models.sha256_file(RVM_FILE), 1.0, empty, directory,
                        log=lambda *_: None)
    assert not [n for n in os.listdir(directory) if '.int8.' in n]


def test_derive_int8_command(tmp_path, frames, capsys):
    need(RVM_FILE)
    pytest.importorskip('openvino', reason='OpenVINO not installed')
    pytest.importorskip('nncf', reason='NNCF not installed')
    images = tmp_path / 'camera'
    images.mkdir()
    for index, frame in enumerate(frames):
        cv2.imwrite(str(images / ('%03d.png' % index)), frame)
    cache = tmp_path / 'cache'
    code = cli_main.main(['models', '--model-dir', str(cache), 'derive-int8', '--calibration',
                          str(images), '--skip', '2', '--model', RVM_FILE])
    out = capsys.readouterr().out
    assert code == 0, out
    assert 'calibrating on 12 frames of 320x240 at ratio 1.000000 (3 held out)' in out
    assert cli_main.main(['models', '--model-dir', str(cache), 'list']) == 0
    assert 'int8 ratio 1.000000 (alpha only): 12 calibration frames' in capsys.readouterr().out
    assert cli_main.main(['models', '--model-dir', str(cache), 'derive-int8', '--calibration',
                          str(tmp_path / 'nowhere'), '--model', RVM_FILE]) == 1
    assert 'does not exist' in capsys.readouterr().out


# --- derived files come only from the user cache ----------------------------------------

def test_files_planted_in_a_model_dir_outside_the_cache_are_never_read(
        derived, user_cache, tmp_path, frames):
    model_dir, manifest = derived
    outside = tmp_path / 'opt-models'   # what a hostile models.model_dir points at
    planted = outside / 'openvino'
    # a complete int8 set with a stolen seal, and a fixed-ratio copy that is garbage
    copy_int8(rvm_openvino.openvino_dir({'models.model_dir': str(model_dir)}), planted)
    (planted / 'rvm_mobilenetv3_fp32.ratio-1.000000.alpha.onnx').write_bytes(b'not a model')
    listing = sorted(os.listdir(planted))
    assert rvm_openvino.openvino_dir({'models.model_dir': str(outside)}) == \
        str(user_cache / 'models' / 'openvino')
    fp32 = create('rvm', rvm_config(outside), 'cpu')
    try:
        assert fp32.runner.directory == str(user_cache / 'models' / 'openvino')
        fp32.process(frames[0])
        assert fp32.runner.model_file.startswith(fp32.runner.directory + os.sep)
        assert os.path.isfile(fp32.runner.model_file + models.SEAL_SUFFIX)
    finally:
        fp32.close()
    assert sorted(os.listdir(planted)) == listing   # nothing written there


def test_an_int8_model_planted_outside_the_cache_is_never_read(derived, tmp_path,
                                                               monkeypatch):
    model_dir, manifest = derived
    outside = tmp_path / 'opt-models'
    copy_int8(rvm_openvino.openvino_dir({'models.model_dir': str(model_dir)}),
              outside / 'openvino')   # a complete set, stolen seal included
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))   # a cache without int8
    with pytest.raises(SegmenterError, match='no int8 model derived yet in %s'
                       % (tmp_path / 'xdg' / 'matte_ros' / 'models' / 'openvino')):
        create('rvm', rvm_config(outside, precision='int8'), 'cpu')
    config = rvm_config(outside, precision='int8')
    config['rvm.downsample_ratio'] = 1.0
    with pytest.raises(SegmenterError, match='no int8 model derived for downsample ratio '
                       '1.000000 in %s' % (tmp_path / 'xdg')):
        create('rvm', config, 'cpu')


def test_derive_int8_refuses_a_folder_outside_the_cache(tmp_path, frames):
    need(RVM_FILE)
    pytest.importorskip('openvino', reason='OpenVINO not installed')
    pytest.importorskip('nncf', reason='NNCF not installed')
    with pytest.raises(models.ModelError, match='outside the model cache'):
        rvm_int8.derive(RVM_FILE, models.sha256_file(RVM_FILE), 1.0, frames[:15],
                        str(tmp_path / 'openvino'), log=lambda *_: None)
    assert not os.path.exists(tmp_path / 'openvino')


def test_a_changed_fixed_ratio_copy_is_written_again(user_cache, frames, caplog):
    segmenter = create('rvm', rvm_config(user_cache / 'models'), 'cpu')
    try:
        segmenter.process(frames[0])
        path = segmenter.runner.model_file
    finally:
        segmenter.close()
    with open(path, 'wb') as stream:
        stream.write(b'not a model')   # changed after matte_ros wrote it
    segmenter = create('rvm', rvm_config(user_cache / 'models'), 'cpu')
    try:
        with caplog.at_level('WARNING'):
            segmenter.process(frames[0])
        assert 'fixed-ratio RVM model %s does not match its seal' % path in caplog.text
        assert segmenter.runner.model_file == path
        assert models.check_sealed(path, 'test') == path   # written again, sealed
    finally:
        segmenter.close()
