"""
Segmenter registry: the ``segmenter`` parameter value → the class that implements it.

Modules are imported lazily, so choosing ``bgsub`` never imports ONNX Runtime or torch.
"""

import importlib

from matte_ros.segmenters.base import Matte
from matte_ros.segmenters.base import Segmenter
from matte_ros.segmenters.base import SegmenterError
from matte_ros.segmenters.base import Status

__all__ = ['Matte', 'Segmenter', 'SegmenterError', 'Status', 'create', 'REGISTRY']

#: segmenter name → (module, class)
REGISTRY = {
    'bgsub': ('matte_ros.segmenters.bgsub', 'BackgroundSubtractor'),
    'framediff': ('matte_ros.segmenters.framediff', 'FrameDifference'),
    'rvm': ('matte_ros.segmenters.rvm', 'RobustVideoMatting'),
    'selfie': ('matte_ros.segmenters.selfie', 'SelfieSegmenter'),
    'instance': ('matte_ros.segmenters.instance', 'InstanceSegmenter'),
}


def segmenter_class(name: str):
    """Return the class behind a segmenter name; SegmenterError if unknown/not importable."""
    try:
        module_name, class_name = REGISTRY[name]
    except KeyError:
        raise SegmenterError('unknown segmenter %r (choose from %s)'
                             % (name, ', '.join(sorted(REGISTRY))))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SegmenterError('segmenter %r needs a module that is not installed: %s'
                             % (name, exc))
    return getattr(module, class_name)


def create(name: str, config, backend: str = 'cpu') -> Segmenter:
    """Build a ready-to-run segmenter (loads its model; raises SegmenterError)."""
    return segmenter_class(name)(config, backend)
