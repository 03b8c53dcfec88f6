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
services answer on the (single-threaded) executor while a frame is in
progress.  Every output carries the input's header unchanged.
"""

import threading
import time
from typing import Dict
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray
from matte_ros import blobs
from matte_ros import compressed
from matte_ros import heap
from matte_ros import params
from matte_ros.encodings import EncodingError
from matte_ros.encodings import from_bgr8
from matte_ros.frame_slot import FrameSlot
from matte_ros.pipeline import Pipeline
from matte_ros.ros import dds
from matte_ros.ros import diagnostics
from matte_ros.ros import executor
from matte_ros.ros import parameters
from matte_ros.ros import service_guard
from matte_ros.ros.image_msgs import decode_image_msg
from matte_ros.ros.image_msgs import image_msg_to_bgr8
from matte_ros.ros.image_msgs import make_image_msg
from matte_ros.stats import stamp_age
from matte_ros.stats import Stats
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode
from rclpy.lifecycle import LifecycleState
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.qos import HistoryPolicy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import CompressedImage
from sensor_msgs.msg import Image
from sensor_msgs.msg import RegionOfInterest
from std_srvs.srv import Trigger

NODE_NAME = 'matte'
INPUT_TOPIC = 'image'
MASK_TOPIC = '~/mask'
ALPHA_TOPIC = '~/alpha'
COMPOSITE_TOPIC = '~/composite'
FOREGROUND_TOPIC = '~/foreground'
#: The background model's image (bgsub), bgr8 with the input's header.
BACKGROUND_TOPIC = '~/background'
#: Input of ``input_transport: compressed`` (image_transport's name beside ``image``).
COMPRESSED_INPUT_TOPIC = 'image/compressed'
COMPOSITE_COMPRESSED_TOPIC = '~/composite/compressed'
CAMERA_INFO_TOPIC = 'camera_info'
CAMERA_INFO_OUTPUT_TOPIC = '~/camera_info'
ROI_TOPIC = '~/roi'
RESET_SERVICE = '~/reset'
DIAGNOSTICS_TOPIC = diagnostics.TOPIC
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
        self._camera_info_sub = None
        self._camera_info: Optional[CameraInfo] = None   # latest, republished per frame
        self._last_mask = None                           # (header, mask, ROI box or None)
        self._worker: Optional[threading.Thread] = None
        self._slot = FrameSlot()
        self._stop = threading.Event()      # the worker thread ends (node shutdown)
        self._running = threading.Event()   # set while active: the worker takes frames
        self._frame_lock = threading.Lock()  # held by the worker through one frame
        self._active = False
        self.stats = Stats()
        self._last_counts = (0, 0)
        super().__init__(node_name, **kwargs)
        parameters.declare_all(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._reset_service = self.create_service(Trigger, RESET_SERVICE, self._on_reset)
        # rclpy's own change_state (Humble, Jazzy) and set_parameters callbacks raise on
        # some client requests, which would end the process: answer failure instead.
        service_guard.guard_services(self)
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
        topics = [MASK_TOPIC, ALPHA_TOPIC, COMPOSITE_TOPIC, BACKGROUND_TOPIC]
        if values['publish_foreground']:
            topics.append(FOREGROUND_TOPIC)
        self._outputs = {t: self.create_lifecycle_publisher(Image, t, out_qos) for t in topics}
        extra = [(RegionOfInterest, ROI_TOPIC), (CameraInfo, CAMERA_INFO_OUTPUT_TOPIC)]
        if values['composite.compressed']:
            extra.append((CompressedImage, COMPOSITE_COMPRESSED_TOPIC))
        for msg_type, topic in extra:
            self._outputs[topic] = self.create_lifecycle_publisher(msg_type, topic, out_qos)
        self.get_logger().info('configured: segmenter %s on %s' % (pipeline.name,
                                                                   pipeline.backend))
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the camera and start processing."""
        values = parameters.read_all(self)
        self._slot.reopen()
        self._running.set()
        if self._worker is None or not self._worker.is_alive():
            # One worker for the node's life: a thread per activation leaves a malloc
            # arena behind each time, and resident memory climbs over lifecycle cycles.
            self._stop.clear()
            self._worker = threading.Thread(target=self._work, name='matte_worker',
                                            daemon=True)
            self._worker.start()
        self._subscribe(values['input_transport'])
        self._camera_info_sub = self.create_subscription(
            CameraInfo, CAMERA_INFO_TOPIC, self._on_camera_info,
            _qos(values['qos.input_reliability'], values['qos.depth']))
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
        self._end_worker()
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
        if self._camera_info_sub is not None:
            self.destroy_subscription(self._camera_info_sub)
            self._camera_info_sub = None
        self._camera_info = None
        self._running.clear()
        self._slot.close()
        with self._frame_lock:   # wait for the frame in progress, if any
            pass

    def _end_worker(self):
        self._stop.set()
        self._running.set()   # wake it: the slot is closed, so it sees _stop at once
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None

    def stop(self):
        """Stop the processing thread (before the node is destroyed)."""
        self._stop_processing()
        self._end_worker()

    # --- frames ------------------------------------------------------------------------------

    def _subscribe(self, transport: str) -> None:
        """Subscribe to ``image`` (raw) or ``image/compressed``, replacing the old one."""
        old, self._subscription = self._subscription, None
        if old is not None:
            self.destroy_subscription(old)
        qos = _qos(self.get_parameter('qos.input_reliability').value,
                   self.get_parameter('qos.depth').value)
        if transport == 'compressed':
            self._subscription = self.create_subscription(
                CompressedImage, COMPRESSED_INPUT_TOPIC, self._on_compressed, qos,
                callback_group=self._image_group)
        else:
            self._subscription = self.create_subscription(
                Image, INPUT_TOPIC, self._on_image, qos, callback_group=self._image_group)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_compressed(self, msg: CompressedImage) -> None:
        self.stats.on_received()
        if not self._active:
            return
        # The size comes from the JPEG/PNG header: oversized or garbage payloads are
        # refused here, before any decoding.
        try:
            _, width, height = compressed.image_size(bytes(msg.data))
            if width * height > self._max_pixels():
                raise EncodingError('compressed image of %dx%d pixels exceeds max_pixels'
                                    % (width, height))
        except EncodingError as exc:
            self._reject(exc)
            return
        self._offer(msg)

    def _on_image(self, msg: Image) -> None:
        self.stats.on_received()
        if not self._active:
            return
        # Check the fields here (cheap: a view, no copy) so that every bad message is
        # counted with its reason and none displaces a good frame waiting in the slot.
        try:
            decode_image_msg(msg, self._max_pixels())
        except EncodingError as exc:
            self._reject(exc)
            return
        self._offer(msg)

    def _offer(self, msg) -> None:
        """
        Leave ``msg`` for the worker and let it start at once.

        The executor thread would otherwise keep the GIL through rclpy's Python wait
        loop until it blocks again, ~0.35 ms here before the woken worker could run;
        ``sleep(0)`` hands the GIL over now (VGA, paced: callback to worker 0.47 → 0.12 ms).
        """
        self._slot.put(msg)
        time.sleep(0)

    def _reject(self, exc: EncodingError) -> None:
        self.stats.on_rejected(str(exc))
        self.get_logger().warn('rejected image: %s' % exc, throttle_duration_sec=LOG_THROTTLE)

    def _work(self):
        while not self._stop.is_set():
            if not self._running.wait(0.5):
                continue
            msg = self._slot.take(timeout=0.5)
            if msg is None:
                continue
            with self._frame_lock:
                if self._running.is_set():
                    self._handle(msg)

    def _handle(self, msg: Image) -> None:
        start = time.perf_counter()
        try:
            if isinstance(msg, CompressedImage):
                frame = compressed.decode(msg.data, self._max_pixels())
            else:
                frame = image_msg_to_bgr8(msg, self._max_pixels())
        except EncodingError as exc:
            self._reject(exc)
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
        convert_out = self._publish(msg, result)
        done = time.perf_counter()
        stages = dict(result.timings)
        stages.update(convert_in=converted - start, convert_out=convert_out,
                      publish=done - processed - convert_out)
        latency = stamp_age(msg.header.stamp, self.get_clock().now().nanoseconds)
        self.stats.on_processed(done - start, stages, latency, None if latency is None
                                else latency - sum(result.timings.values()))

    def _publish(self, msg: Image, result) -> float:
        """Publish every output; return the seconds spent building the messages."""
        header = msg.header
        outputs = [(MASK_TOPIC, result.mask, 'mono8'), (ALPHA_TOPIC, result.alpha, 'mono8')]
        if result.composite is not None:
            encoding = 'rgb8' if getattr(msg, 'encoding', '') == 'rgb8' else 'bgr8'
            composite = result.composite
            if encoding == 'rgb8':
                composite = from_bgr8(composite, 'rgb8')
            outputs.append((COMPOSITE_TOPIC, composite, encoding))
        if FOREGROUND_TOPIC in self._outputs and result.foreground is not None:
            outputs.append((FOREGROUND_TOPIC, result.foreground, 'bgr8'))
        if result.background is not None:
            outputs.append((BACKGROUND_TOPIC, result.background, 'bgr8'))
        converting = 0.0
        for topic, array, encoding in outputs:
            publisher = self._outputs.get(topic)
            if publisher is None or not _wanted(publisher):
                continue
            try:
                start = time.perf_counter()
                out_msg = make_image_msg(header, array, encoding)
                converting += time.perf_counter() - start
                publisher.publish(out_msg)
            except Exception as exc:  # noqa: B902 - rmw may refuse under load; keep going
                self.get_logger().warn('publish on %s failed: %s' % (topic, exc),
                                       throttle_duration_sec=LOG_THROTTLE)
        self._publish_extras(header, result)
        return converting

    def _publish_extras(self, header, result) -> None:
        """
        Publish ROI, camera_info and compressed composite of the frame with ``header``.

        Each is built only when someone subscribes (the blob analysis and the JPEG cost
        1-2 ms each at 640×480).  The diagnostics' ROI values come from the same frame:
        from the published box, else computed from the kept mask when diagnostics go out.
        """
        self._last_mask = (header, result.mask, None)
        messages = [(ROI_TOPIC, lambda: self._roi_message(header, result.mask))]
        info = self._camera_info
        if info is not None:
            messages.append((CAMERA_INFO_OUTPUT_TOPIC, lambda: _with_header(info, header)))
        quality = self.get_parameter('composite.jpeg_quality').value
        if result.composite is not None:
            messages.append((COMPOSITE_COMPRESSED_TOPIC, lambda: CompressedImage(
                header=header, format='bgr8; jpeg compressed bgr8',
                data=compressed.encode(result.composite, 'jpeg', quality))))
        for topic, build in messages:
            publisher = self._outputs.get(topic)
            if publisher is None or not _wanted(publisher):
                continue
            try:
                publisher.publish(build())
            except Exception as exc:  # noqa: B902 - rmw may refuse under load; keep going
                self.get_logger().warn('publish on %s failed: %s' % (topic, exc),
                                       throttle_duration_sec=LOG_THROTTLE)

    def _roi_message(self, header, mask) -> RegionOfInterest:
        """Return the ``~/roi`` message of a mask (and keep its box for diagnostics)."""
        box = blobs.largest_blob(mask)
        self._last_mask = (header, mask, box)
        return RegionOfInterest(x_offset=box.x, y_offset=box.y, width=box.width,
                                height=box.height)

    def _tracking_values(self) -> Dict[str, str]:
        """Return the diagnostics' ROI and foreground fraction of the last frame."""
        last = self._last_mask
        if last is None:
            return {}
        header, mask, box = last
        if box is None:
            box = blobs.largest_blob(mask)
        return {'foreground_fraction': '%.4f' % blobs.foreground_fraction(mask),
                'roi': '%d %d %d %d' % box[:4],
                'roi_stamp': '%d.%09d' % (header.stamp.sec, header.stamp.nanosec)}

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
        if 'input_transport' in updates and self._active:
            self._subscribe(updates['input_transport'])
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
            **{'rejected[%s]' % k: n for k, n in self.stats.rejected_reasons.copy().items()},
            last_failure=self.stats.last_failure,
            **self._tracking_values())
        msg = diagnostics.status_message(self.get_clock().now().to_msg(),
                                         '%s: matte' % self.get_fully_qualified_name(),
                                         level, message, values)
        self._diagnostics_pub.publish(msg)


def _wanted(publisher) -> bool:
    """Return True when a publisher has subscribers (building an unread message is waste)."""
    try:
        return publisher.get_subscription_count() > 0
    except Exception:  # noqa: B902 - a publisher being destroyed: publish() reports it
        return True


def _with_header(info: CameraInfo, header) -> CameraInfo:
    """Return a copy of ``info`` stamped with ``header`` (the output frame's)."""
    return CameraInfo(
        header=header, height=info.height, width=info.width,
        distortion_model=info.distortion_model, d=info.d, k=info.k, r=info.r, p=info.p,
        binning_x=info.binning_x, binning_y=info.binning_y, roi=info.roi)


def main(args=None):
    """Run the node until SIGINT/SIGTERM (``matte_node --ros-args ...``)."""
    dds.use_large_frame_profile()
    heap.keep_freed_frames()
    rclpy.init(args=args)
    node = MatteNode()
    executor.spin(node, on_stop=node.stop)


if __name__ == '__main__':
    main()
