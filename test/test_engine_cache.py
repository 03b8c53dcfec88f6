"""
``tensorrt.engine_cache``: TensorRT writes there, so it follows the model cache's rule.

A client on the robot's network can set the parameter; the value must not let the node
write outside the user's cache (``$XDG_CACHE_HOME/matte_ros``): no folder elsewhere, no
symlink leading out of the cache, nothing in /proc, /sys or /dev, nothing under a folder
of another user or one writable by others.  Refused when the value is set (schema,
Config, the CLI's ``--param``) with a reason naming the parameter, and again where the
folders are made (a symlink swapped in after the value was accepted).  TensorRT is
robot-only: the runner is exercised on the stand-ins of test/standins.py.
"""

import os

from matte_ros import models
from matte_ros import params
from matte_ros.pipeline import Pipeline
from matte_ros.segmenters import create
from matte_ros.segmenters import rvm as rvm_module
from matte_ros.segmenters import SegmenterError
import numpy as np
import pytest

from conftest import shared_path  # noqa: I100 (test helpers, not packages)
import standins  # noqa: I100

NAME = 'tensorrt.engine_cache'


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """Make tmp_path/xdg the user cache; return the model cache root (not yet made)."""
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    return tmp_path / 'xdg' / 'matte_ros'


def hostile_values(tmp_path, cache):
    """Return (label, value) pairs that must all be refused."""
    outside = tmp_path / 'outside'
    os.makedirs(cache, mode=0o700)
    link = cache / 'link'
    os.symlink(outside, link)
    return [('outside the cache', str(outside / 'engines')),
            ('a symlink out of the cache', str(link / 'engines')),
            ('dot-dot out of the cache', str(cache / '..' / '..' / 'outside')),
            ('/proc', '/proc/self/cwd'), ('/sys', '/sys/kernel'), ('/dev', '/dev/shm/x'),
            ('the root', '/'), ('a NUL byte', str(cache / 'a\0b'))]


def test_every_hostile_value_is_refused_when_set_naming_the_parameter(tmp_path, cache):
    for label, value in hostile_values(tmp_path, cache):
        with pytest.raises(params.ParamError) as err:
            params.validate(NAME, value)
        assert str(err.value).startswith(NAME + ' '), label
        with pytest.raises(params.ParamError, match=NAME):
            params.Config().with_updates({NAME: value})
        with pytest.raises(params.ParamError, match=NAME):
            params.parse_assignments(['%s=%s' % (NAME, value)])   # the CLI's --param
        with pytest.raises(params.ParamError, match=NAME):
            Pipeline({'segmenter': 'framediff', NAME: value})
    assert not os.path.exists(tmp_path / 'outside')


def test_the_reasons_say_why(tmp_path, cache):
    reasons = {label: rvm_module.engine_cache_refusal(value)
               for label, value in hostile_values(tmp_path, cache)}
    assert 'lies outside the model cache %s' % cache in reasons['outside the cache']
    assert 'it resolves to %s' % (tmp_path / 'outside' / 'engines') in \
        reasons['a symlink out of the cache']
    assert 'outside the model cache' in reasons['dot-dot out of the cache']
    for label in ('/proc', '/sys', '/dev'):
        assert 'lies in /proc, /sys or /dev' in reasons[label]
    assert 'contains a NUL byte' in reasons['a NUL byte']


def test_values_inside_the_cache_are_taken_and_made_0700(cache):
    target = cache / 'engines' / 'robot'
    assert params.validate(NAME, str(target)) == str(target)   # not made yet: fine
    assert params.validate(NAME, '') == ''                     # the default
    assert not os.path.exists(cache)   # validating writes nothing
    made = rvm_module.make_engine_cache({NAME: str(target)})
    assert made == str(target)
    for folder in (cache, cache / 'engines', target):
        assert os.stat(folder).st_mode & 0o777 == 0o700
    inner = cache / 'elsewhere-inside'
    os.mkdir(inner, 0o700)
    os.symlink(inner, cache / 'alias')   # a symlink that stays inside the cache is fine
    assert rvm_module.make_engine_cache({NAME: str(cache / 'alias')}) == str(inner)


def test_folders_of_others_or_open_to_all_are_refused(cache):
    os.makedirs(cache / 'open', mode=0o700)
    os.chmod(cache / 'open', 0o777)
    with pytest.raises(params.ParamError, match='writable by others'):
        params.validate(NAME, str(cache / 'open' / 'engines'))
    (cache / 'file').write_bytes(b'')
    with pytest.raises(params.ParamError, match='file is not a directory'):
        params.validate(NAME, str(cache / 'file' / 'engines'))


def test_a_symlink_swapped_in_after_the_value_was_taken_is_refused_at_the_write(
        tmp_path, cache):
    outside = tmp_path / 'outside'
    outside.mkdir()
    target = cache / 'engines'
    config = params.Config().with_updates({NAME: str(target)})   # accepted: inside
    os.makedirs(cache, mode=0o700)
    os.symlink(outside, target)   # then the folder became a link out of the cache
    with pytest.raises(models.ModelError, match='%s .*outside the model cache' % NAME):
        rvm_module.make_engine_cache(config.values)
    assert os.listdir(outside) == []


def test_an_empty_value_never_writes_into_a_model_dir_outside_the_cache(tmp_path, cache):
    read_only = tmp_path / 'opt-models'
    read_only.mkdir()
    made = rvm_module.make_engine_cache({NAME: '', 'models.model_dir': str(read_only)})
    assert made == str(cache / 'models' / 'tensorrt')
    assert os.listdir(read_only) == []


# --- the TensorRT runner, on the stand-ins --------------------------------------------------

def rvm_values(**extra):
    """Return rvm's values with the shared model file (skips without ../shared)."""
    values = params.defaults()
    values.update({'segmenter': 'rvm', 'composite.mode': 'none', 'models.auto_fetch': False,
                   'models.model_path': shared_path('models', 'rvm_mobilenetv3_fp32.onnx')})
    values.update(extra)
    return values


def test_rvm_on_tensorrt_refuses_an_engine_cache_that_leads_out(monkeypatch, tmp_path, cache):
    standins.claim_gpu_providers(monkeypatch)
    outside = tmp_path / 'outside'
    outside.mkdir()
    values = rvm_values(**{NAME: str(cache / 'engines')})
    os.makedirs(cache, mode=0o700)
    os.symlink(outside, cache / 'engines')   # swapped in after the value was checked
    with pytest.raises(SegmenterError, match=NAME):
        create('rvm', values, 'tensorrt')
    assert os.listdir(outside) == []


def test_the_engine_build_checks_its_folder_again(monkeypatch, tmp_path, cache):
    # TensorRT listed, its libraries missing: the build runs in its thread and fails
    # there; what matters is that its shape folder is checked before anything is written.
    standins.claim_gpu_providers(monkeypatch)
    outside = tmp_path / 'outside'
    outside.mkdir()
    engines = cache / 'engines'
    seg = create('rvm', rvm_values(**{NAME: str(engines)}), 'tensorrt')
    try:
        assert os.stat(engines).st_mode & 0o777 == 0o700
        os.symlink(outside, engines / '320x180')   # the shape folder leads out
        frame = np.full((180, 320, 3), 128, np.uint8)
        assert seg.process(frame).alpha.shape == (180, 320)   # served meanwhile
        assert seg.runner.wait(120)
        assert seg.process(frame).alpha.shape == (180, 320)   # and after, on the fallback
        note = seg.status().note
        assert NAME in note and 'outside the model cache' in note
        assert os.listdir(outside) == []
    finally:
        seg.close()
