"""
Files derived from models: where they live and when they are read back.

``models.derived_dir`` gives ``<models.model_dir>/<sub>`` only inside the user cache,
else the user's own model cache; ``models.write_sealed`` writes a file and its seal (an
HMAC keyed by the cache's secret) and ``models.open_sealed`` returns a file only when
its folder, its kind and its seal are right.  Every case runs in a temporary
``$XDG_CACHE_HOME``.
"""

import os
import shutil

from matte_ros import models
import pytest


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """Make tmp_path/xdg the user cache; return the cache root (not yet made)."""
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    return tmp_path / 'xdg' / 'matte_ros'


def write(path, data=b'derived bytes'):
    """Write ``data`` sealed at ``path``; return the path written."""
    def fill(temporary):
        with open(temporary, 'wb') as stream:
            stream.write(data)
    return models.write_sealed(str(path), fill, 'test folder')


def test_derived_dir_is_below_model_dir_only_inside_the_cache(cache, tmp_path):
    own = str(cache / 'models' / 'openvino')
    os.makedirs(cache, mode=0o700)
    os.symlink(tmp_path, cache / 'link')
    for value in ('', str(tmp_path / 'opt-models'), str(cache / 'link' / 'm'),
                  str(cache / '..' / '..' / 'm'), '/proc/self/cwd', '/'):
        assert models.derived_dir({'models.model_dir': value}, 'openvino') == own, value
        assert models.derived_dir(value, 'openvino') == own, value
    assert models.derived_dir({'models.model_dir': str(cache / 'mine')}, 'openvino') == \
        str(cache / 'mine' / 'openvino')
    assert not os.path.exists(cache / 'models')   # nothing created


def test_a_sealed_file_reads_back_and_any_change_is_refused(cache):
    path = write(cache / 'models' / 'torchscript' / 'a.pt')
    for folder in (cache, cache / 'models', cache / 'models' / 'torchscript'):
        assert os.stat(folder).st_mode & 0o777 == 0o700
    assert os.stat(cache / models.SEAL_KEY).st_mode & 0o777 == 0o600
    with models.open_sealed(path, 'trace') as stream:
        assert stream.read() == b'derived bytes'
    with open(path, 'ab') as stream:
        stream.write(b'!')
    with pytest.raises(models.DerivedFileError,
                       match='trace %s does not match its seal .*not loaded' % path):
        models.check_sealed(path, 'trace')
    write(path)   # written again: valid again
    assert models.check_sealed(path, 'trace') == path


def test_a_seal_vouches_for_one_name_only(cache):
    path = write(cache / 'models' / 'openvino' / 'm.ratio-0.500000.onnx')
    other = str(cache / 'models' / 'openvino' / 'm.ratio-0.250000.onnx')
    shutil.copy(path, other)   # same bytes and seal under another ratio's name
    shutil.copy(path + models.SEAL_SUFFIX, other + models.SEAL_SUFFIX)
    with pytest.raises(models.DerivedFileError, match='does not match its seal'):
        models.check_sealed(other, 'copy')


def test_a_seal_made_with_another_key_is_refused(cache):
    path = write(cache / 'models' / 'a.pt')
    os.unlink(cache / models.SEAL_KEY)
    write(cache / 'models' / 'b.pt')   # a new key is made
    with pytest.raises(models.DerivedFileError, match='does not match its seal'):
        models.check_sealed(path, 'trace')


def test_files_without_a_seal_or_of_the_wrong_kind_are_refused_unblocked(cache):
    folder = cache / 'models' / 'torchscript'
    write(folder / 'a.pt')
    (folder / 'plain.pt').write_bytes(b'planted')
    with pytest.raises(models.DerivedFileError, match='has no readable seal'):
        models.check_sealed(str(folder / 'plain.pt'), 'trace')
    os.mkfifo(folder / 'fifo.pt')
    with pytest.raises(models.DerivedFileError, match='not a regular file .*FIFO'):
        models.check_sealed(str(folder / 'fifo.pt'), 'trace')
    (folder / 'b.pt').write_bytes(b'planted')
    os.mkfifo(str(folder / 'b.pt') + models.SEAL_SUFFIX)   # a seal that would block
    with pytest.raises(models.DerivedFileError, match='has no readable seal'):
        models.check_sealed(str(folder / 'b.pt'), 'trace')


def test_a_key_others_can_read_or_a_symlinked_key_is_refused(cache, tmp_path):
    path = write(cache / 'models' / 'a.pt')
    key = cache / models.SEAL_KEY
    os.chmod(key, 0o644)
    with pytest.raises(models.DerivedFileError, match='readable by this user only'):
        models.check_sealed(path, 'trace')
    os.chmod(key, 0o600)
    os.rename(key, tmp_path / 'key')
    os.symlink(tmp_path / 'key', key)
    with pytest.raises(models.DerivedFileError, match='is a symlink'):
        models.check_sealed(path, 'trace')


def test_folders_outside_the_cache_or_open_to_others_are_neither_written_nor_read(
        cache, tmp_path):
    with pytest.raises(models.ModelError, match='outside the model cache'):
        write(tmp_path / 'opt-models' / 'torchscript' / 'a.pt')
    assert not os.path.exists(tmp_path / 'opt-models')
    path = write(cache / 'models' / 'torchscript' / 'a.pt')
    os.chmod(cache / 'models' / 'torchscript', 0o777)
    with pytest.raises(models.DerivedFileError, match='writable by others'):
        models.check_sealed(path, 'trace')
    os.chmod(cache / 'models' / 'torchscript', 0o700)
    outside = tmp_path / 'outside'
    shutil.copytree(cache / 'models' / 'torchscript', outside)   # file, seal: all copied
    with pytest.raises(models.DerivedFileError, match='outside the model cache'):
        models.check_sealed(str(outside / 'a.pt'), 'trace')


def test_a_write_that_cannot_finish_is_a_model_error_and_leaves_no_seal(cache):
    folder = cache / 'models' / 'openvino'
    write(folder / 'a.onnx')
    os.unlink(folder / ('a.onnx' + models.SEAL_SUFFIX))
    os.mkdir(folder / ('a.onnx' + models.SEAL_SUFFIX))   # the seal's name is a folder
    with pytest.raises(models.ModelError, match='cannot write .*a.onnx'):
        write(folder / 'a.onnx', b'new')
    with pytest.raises(models.DerivedFileError, match='has no readable seal'):
        models.check_sealed(str(folder / 'a.onnx'), 'copy')
