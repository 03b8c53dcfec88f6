"""Atomic writes: the target is the old file or the complete new one, never a part."""

import os

from matte_ros import atomic_file
import pytest


def test_a_finished_write_replaces_the_target_with_readable_permissions(tmp_path):
    target = tmp_path / 'model.bin'
    target.write_bytes(b'old')
    assert atomic_file.write_bytes(str(target), b'new contents') == str(target)
    assert target.read_bytes() == b'new contents'
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o644)
    assert sorted(os.listdir(tmp_path)) == ['model.bin']


def test_a_failed_write_leaves_the_target_and_no_temporary(tmp_path):
    target = tmp_path / 'model.bin'
    target.write_bytes(b'old')
    with pytest.raises(ValueError):
        with atomic_file.replacing(str(target)) as partial:
            assert os.path.dirname(partial) == str(tmp_path)
            with open(partial, 'wb') as stream:
                stream.write(b'half')
            raise ValueError('checksum mismatch')
    assert target.read_bytes() == b'old'
    assert sorted(os.listdir(tmp_path)) == ['model.bin']


def test_the_temporary_is_invisible_under_the_target_name_until_done(tmp_path):
    target = tmp_path / 'cache.pt'
    with atomic_file.replacing(str(target), suffix='.pt') as partial:
        with open(partial, 'wb') as stream:
            stream.write(b'x')
        assert not target.exists()
    assert target.read_bytes() == b'x'
