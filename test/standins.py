"""
Faithful stand-ins for the robot's GPU libraries, for tests on a machine without a GPU.

* :func:`claim_gpu_providers`: the real CPU ONNX Runtime made to *list* TensorRT and
  CUDA, as a GPU build does.  Nothing else is faked: the real ``InferenceSession`` then
  cannot start them and carries on with the CPU, exactly as a GPU build whose
  ``libnvinfer`` / cuDNN is missing does (``session.get_providers()`` is the only sign).
  Two ways of failing, both ONNX Runtime's own code paths: ``missing-libraries`` (the
  providers are skipped, no error) and ``ep-error`` (the TensorRT plugin registration
  raises, ONNX Runtime prints its "EP Error" banner and retries on CUDA, CPU).
* :func:`fake_vpi`: a ``vpi`` module following NVIDIA VPI 3's documented Python
  signatures strictly (keyword-only arguments, no ``**kwargs``), with work done lazily
  until an image is read back with ``rlock_cpu()``.  Its algorithms are OpenCV's
  equivalents (VPI's background subtractor is a Gaussian mixture like MOG2; its Gaussian
  filter and linear rescale are those of OpenCV with a clamped border), so results can be
  compared with the CPU paths.
"""

import contextlib
import threading
import types

import cv2
import numpy as np

TENSORRT = 'TensorrtExecutionProvider'
CUDA = 'CUDAExecutionProvider'


def claim_gpu_providers(monkeypatch, failure='missing-libraries'):
    """Make the real CPU onnxruntime list TensorRT and CUDA (see the module docstring)."""
    import onnxruntime
    from onnxruntime.capi import _pybind_state
    from matte_ros import backends
    listing = [TENSORRT, CUDA] + [p for p in _pybind_state.get_available_providers()
                                  if p not in (TENSORRT, CUDA)]
    monkeypatch.setattr(_pybind_state, 'get_available_providers', lambda: list(listing))
    monkeypatch.setattr(onnxruntime, 'get_available_providers', lambda: list(listing))

    if failure == 'missing-libraries':
        def register_plugins(session_options, provider_options):
            """Register nothing, as a GPU build without libnvinfer_plugin does."""
    elif failure == 'ep-error':
        def register_plugins(session_options, provider_options):
            """Fail as a GPU build whose TensorRT libraries do not load."""
            raise RuntimeError('libnvinfer.so.10: cannot open shared object file: '
                               'No such file or directory')
    else:
        raise ValueError(failure)
    # Exists only in GPU builds; InferenceSession calls it when TensorRT is listed.
    monkeypatch.setattr(_pybind_state, 'register_tensorrt_plugins_as_custom_ops',
                        register_plugins, raising=False)
    backends.probe.cache_clear()  # the probe caches per process: look again
    monkeypatch.setattr(backends, 'probe', _fresh_probe(backends))
    return listing


def claim_slow_tensorrt(monkeypatch, build_seconds):
    """
    Make TensorRT sessions take ``build_seconds`` and *report* TensorRT, computing on the CPU.

    A GPU build where TensorRT starts (a tiny probe session passes) but the CUDA memory
    the runner then binds cannot be had here, so RVM's engine fails after its build: the
    path of a robot whose engine build fails late.  Listing as :func:`claim_gpu_providers`.
    """
    import time
    import onnxruntime
    claim_gpu_providers(monkeypatch)
    real = onnxruntime.InferenceSession

    class Session(real):

        def __init__(self, path, sess_options=None, providers=None, **kwargs):
            names = [p[0] if isinstance(p, tuple) else p for p in providers or []]
            self._claimed = names if TENSORRT in names else None
            if self._claimed and not isinstance(path, bytes):
                time.sleep(build_seconds)  # the engine build (the probe's model is bytes)
            super().__init__(path, sess_options=sess_options,
                             providers=['CPUExecutionProvider'], **kwargs)

        def get_providers(self):
            return list(self._claimed) if self._claimed else super().get_providers()

    monkeypatch.setattr(onnxruntime, 'InferenceSession', Session)


class Patch:
    """``monkeypatch.setattr`` for a whole process (the stand-in node's)."""

    @staticmethod
    def setattr(target, name, value, raising=True):  # noqa: A003 - monkeypatch's name
        """Set ``target.name`` to ``value`` for the rest of the process."""
        setattr(target, name, value)


def _fresh_probe(backends):
    found = backends.Probe({'cpu': (True, 'always available')}, lazy=True)
    return lambda: found


# --- NVIDIA VPI ---------------------------------------------------------------------------

class _Enum:
    """A named constant (VPI's enums print as ``Format.U8`` etc.)."""

    def __init__(self, group, name):
        self.group = group
        self.name = name

    def __repr__(self):
        return '%s.%s' % (self.group, self.name)


def fake_vpi(cuda_works=True):
    """
    Return a stand-in ``vpi`` module (VPI 3 Python API) and its record of what ran.

    ``cuda_works`` false: work submitted on the CUDA backend fails when it is evaluated
    (at read-back), as an asynchronous CUDA launch failure surfaces at synchronisation.
    The module's ``record`` lists ``(operation, backend name)`` in evaluation order.
    """
    vpi = types.ModuleType('vpi')
    vpi.__version__ = '3.2.4 (stand-in)'
    vpi.__file__ = __file__
    record = []
    vpi.record = record
    current = threading.local()

    class Error(RuntimeError):
        """vpi.Error: a failed VPI call."""

    vpi.Error = Error

    class Format:
        U8 = _Enum('Format', 'U8')
        BGR8 = _Enum('Format', 'BGR8')
        F32 = _Enum('Format', 'F32')

    class Border:
        ZERO = _Enum('Border', 'ZERO')
        CLAMP = _Enum('Border', 'CLAMP')

    class Interp:
        NEAREST = _Enum('Interp', 'NEAREST')
        LINEAR = _Enum('Interp', 'LINEAR')

    class BackendValue(_Enum):
        """A backend; ``with vpi.Backend.CUDA:`` makes it the default for calls inside."""

        def __enter__(self):
            stack = getattr(current, 'stack', [])
            stack.append(self)
            current.stack = stack
            return self

        def __exit__(self, *exc):
            current.stack.pop()
            return False

    class Backend:
        CPU = BackendValue('Backend', 'CPU')
        CUDA = BackendValue('Backend', 'CUDA')
        PVA = BackendValue('Backend', 'PVA')
        VIC = BackendValue('Backend', 'VIC')
        OFA = BackendValue('Backend', 'OFA')

    def chosen(backend):
        if backend is not None:
            return backend
        stack = getattr(current, 'stack', [])
        return stack[-1] if stack else Backend.CPU

    def check_backend(backend, operation):
        if backend not in (Backend.CPU, Backend.CUDA):
            raise Error('VPI_ERROR_INVALID_ARGUMENT: %s has no %s implementation'
                        % (operation, backend))

    def evaluate(name, backend, compute):
        """Return a thunk that runs ``compute`` when the result is read back."""
        def thunk():
            record.append((name, backend.name))
            if backend is Backend.CUDA and not cuda_works:
                raise Error('VPI_ERROR_INTERNAL: cudaErrorNoKernelImageForDevice (%s)'
                            % name)
            return compute()
        return thunk

    class Image:
        """vpi.Image: holds its pixels or the pending work that makes them."""

        def __init__(self, size, format, thunk):  # noqa: A002 - VPI's argument name
            self.size = size
            self.format = format
            self._thunk = thunk
            self._data = None

        @property
        def width(self):
            return self.size[0]

        @property
        def height(self):
            return self.size[1]

        def _pixels(self):
            if self._data is None:
                self._data = self._thunk()
                self._thunk = None
            return self._data

        def rlock_cpu(self):
            """Read the pixels on the CPU (a context yielding a read-only ndarray)."""
            data = self._pixels().view()
            data.flags.writeable = False
            return contextlib.nullcontext(data)

        def convert(self, format, *, backend=None, stream=None,  # noqa: A002
                    policy=None, scale=1, offset=0):
            """Convert the pixels to ``format`` (U8 and F32, with ``scale`` and ``offset``)."""
            backend = chosen(backend)
            check_backend(backend, 'convert')
            dtype = {Format.F32: np.float32, Format.U8: np.uint8}.get(format)
            if dtype is None or self.format not in (Format.U8, Format.F32):
                raise Error('VPI_ERROR_INVALID_IMAGE_FORMAT: convert %s -> %s'
                            % (self.format, format))
            source = self

            def compute():
                values = source._pixels().astype(np.float32) * scale + offset
                if dtype is np.uint8:
                    values = np.clip(np.rint(values), 0, 255)
                return values.astype(dtype)
            return Image(self.size, format, evaluate('convert', backend, compute))

        def gaussian_filter(self, ksize, sigma, *, backend=None, out=None,
                            border=Border.ZERO, stream=None):
            """Blur with a Gaussian of ``ksize`` (3-11, odd) px, U8 only, as VPI does."""
            backend = chosen(backend)
            check_backend(backend, 'gaussian_filter')
            kx, ky = (ksize, ksize) if isinstance(ksize, int) else tuple(ksize)
            for k in (kx, ky):
                if not (3 <= k <= 11 and k % 2 == 1):
                    raise Error('VPI_ERROR_INVALID_ARGUMENT: Gaussian kernel size %d must '
                                'be odd, between 3 and 11' % k)
            if self.format is not Format.U8:
                raise Error('VPI_ERROR_INVALID_IMAGE_FORMAT: gaussian_filter takes U8, '
                            'not %s' % self.format)
            sx, sy = (sigma, sigma) if isinstance(sigma, (int, float)) else tuple(sigma)
            mode = {Border.CLAMP: cv2.BORDER_REPLICATE,
                    Border.ZERO: cv2.BORDER_CONSTANT}[border]
            source = self

            def compute():
                return cv2.GaussianBlur(source._pixels(), (kx, ky), sx, sigmaY=sy,
                                        borderType=mode)
            return Image(self.size, Format.U8, evaluate('gaussian_filter', backend, compute))

        def rescale(self, size, *, backend=None, out=None, interp=Interp.LINEAR,
                    border=Border.ZERO, stream=None):
            """Resize to ``size`` (width, height) with ``interp``."""
            backend = chosen(backend)
            check_backend(backend, 'rescale')
            if self.format is not Format.U8:
                raise Error('VPI_ERROR_INVALID_IMAGE_FORMAT: rescale takes U8 here')
            flag = {Interp.LINEAR: cv2.INTER_LINEAR, Interp.NEAREST: cv2.INTER_NEAREST}[interp]
            size = (int(size[0]), int(size[1]))
            source = self

            def compute():
                return cv2.resize(source._pixels(), size, interpolation=flag)
            return Image(size, Format.U8, evaluate('rescale', backend, compute))

    def asimage(array, format=None):  # noqa: A002 - VPI's argument name
        """Wrap an ndarray as an image; the format follows its dtype and shape if not given."""
        array = np.asarray(array)
        if format is None:
            if array.dtype == np.uint8 and array.ndim == 2:
                format = Format.U8  # noqa: A001
            elif array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3:
                format = Format.BGR8  # noqa: A001
            elif array.dtype == np.float32 and array.ndim == 2:
                format = Format.F32  # noqa: A001
            else:
                raise Error('VPI_ERROR_INVALID_IMAGE_FORMAT: %s %s' % (array.dtype,
                                                                       array.shape))
        image = Image((array.shape[1], array.shape[0]), format, None)
        image._data = array
        return image

    class BackgroundSubtractor:
        """vpi.BackgroundSubtractor(size, format, *, backend): a Gaussian mixture model."""

        def __init__(self, size, format, *, backend=None):  # noqa: A002
            self.backend = chosen(backend)
            check_backend(self.backend, 'BackgroundSubtractor')
            if format not in (Format.U8, Format.BGR8):
                raise Error('VPI_ERROR_INVALID_IMAGE_FORMAT: BackgroundSubtractor %s'
                            % format)
            self.size = (int(size[0]), int(size[1]))
            self.format = format
            self._models = {}
            record.append(('BackgroundSubtractor', self.backend.name))

        def __call__(self, input, *, out_fgmask=None, out_bg=None,  # noqa: A002
                     threshold=16.0, shadow=127, learnrate=0.001, stream=None):
            """Return (fgmask U8, background) images for ``input``; work runs at read-back."""
            if input.size != self.size or input.format is not self.format:
                raise Error('VPI_ERROR_INVALID_ARGUMENT: input %s %s, subtractor %s %s'
                            % (input.size, input.format, self.size, self.format))
            key = (float(threshold), shadow is not None)
            model = self._models.get(key)
            if model is None:
                model = cv2.createBackgroundSubtractorMOG2(
                    history=500, varThreshold=float(threshold),
                    detectShadows=shadow is not None)
                if shadow is not None:
                    model.setShadowValue(int(shadow))
                self._models = {key: model}
            outcome = {}

            def run():
                if not outcome:
                    mask = model.apply(input._pixels(), learningRate=float(learnrate))
                    outcome.update(mask=mask, bg=model.getBackgroundImage())
                return outcome

            mask_thunk = evaluate('BackgroundSubtractor', self.backend,
                                  lambda: run()['mask'])
            bg_image = Image(self.size, self.format,
                             lambda: (mask_image._pixels(), outcome['bg'])[1])
            mask_image = Image(self.size, Format.U8, mask_thunk)
            return mask_image, bg_image

    vpi.Format = Format
    vpi.Border = Border
    vpi.Interp = Interp
    vpi.Backend = Backend
    vpi.Image = Image
    vpi.asimage = asimage
    vpi.BackgroundSubtractor = BackgroundSubtractor
    return vpi
