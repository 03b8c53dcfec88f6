"""
Open files named by parameters without blocking, and only when they are plain files.

A path in a parameter comes from whoever can reach the node's services.  Opening a FIFO
for reading blocks until a writer appears; a device or ``/proc`` entry streams without
end; a sparse file can declare hundreds of gigabytes.  :func:`open_regular` opens with
``O_NONBLOCK`` (a FIFO open returns at once), checks with ``fstat`` that the descriptor
is a regular file outside ``/proc``, ``/sys`` and ``/dev`` and that its size is within the
caller's limit, and only then hands the file over.  Every refusal raises
:class:`UnsafeFileError` naming the parameter and the reason, never the file's content.
"""

import os
import stat
from typing import BinaryIO

from matte_ros.text import cut

#: Pseudo file systems whose entries are never read as models or pictures.
PSEUDO_ROOTS = ('/proc', '/sys', '/dev')


class UnsafeFileError(ValueError):
    """A path that is not a regular file, cannot be opened, or is too large."""


def in_pseudo_fs(path: str) -> bool:
    """Tell whether ``path`` (symlinks resolved) lies in ``/proc``, ``/sys`` or ``/dev``."""
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root + os.sep) for root in PSEUDO_ROOTS)


def open_regular(path: str, max_bytes: int, what: str = 'file') -> BinaryIO:
    """
    Return ``path`` opened for binary reading when it is a regular file ≤ ``max_bytes``.

    Never blocks (``O_NONBLOCK``; cleared again once the file is known to be regular) and
    reads nothing.  ``what`` names the file in the error, e.g. ``models.model_path``.
    """
    shown = cut(path)
    if not path:
        raise UnsafeFileError('%s is empty' % what)
    if in_pseudo_fs(path):
        raise UnsafeFileError('%s %s lies in %s: not a regular file'
                              % (what, shown, '/'.join(r.strip('/') for r in PSEUDO_ROOTS)))
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_NOCTTY', 0) | \
        getattr(os, 'O_CLOEXEC', 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise UnsafeFileError('%s %s cannot be opened: %s' % (what, shown, exc.strerror))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFileError('%s %s is not a regular file (%s)'
                                  % (what, shown, _kind(info.st_mode)))
        if info.st_size > max_bytes:
            raise UnsafeFileError('%s %s has %d bytes, more than the %d allowed'
                                  % (what, shown, info.st_size, max_bytes))
        os.set_blocking(fd, True)
        return os.fdopen(fd, 'rb')
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str, max_bytes: int, what: str = 'file') -> bytes:
    """Return the bytes of a regular file ≤ ``max_bytes`` (see :func:`open_regular`)."""
    with open_regular(path, max_bytes, what) as stream:
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnsafeFileError('%s %s grew beyond the %d bytes allowed while read'
                              % (what, cut(path), max_bytes))
    return data


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, 'a directory'), (stat.S_ISFIFO, 'a FIFO'),
                       (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'),
                       (stat.S_ISSOCK, 'a socket')):
        if test(mode):
            return name
    return 'not a plain file'
