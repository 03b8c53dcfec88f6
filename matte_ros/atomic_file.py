"""
Atomic file writes: readers see the old file or the complete new one, never a part.

Write to the path :func:`replacing` yields (a temporary file beside the target, so the
final rename stays on one file system); when the block ends without an exception the
file is renamed over the target, otherwise it is removed and the target is untouched.
Model downloads, derived models and cached traces all go through here.
"""

import contextlib
import os
import tempfile
from typing import Iterator


@contextlib.contextmanager
def replacing(target: str, prefix: str = '.partial-', suffix: str = '',
              mode: int = 0o644) -> Iterator[str]:
    """
    Yield a temporary path beside ``target``; rename it over ``target`` on success.

    The folder of ``target`` must exist.  ``mode`` is applied before the rename
    (``mkstemp`` creates files readable by their owner only).
    """
    directory = os.path.dirname(target) or '.'
    handle, temporary = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_bytes(target: str, data: bytes, mode: int = 0o644) -> str:
    """Write ``data`` to ``target`` atomically; return ``target``."""
    with replacing(target, mode=mode) as temporary:
        with open(temporary, 'wb') as stream:
            stream.write(data)
    return target
