"""
RVM on ONNX Runtime: plain ``run`` on the CPU, I/O binding with the state on the device.

:class:`OrtRunner` (backend cpu) feeds NumPy arrays to ``session.run`` and gets NumPy
back: on the CPU that is as fast as anything else, and it is exactly RVM's documented
loop with a tuned session.

:class:`BoundOrtRunner` (backend cuda) runs through I/O binding: every frame ``src`` is
copied to the device once; the four recurrent tensors ``r1o..r4o`` are bound as outputs
*on the device the session runs on* and fed back as the next frame's ``r1i..r4i``
without leaving it; only ``pha`` comes back to the host, plus ``fgr`` when the foreground
is wanted (``publish_foreground``).  ``downsample_ratio`` is bound as a CPU OrtValue made
once per ratio: CUDA's Resize takes its scales on the CPU, so a device copy would be
copied back every frame.  The device is read from the session's active providers: when
ONNX Runtime dropped CUDA the same code binds on the CPU (it also runs there on purpose
with ``Options.io_binding``, which the tests use to check it is exact).
"""

from typing import List
from typing import Optional

from matte_ros import onnx_runtime
from matte_ros.segmenters import rvm_model
from matte_ros.segmenters import rvm_runner
import numpy as np


def _ort():
    import onnxruntime
    return onnxruntime


def device_of(providers: List[str]) -> str:
    """Return the OrtValue device a session with these active providers computes on."""
    return 'cuda' if onnx_runtime.backend_of(providers) in ('cuda', 'tensorrt') else 'cpu'


class OrtRunner(rvm_runner.Runner):
    """RVM on an ONNX Runtime session with NumPy in and out (``session.run``)."""

    #: One session serves every frame size; the state travels in and out of each call.
    shareable = True
    #: The model takes a batch of frames with their states batched (NumPy on the host).
    batchable = True
    #: One session returns foreground colours or not per call (``run``'s output names).
    per_call_foreground = True

    def __init__(self, model: rvm_runner.ModelFile, backend: str,
                 options: rvm_runner.Options, path: str = '', **session_args):
        super().__init__(model, backend, options)
        self.path = path or model.path
        self.session, self.session_info = onnx_runtime.create_session(
            self.path, backend, strict=options.strict, threads=options.threads,
            spinning=options.spinning, **session_args)
        self.backend = self.session_info.in_use
        self.note = self.session_info.note()
        self._outputs = list(rvm_model.OUTPUTS)

    def describe(self) -> str:
        """Return the session's providers (and why they are less than asked)."""
        return self.session_info.summary()

    def run(self, src, state, ratio, want_foreground):
        """Run one frame with ``session.run``; the state comes back as NumPy arrays."""
        feed = dict(zip(rvm_model.STATE_INPUTS, state))
        feed[rvm_model.SRC] = src
        feed[rvm_model.RATIO] = np.array([ratio], np.float32)
        fgr, pha, *rec = self.session.run(self._outputs, feed)
        return fgr, pha, rec

    def close(self) -> None:
        """Drop the session (ONNX Runtime frees its memory with it)."""
        self.session = None


class BoundOrtRunner(OrtRunner):
    """RVM through I/O binding, the state kept on the session's device (see the module)."""

    #: The state is OrtValues on the device: frames run one by one, in turn.
    batchable = False

    def __init__(self, model: rvm_runner.ModelFile, backend: str,
                 options: rvm_runner.Options, path: str = '', ratio_input: bool = True,
                 device: Optional[str] = None, **session_args):
        super().__init__(model, backend, options, path, **session_args)
        #: Device of the bound state: from the session's active providers.
        self.device = device or device_of(self.session_info.providers)
        self.device_id = 0
        self.ratio_input = ratio_input
        self.full_zero_state = options.full_zero_state
        self._ratio: Optional[float] = None
        self._ratio_value = None

    def describe(self) -> str:
        """Return the session's providers and where the state lives."""
        return '%s, I/O binding, state on %s' % (self.session_info.summary(), self.device)

    def zero_state(self, height: int, width: int, ratio: float) -> list:
        """Return the fresh state: [1, 1, 1, 1] host zeros, or full-size zeros on the device."""
        if not self.full_zero_state:
            return super().zero_state(height, width, ratio)
        ort = _ort()
        return [ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, np.float32), self.device,
                                                 self.device_id)
                for shape in rvm_model.state_shapes(height, width, ratio)]

    def _ratio_value_for(self, ratio: float):
        """Return the ratio as a host OrtValue, made once per ratio."""
        if self._ratio_value is None or ratio != self._ratio:
            self._ratio_value = _ort().OrtValue.ortvalue_from_numpy(
                np.array([ratio], np.float32))
            self._ratio = ratio
        return self._ratio_value

    def run(self, src, state, ratio, want_foreground):
        """
        Run one frame; return (fgr ndarray or None, pha ndarray, new state OrtValues).

        ``state`` holds ndarrays (copied to the device once) or OrtValues (already there).
        """
        binding = self.session.io_binding()
        binding.bind_cpu_input(rvm_model.SRC, src)
        if self.ratio_input:
            binding.bind_ortvalue_input(rvm_model.RATIO, self._ratio_value_for(ratio))
        for name, tensor in zip(rvm_model.STATE_INPUTS, state):
            if isinstance(tensor, np.ndarray):
                binding.bind_cpu_input(name, tensor)
            else:
                binding.bind_ortvalue_input(name, tensor)
        binding.bind_output('pha', 'cpu')
        binding.bind_output('fgr', 'cpu' if want_foreground else self.device, self.device_id)
        for name in rvm_model.STATE_OUTPUTS:
            binding.bind_output(name, self.device, self.device_id)
        self.session.run_with_iobinding(binding)
        outputs = binding.get_outputs()
        pha = outputs[0].numpy()
        fgr = outputs[1].numpy() if want_foreground else None
        return fgr, pha, list(outputs[2:])

    def close(self) -> None:
        """Drop the ratio tensor and the session."""
        self._ratio_value = None
        super().close()
