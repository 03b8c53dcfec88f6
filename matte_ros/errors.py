"""
Exceptions shared across the core, in a module that imports nothing of matte_ros.

:class:`SegmenterError` is raised by segmenters, runtimes and the model cache alike;
living here lets :mod:`matte_ros.models` and :mod:`matte_ros.onnx_runtime` raise it
without importing the segmenters (which import them).  ``matte_ros.segmenters``
re-exports it.
"""


class SegmenterError(RuntimeError):
    """A segmenter could not be built or loaded (says what and where)."""
