"""
The ``matte`` lifecycle node: camera images in, mask / alpha / composite out.

States, as in ROS 2 managed nodes:

- configure: read the parameters, probe the backend, load the segmenter and create
  the publishers.  Any failure is logged with what and where, and FAILURE returns the
  node to *unconfigured* — it stays up and can be configured again.
- activate: subscribe to ``image`` and start the processing thread.  Only now is
  anything published.
- deactivate: unsubscribe, stop the thread, clear temporal state.
- cleanup / shutdown: release publishers and the model.

Frames are processed on a thread of their own; only the latest frame waits
(:class:`~matte_ros.frame_slot.FrameSlot`), so lifecycle, parameter and reset
services answer while a frame is in progress.  Every output carries the input's
header unchanged.
"""

import threading
import time
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray
from matte_ros import params
from matte_ros.encodings import EncodingError
from matte_ros.encodings import from_bgr8
from matte_ros.frame_slot import FrameSlot
from matte_ros.pipeline import Pipeline
from matte_ros.ros import dds
from matte_ros.ros import diagnostics
from matte_ros.ros import parameters
from matte_ros.ros.image_msgs import image_msg_to_bgr8
from matte_ros.ros.image_msgs import make_image_msg
from matte_ros.stats import Stats
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode
from rclpy.lifecycle import LifecycleState
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.qos import HistoryPolicy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

NODE_NAME = 'matte'
INPUT_TOPIC = 'image'
MASK_TOPIC = '~/mask'
ALPHA_TOPIC = '~/alpha'
COMPOSITE_TOPIC = '~/composite'
FOREGROUND_TOPIC = '~/foreground'
RESET_SERVICE = '~/reset'
DIAGNOSTICS_TOPIC = '/diagnostics'
#: Seconds between repeats of the same warning (bad input can arrive at frame rate).
LOG_THROTTLE = 5.0


def _qos(reliability: str, depth: int) -> QoSProfile:
    return QoSProfile(
        depth=depth, history=HistoryPolicy.KEEP_LAST,
        reliability=(ReliabilityPolicy.BEST_EFFORT if reliability == 'best_effort'
                     else ReliabilityPolicy.RELIABLE))


def _stamp_seconds(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class MatteNode(LifecycleNode):
    """Lifecycle node running the configured segmenter on a camera stream."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        self._pipeline: Optional[Pipeline] = None
        self._pipeline_lock = threading.Lock()   # held while a frame is processed
        self._reconfigure_lock = threading.Lock()  # serialises parameter changes
        self._outputs = {}
        self._subscription = None
        self._worker: Optional[threading.Thread] = None
        self._slot = FrameSlot()
        self._stop = threading.Event()
        self._active = False
        self.stats = Stats()
        self._last_counts = (0, 0)
        super().__init__(node_name, **kwargs)
        parameters.declare_all(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._guard_change_state_service()
        self._reset_service = self.create_service(Trigger, RESET_SERVICE, self._on_reset)
        self._image_group = MutuallyExclusiveCallbackGroup()
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        period = self.get_parameter('diagnostics_period').value
        self._diagnostics_timer = self.create_timer(period, self._publish_diagnostics)

    # --- lifecycle transitions ---------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the segmenter and create publishers; FAILURE (and stay up) if that fails."""
        try:
            values = parameters.read_all(self)
            pipeline = Pipeline(values)
        except Exception as exc:  # noqa: B902 - any failure must leave the node up
            self.get_logger().error('configure failed: %s' % exc)
            return TransitionCallbackReturn.FAILURE
        if pipeline.choice.warning:
            self.get_logger().warn(pipeline.choice.warning)
        with self._pipeline_lock:
            self._pipeline = pipeline
        out_qos = _qos(values['qos.output_reliability'], values['qos.depth'])
        topics = [MASK_TOPIC, ALPHA_TOPIC, COMPOSITE_TOPIC]
        if values['publish_foreground']:
            topics.append(FOREGROUND_TOPIC)
        self._outputs = {t: self.create_lifecycle_publisher(Image, t, out_qos) for t in topics}
        self.get_logger().info('configured: segmenter %s on %s' % (pipeline.name,
                                                                   pipeline.backend))
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the camera and start processing."""
        values = parameters.read_all(self)
        self._slot.reopen()
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name='matte_worker', daemon=True)
        self._worker.start()
        self._subscription = self.create_subscription(
            Image, INPUT_TOPIC, self._on_image,
            _qos(values['qos.input_reliability'], values['qos.depth']),
            callback_group=self._image_group)
        self._active = True
        self.get_logger().info('active: listening on %s' % self._subscription.topic_name)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop listening and processing; the next activation starts a fresh stream."""
        self._stop_processing()
        with self._pipeline_lock:
            if self._pipeline is not None:
                self._pipeline.reset('deactivate')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release publishers and the model."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything, from whichever state."""
        self._stop_processing()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Recover to *unconfigured* after an error in a transition."""
        self._stop_processing()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self):
        for pub in self._outputs.values():
            self.destroy_lifecycle_publisher(pub)
        self._outputs = {}
        with self._pipeline_lock:
            pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.close()

    def _stop_processing(self):
        self._active = False
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self._subscription = None
        self._stop.set()
        self._slot.close()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None

    def stop(self):
        """Stop the processing thread (before the node is destroyed)."""
        self._stop_processing()

    def _guard_change_state_service(self):
        """
        Answer an invalid lifecycle request with ``success=False`` instead of dying.

        rclpy of Humble and Jazzy raises ``RCLError`` inside its own ``change_state``
        callback for a transition the current state does not have, which kills the
        process; Kilted already answers ``success=False``.
        """
        service = getattr(self, '_service_change_state', None)
        if service is None:
            return
        inner = service.callback

        def guarded(request, response):
            try:
                return inner(request, response)
            except Exception as exc:  # noqa: B902 - a client's bad request must not kill us
                self.get_logger().warn('refused lifecycle transition %d %r: %s' % (
                    request.transition.id, request.transition.label, exc))
                response.success = False
                return response

        service.callback = guarded

    # --- frames ------------------------------------------------------------------------------

    def _on_image(self, msg: Image) -> None:
        self.stats.on_received()
        if self._active:
            self._slot.put(msg)

    def _work(self):
        while not self._stop.is_set():
            msg = self._slot.take(timeout=0.5)
            if msg is not None:
                self._handle(msg)

    def _handle(self, msg: Image) -> None:
        start = time.perf_counter()
        try:
            frame = image_msg_to_bgr8(msg, self._max_pixels())
        except EncodingError as exc:
            self.stats.on_rejected(str(exc))
            self.get_logger().warn('rejected image: %s' % exc,
                                   throttle_duration_sec=LOG_THROTTLE)
            return
        converted = time.perf_counter()
        with self._pipeline_lock:
            pipeline = self._pipeline
            if pipeline is None or not self._active:
                return
            try:
                result = pipeline.process(frame, _stamp_seconds(msg.header),
                                          msg.header.frame_id)
            except Exception as exc:  # noqa: B902 - one bad frame must not stop the stream
                self.stats.on_failed('%s: %s' % (type(exc).__name__, exc))
                self.get_logger().error('frame dropped, segmenter failed: %s' % exc,
                                        throttle_duration_sec=LOG_THROTTLE)
                return
        processed = time.perf_counter()
        self._publish(msg, result)
        done = time.perf_counter()
        stages = dict(result.timings)
        stages.update(convert_in=converted - start, publish=done - processed)
        self.stats.on_processed(done - start, stages)

    def _publish(self, msg: Image, result) -> None:
        header = msg.header
        outputs = [(MASK_TOPIC, result.mask, 'mono8'), (ALPHA_TOPIC, result.alpha, 'mono8')]
        if result.composite is not None:
            encoding = 'rgb8' if msg.encoding == 'rgb8' else 'bgr8'
            composite = result.composite
            if encoding == 'rgb8':
                composite = from_bgr8(composite, 'rgb8')
            outputs.append((COMPOSITE_TOPIC, composite, encoding))
        if FOREGROUND_TOPIC in self._outputs and result.foreground is not None:
            outputs.append((FOREGROUND_TOPIC, result.foreground, 'bgr8'))
        for topic, array, encoding in outputs:
            publisher = self._outputs.get(topic)
            if publisher is None:
                continue
            try:
                publisher.publish(make_image_msg(header, array, encoding))
            except Exception as exc:  # noqa: B902 - rmw may refuse under load; keep going
                self.get_logger().warn('publish on %s failed: %s' % (topic, exc),
                                       throttle_duration_sec=LOG_THROTTLE)

    def _max_pixels(self) -> int:
        return self.get_parameter('max_pixels').value

    # --- services and parameters --------------------------------------------------------------

    def _on_reset(self, request, response):
        with self._pipeline_lock:
            if self._pipeline is None:
                response.success = False
                response.message = 'not configured: nothing to reset'
                return response
            self._pipeline.reset('~/reset service')
        response.success = True
        response.message = 'temporal state cleared'
        return response

    def _on_set_parameters(self, changed) -> SetParametersResult:
        """Validate, then apply: dynamic ones from the next frame, others by a safe rebuild."""
        try:
            updates = parameters.as_updates(changed)
        except params.ParamError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        with self._reconfigure_lock:
            pipeline = self._pipeline
            if pipeline is None:
                return SetParametersResult(successful=True)
            try:
                if pipeline.needs_rebuild(updates):
                    self._rebuild(pipeline, updates)
                else:
                    with self._pipeline_lock:
                        pipeline.update(updates)
            except Exception as exc:  # noqa: B902 - reject the change, keep serving
                self.get_logger().warn('parameter change rejected: %s' % exc)
                return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _rebuild(self, old: Pipeline, updates) -> None:
        """Build the new pipeline while the old one serves; swap only when it is ready."""
        values = dict(old.config.values)
        values.update(updates)
        new = Pipeline(values)
        if new.choice.warning:
            self.get_logger().warn(new.choice.warning)
        with self._pipeline_lock:
            self._pipeline = new
        old.close()
        self.get_logger().info('reloaded: segmenter %s on %s' % (new.name, new.backend))

    # --- diagnostics --------------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        snap = self.stats.snapshot()
        pipeline = self._pipeline
        counts = (self.stats.rejected, self.stats.failed)
        rejected_recent = counts[0] > self._last_counts[0]
        failed_recent = counts[1] > self._last_counts[1]
        self._last_counts = counts
        level, message = diagnostics.level_for(self._active, snap, rejected_recent,
                                               failed_recent)
        values = dict(snap)
        values.update(
            state='active' if self._active else (
                'inactive' if pipeline is not None else 'unconfigured'),
            segmenter=pipeline.name if pipeline else '',
            backend=pipeline.backend if pipeline else '',
            backend_note=pipeline.choice.warning if pipeline else '',
            dropped=self._slot.dropped,
            last_reject_reason=self.stats.last_reject_reason,
            last_failure=self.stats.last_failure)
        msg = diagnostics.status_message(self.get_clock().now().to_msg(),
                                         '%s: matte' % self.get_fully_qualified_name(),
                                         level, message, values)
        self._diagnostics_pub.publish(msg)


def main(args=None):
    """Run the node until SIGINT/SIGTERM (``matte_node --ros-args ...``)."""
    dds.use_large_frame_profile()
    rclpy.init(args=args)
    node = MatteNode()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop()
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
