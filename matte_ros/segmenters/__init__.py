"""
Segmenters: the ``segmenter`` parameter value → the declaration and class behind it.

The table comes from :mod:`matte_ros.segmenters.registry` (built-in modules plus
entry-point plugins); a segmenter's module is imported when the table is first read,
and each keeps its heavy libraries (ONNX Runtime, torch, LiteRT) to the moment it is
built, so choosing ``bgsub`` never imports them.
"""

from matte_ros.errors import SegmenterError
from matte_ros.segmenters import registry
from matte_ros.segmenters.base import Matte
from matte_ros.segmenters.base import Segmenter
from matte_ros.segmenters.base import Status

__all__ = ['Matte', 'Segmenter', 'SegmenterError', 'Status', 'create', 'segmenter_class']


def segmenter_class(name: str):
    """Return the class behind a segmenter name; SegmenterError if unknown."""
    table = registry.specs()
    if name not in table:
        raise SegmenterError('unknown segmenter %r (choose from %s)'
                             % (name, ', '.join(sorted(table))))
    return table[name].factory


def create(name: str, config, backend: str = 'cpu') -> Segmenter:
    """Build a ready-to-run segmenter (loads its model; raises SegmenterError)."""
    return segmenter_class(name)(config, backend)
