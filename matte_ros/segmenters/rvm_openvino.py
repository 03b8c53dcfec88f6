"""
RVM on OpenVINO (``rvm.runtime`` openvino), in fp32 or in a derived int8 model.

OpenVINO's CPU plugin runs the official ONNX model with static shapes, and runs an int8
copy (``rvm.precision`` int8) on the CPU's int8 instructions (AVX-512 VNNI / AVX-VNNI).
As for TensorRT and TorchScript, the downsample ratio is **fixed first**: with the ratio
as a runtime input the Resize output size is data-dependent and every shape behind it
dynamic, which costs OpenVINO more than it gains (measured: 0.95× ONNX Runtime).  So a
model is compiled per (height, width, ratio): the fixed-ratio copy of
:func:`matte_ros.segmenters.rvm_model.fixed_ratio_model` (fp32) or the int8 model that
``matte-ros models derive-int8`` made for that ratio (:mod:`.rvm_int8`), reshaped to
the frame size with full-size state tensors.

Without ``publish_foreground`` the model runs without its foreground colours
(:func:`.rvm_model.alpha_only_proto`: the same alpha, less full-resolution work).
Derived int8 models live in ``<model cache>/openvino`` (:func:`openvino_dir`; never a
``models.model_dir`` outside the user's cache) as
``<model>.<sha256 prefix>.int8[.alpha].ratio-<r>.{xml,bin,json}``.  The JSON manifest records the
source model's sha256, the derived files' sha256, how they were calibrated and the
quality check they passed, and is sealed (:func:`matte_ros.models.write_sealed`: only a
manifest this product wrote is read); :func:`int8_model` re-hashes the files against it
before OpenVINO reads them (a mismatch is an error, never a silent fallback to fp32).  No
derived model for the ratio a frame needs is a :class:`SegmenterError` naming the
command that derives it.

OpenVINO is imported lazily: it is only needed with ``rvm.runtime`` openvino.
"""

import json
import os
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

from matte_ros import models
from matte_ros.segmenters import rvm_model
from matte_ros.segmenters import rvm_runner
from matte_ros.segmenters.base import SegmenterError
import numpy as np

FP32 = rvm_runner.FP32
INT8 = rvm_runner.INT8
#: Manifest format written by :mod:`.rvm_int8` and read by :func:`int8_model`.
MANIFEST_FORMAT = 1
#: Largest manifest read (bytes); one is about 1 KB.
MAX_MANIFEST_BYTES = 1 << 20


def import_openvino():
    """Return the ``openvino`` module, or raise SegmenterError saying how to get it."""
    try:
        import openvino
    except ImportError as exc:
        raise SegmenterError('rvm.runtime openvino needs OpenVINO (pip install openvino): %s'
                             % exc)
    return openvino


def openvino_dir(config) -> str:
    """Return the directory of OpenVINO models: ``<model cache>/openvino`` (inside the cache)."""
    return models.derived_dir(config, 'openvino')


def int8_stem(model_path: str, sha256: str, ratio: float, directory: str,
              alpha_only: bool = False) -> str:
    """Return the path (without extension) of the derived int8 model for a ratio."""
    return os.path.join(directory, _int8_prefix(model_path, sha256, alpha_only)
                        + rvm_model.ratio_tag(ratio))


def _int8_prefix(model_path: str, sha256: str, alpha_only: bool = False) -> str:
    """Return the file name of a derived int8 model up to its ratio tag."""
    base = os.path.splitext(os.path.basename(model_path))[0]
    return '%s.%s.int8%s.ratio-' % (base, sha256[:16],
                                    rvm_model.ALPHA_SUFFIX if alpha_only else '')


def derive_command(ratio: Optional[float] = None, alpha_only: bool = True) -> str:
    """Return the command line that derives the int8 model (for ``ratio`` if given)."""
    ratio_arg = ' --ratio %s' % rvm_model.ratio_tag(ratio) if ratio else ''
    foreground = '' if alpha_only else ' --foreground'
    return ('matte-ros models derive-int8%s%s --calibration <frames of your camera: a video '
            'or a directory of images>' % (ratio_arg, foreground))


def read_manifest(stem: str) -> Dict:
    """
    Return the manifest of a derived model (SegmenterError when absent or unreadable).

    Only a manifest this product wrote and sealed is read (:func:`models.open_sealed`).
    """
    path = stem + '.json'
    if not os.path.lexists(path):
        raise SegmenterError('no int8 model at %s' % path)
    try:
        with models.open_sealed(path, 'int8 manifest', MAX_MANIFEST_BYTES) as stream:
            manifest = json.loads(stream.read().decode('utf-8'))
    except ValueError as exc:
        raise SegmenterError('int8 manifest %s is not valid JSON: %s' % (path, exc))
    except models.DerivedFileError as exc:
        raise SegmenterError('%s; derive it again' % exc)
    if not isinstance(manifest, dict) or manifest.get('format') != MANIFEST_FORMAT:
        raise SegmenterError('int8 manifest %s has an unknown format' % path)
    return manifest


def int8_model(model_path: str, sha256: str, ratio: float, directory: str,
               alpha_only: bool = False) -> str:
    """
    Return the verified ``.xml`` of the int8 model derived for ``ratio``.

    ``alpha_only``: the model without foreground colours (:func:`.rvm_model.alpha_only_proto`).
    Raises SegmenterError when it is missing (naming the command that derives it), was
    derived from another source model, or a file's sha256 differs from its manifest.
    """
    stem = int8_stem(model_path, sha256, ratio, directory, alpha_only)
    if not os.path.isfile(stem + '.json'):
        raise SegmenterError(
            'rvm.precision int8: no int8 model%s derived for downsample ratio %s in %s; '
            'derive it with `%s` (or set rvm.downsample_ratio to a ratio already derived)'
            % ('' if alpha_only else ' with foreground colours (publish_foreground)',
               rvm_model.ratio_tag(ratio), directory, derive_command(ratio, alpha_only)))
    manifest = read_manifest(stem)
    if manifest.get('source_sha256') != sha256:
        raise SegmenterError('int8 model %s was derived from another model (sha256 %s, '
                             'expected %s); derive it again'
                             % (stem, manifest.get('source_sha256'), sha256))
    for ext in ('xml', 'bin'):
        want = manifest.get('files', {}).get(ext)
        path = '%s.%s' % (stem, ext)
        if not os.path.isfile(path):
            raise SegmenterError('int8 model file %s is missing; derive it again' % path)
        if models.sha256_file(path, what='int8 model file') != want:
            raise SegmenterError('int8 model file %s fails its checksum (it differs from '
                                 'the file its manifest names); derive it again' % path)
    return stem + '.xml'


def derived_ratios(model_path: str, sha256: str, directory: str,
                   alpha_only: bool = False) -> List[str]:
    """Return the ratio tags that have a derived int8 model manifest in ``directory``."""
    prefix = _int8_prefix(model_path, sha256, alpha_only)
    if not os.path.isdir(directory):
        return []
    return sorted(name[len(prefix):-len('.json')] for name in os.listdir(directory)
                  if name.startswith(prefix) and name.endswith('.json'))


def compile_model(core, path: str, shapes: Dict[str, Tuple[int, ...]], threads: int = 0):
    """Read ``path``, give it static ``shapes`` and compile it for the CPU (fp32 math)."""
    model = core.read_model(path)
    openvino = import_openvino()
    model.reshape({name: openvino.PartialShape(list(shape)) for name, shape in shapes.items()})
    config = {'PERFORMANCE_HINT': 'LATENCY', 'INFERENCE_PRECISION_HINT': 'f32'}
    if threads:
        config['INFERENCE_NUM_THREADS'] = int(threads)
    return core.compile_model(model, 'CPU', config)


def run_frame(request, ports: Dict[str, object], src: np.ndarray, state: List[np.ndarray]):
    """
    Run one frame on a compiled RVM model's infer request.

    ``ports`` maps output names to the compiled model's output ports.  Returns (the feed,
    fgr (None for an alpha-only model), pha, [r1o..r4o]); the outputs are copies the
    caller owns.
    """
    feed = {rvm_model.SRC: src}
    feed.update(zip(rvm_model.STATE_INPUTS, state))
    result = request.infer(feed)
    return (feed, result[ports['fgr']] if 'fgr' in ports else None, result[ports['pha']],
            [result[ports[name]] for name in rvm_model.STATE_OUTPUTS])


class OpenVinoRunner(rvm_runner.Runner):
    """
    Run RVM through OpenVINO on the CPU with the recurrent state as NumPy arrays.

    ``options.precision`` fp32 or int8; fixed-ratio copies and derived models live in
    ``<model cache>/openvino``.  :meth:`prepare` compiles for a frame size and ratio.
    With int8 and a fixed ``rvm.downsample_ratio`` the derived model is verified at
    construction, so configure fails, not every frame, when none can serve.
    """

    fixed_ratio = True
    #: Why the recurrent state is reset when another compiled model becomes current.
    change_reason = 'OpenVINO model changed'

    def __init__(self, model: rvm_runner.ModelFile, backend: str,
                 options: rvm_runner.Options):
        super().__init__(model, backend, options)
        self.openvino = import_openvino()
        precision = options.precision
        if precision not in (FP32, INT8):
            raise SegmenterError('rvm.precision must be fp32 or int8, not %r' % precision)
        self.model_path = model.path
        self.sha256 = model.sha256
        self.precision = precision
        self.directory = models.derived_dir(options.model_dir, 'openvino')
        self.threads = options.threads
        #: Run the model without foreground colours (``fgr`` is then None).
        self.alpha_only = options.alpha_only
        self.core = self.openvino.Core()
        self.key: Optional[Tuple[int, int, str]] = None
        self._request = None
        self._outputs: Dict[str, object] = {}
        #: The model file compiled last (the fixed-ratio ONNX or the int8 .xml).
        self.model_file = ''
        self.backend = 'cpu'
        if backend != 'cpu':
            self.note = 'rvm.runtime openvino runs on the CPU; backend %s not used' % backend
        if precision == INT8:
            if options.ratio > 0:
                int8_model(self.model_path, self.sha256, options.ratio, self.directory,
                           self.alpha_only)
            elif not derived_ratios(self.model_path, self.sha256, self.directory,
                                    self.alpha_only):
                raise SegmenterError(
                    'rvm.precision int8: no int8 model derived yet in %s; derive one with '
                    '`%s`' % (self.directory, derive_command(alpha_only=self.alpha_only)))

    def describe(self) -> str:
        """Return the compiled model, its precision, ratio and size."""
        if self.key is None:
            return 'OpenVINO %s on cpu (compiled at the first frame, fixed ratio)' % (
                self.precision)
        height, width, tag = self.key
        return 'OpenVINO %s on cpu (%s, fixed ratio %s at %dx%d)' % (
            self.precision, os.path.basename(self.model_file), tag, width, height)

    def prepare(self, height: int, width: int, ratio: float) -> bool:
        """Compile for this size and ratio unless already current; True when it changed."""
        key = (height, width, rvm_model.ratio_tag(ratio))
        if key == self.key and self._request is not None:
            return False
        self.close()
        if self.precision == INT8:
            path = int8_model(self.model_path, self.sha256, ratio, self.directory,
                              self.alpha_only)
        else:
            path = rvm_model.fixed_ratio_model(self.model_path, ratio, self.directory,
                                               self.alpha_only)
        try:
            compiled = compile_model(self.core, path,
                                     rvm_model.input_shapes(height, width, ratio),
                                     self.threads)
        except RuntimeError as exc:
            raise SegmenterError('OpenVINO cannot compile %s for %dx%d: %s'
                                 % (path, width, height, exc))
        self._request = compiled.create_infer_request()
        self._outputs = {port.get_any_name(): port for port in compiled.outputs}
        self.key = key
        self.model_file = path
        return True

    def zero_state(self, height: int, width: int, ratio: float) -> List[np.ndarray]:
        """Return full-size zero state arrays (the compiled shapes are static)."""
        return rvm_model.full_zero_state(height, width, ratio)

    def run(self, src: np.ndarray, state: List[np.ndarray], ratio: float = 0.0,
            want_foreground: bool = True):
        """Return (fgr, pha, [r1o..r4o]) for one frame (fgr None for an alpha-only model)."""
        _, fgr, pha, rec = run_frame(self._request, self._outputs, src, state)
        return fgr, pha, rec

    def close(self) -> None:
        """Drop the compiled model and its request."""
        self._request = None
        self._outputs = {}
        self.key = None
