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

Slow work never runs on the executor thread nor under the lock frames need: the
segmenter build of ``configure``, a reload, a background picture, model checksums and
downloads run on a thread of their own (:mod:`matte_ros.ros.slow_work`) while the old
pipeline serves and every other service answers.  ``change_state`` and
``set_parameters`` answer once that work is done, at most ``slow_work.WAIT_LIMIT_S``
(30 s) later: success when the new setting serves, failure with the reason otherwise
(past the bound: "not applied").  A parameter change is thus either in force or refused
when its reply arrives; it is never accepted and reverted later.

Configuration is read once: at start the schema's validated values become the core's
:class:`~matte_ros.params.Config` (what the pipeline runs) and the ROS layer's own
settings (QoS, transports, topics, diagnostics period); each change is validated once,
by the schema, and then only swaps those values.
"""

import threading
import time
from typing import Dict
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from matte_ros import blobs
from matte_ros import compositing
from matte_ros import compressed
from matte_ros import heap
from matte_ros import params
from matte_ros import text
from matte_ros.frame_slot import FrameSlot
from matte_ros.image_encodings import EncodingError
from matte_ros.memory import MemoryBudgetError
from matte_ros.pipeline import Pipeline
from matte_ros.ros import dds
from matte_ros.ros import diagnostics
from matte_ros.ros import executor
from matte_ros.ros import parameters
from matte_ros.ros import service_guard
from matte_ros.ros import slow_work
from matte_ros.ros.image_msgs import decode_image_msg
from matte_ros.ros.image_msgs import image_msg_to_bgr8
from matte_ros.ros.image_msgs import make_image_msg
from matte_ros.stats import stamp_age
from matte_ros.stats import Stats
from rcl_interfaces.msg import SetParametersResult
from rcl_interfaces.srv import SetParameters
from rcl_interfaces.srv import SetParametersAtomically
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode
from rclpy.lifecycle import LifecycleState
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
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


class Arrival:
    """
    A frame waiting for the worker, with the camera's largest stamp step up to it.

    ``gap`` is the step from the frame offered before it; when the mailbox drops a
    waiting frame for a newer one, the newer one takes the larger step of the two
    (:meth:`merge`), so the worker's frame carries the stream's largest step since the
    frame processed before it: a frame dropped under load is no gap in the stream.
    """

    __slots__ = ('msg', 'gap')

    def __init__(self, msg, gap: Optional[float]):
        self.msg = msg
        self.gap = gap

    @staticmethod
    def merge(dropped: 'Arrival', newest: 'Arrival') -> 'Arrival':
        """Return ``newest`` carrying the larger stamp step of the two."""
        if dropped.gap is not None and (newest.gap is None or dropped.gap > newest.gap):
            newest.gap = dropped.gap
        return newest


def _stamp_seconds(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def _key(config: params.Config) -> tuple:
    """Return a hashable fingerprint of a Config's values."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                        for k, v in config.values.items()))


def _close_prepared(entry) -> None:
    """Release a prepared pipeline that nobody took."""
    if isinstance(entry, tuple) and entry[0] == 'pipeline':
        entry[1].close()
    elif isinstance(entry, Pipeline):
        entry.close()


class MatteNode(LifecycleNode):
    """Lifecycle node running the configured segmenter on a camera stream."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        self._pipeline: Optional[Pipeline] = None
        self._backend_note = ''  # last logged reason for the backend in use
        self._pipeline_lock = threading.Lock()   # held while a frame is processed
        self._reconfigure_lock = threading.Lock()  # serialises parameter changes
        self._outputs = {}
        self._subscription = None
        self._camera_info_sub = None
        self._camera_info: Optional[CameraInfo] = None   # latest, republished per frame
        self._last_mask = None                           # (header, mask, ROI box or None)
        self._worker: Optional[threading.Thread] = None
        self._slot = FrameSlot(merge=Arrival.merge)
        self._last_arrival: Optional[float] = None   # stamp of the last frame offered
        self._stop = threading.Event()      # the worker thread ends (node shutdown)
        self._running = threading.Event()   # set while active: the worker takes frames
        self._frame_lock = threading.Lock()  # held by the worker through one frame
        self._active = False
        self.stats = Stats()
        self._last_counts = (0, 0)
        self._config: Optional[params.Config] = None   # the core's values (validated)
        self._ros: Dict[str, object] = {                # the ROS layer's own settings
            name: value for name, value in params.defaults().items()
            if params.BY_NAME[name].ros}
        self._start_error = ''                          # why the start values are invalid
        self._frame_limit = params.BY_NAME['max_pixels'].default
        self._prepared: Dict[tuple, object] = {}        # slow work done for a request
        self._preloaded = None                          # (key, Pipeline or error): configure
        self._abandoned: Optional[slow_work.Job] = None  # work past the wait bound
        self.last_reconfigure_error = ''
        super().__init__(node_name, **kwargs)
        parameters.declare_all(self)
        self._read_start_values()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._reset_service = self.create_service(Trigger, RESET_SERVICE, self._on_reset)
        # rclpy's own change_state (Humble, Jazzy) and set_parameters callbacks raise on
        # some client requests, which would end the process: answer failure instead.
        service_guard.guard_services(self)
        self._serve_slow_services()
        self._image_group = MutuallyExclusiveCallbackGroup()
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._diagnostics_timer = self.create_timer(self._ros['diagnostics_period'],
                                                    self._publish_diagnostics)

    def _read_start_values(self) -> None:
        """Read every parameter once, validated by the schema, into Config and ROS settings."""
        values, errors = parameters.read_each(self)
        core, ros = params.split(values)
        self._ros.update(ros)
        if errors:
            self._start_error = text.message('; '.join(errors))   # configure refuses until fixed
            return
        self._config = params.Config(core)
        self._start_error = ''
        self._frame_limit = core['max_pixels']

    def _serve_slow_services(self) -> None:
        """Let change_state and set_parameters wait for their slow work off this thread."""
        self._wake = self.create_guard_condition(lambda: None)
        group = MutuallyExclusiveCallbackGroup()
        befores = {ChangeState: self._before_change_state,
                   SetParameters: self._before_set_parameters,
                   SetParametersAtomically: self._before_set_parameters_atomically}
        for service in list(self.services):
            before = befores.get(service.srv_type)
            if before is not None:
                slow_work.serve_after(service, before, self._discard_prepared, group,
                                      self.get_logger())

    # --- lifecycle transitions ---------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """
        Take the segmenter built off this thread and create publishers.

        Through the ``change_state`` service the pipeline was built beforehand on a
        worker (:meth:`_before_change_state`); a direct call builds it here.  FAILURE
        (and stay up, unconfigured) when that failed.
        """
        preloaded, self._preloaded = self._preloaded, None
        try:
            config = self._startup_config()
            if preloaded is not None and preloaded[0] == _key(config):
                pipeline = preloaded[1]
                if isinstance(pipeline, BaseException):
                    raise pipeline
            else:
                _close_prepared(preloaded[1] if preloaded else None)
                pipeline = Pipeline(config)
        except Exception as exc:  # noqa: B902 - any failure must leave the node up
            self.last_reconfigure_error = text.message('configure: %s' % exc)
            self.get_logger().error('configure failed: %s' % text.message(exc))
            return TransitionCallbackReturn.FAILURE
        self._backend_note = pipeline.status().note
        if self._backend_note:
            self.get_logger().warn(self._backend_note)
        with self._pipeline_lock:
            self._pipeline = pipeline
        self._frame_limit = config['max_pixels']
        ros = self._ros
        out_qos = _qos(ros['qos.output_reliability'], ros['qos.depth'])
        topics = [MASK_TOPIC, ALPHA_TOPIC, COMPOSITE_TOPIC, BACKGROUND_TOPIC]
        if config['publish_foreground']:
            topics.append(FOREGROUND_TOPIC)
        self._outputs = {t: self.create_lifecycle_publisher(Image, t, out_qos) for t in topics}
        extra = [(RegionOfInterest, ROI_TOPIC), (CameraInfo, CAMERA_INFO_OUTPUT_TOPIC)]
        if ros['composite.compressed']:
            extra.append((CompressedImage, COMPOSITE_COMPRESSED_TOPIC))
        for msg_type, topic in extra:
            self._outputs[topic] = self.create_lifecycle_publisher(msg_type, topic, out_qos)
        self.get_logger().info('configured: segmenter %s on %s (%s)' % (
            pipeline.name, pipeline.backend, pipeline.describe()))
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the camera and start processing."""
        ros = self._ros
        self._last_arrival = None
        self._slot.reopen()
        self._running.set()
        if self._worker is None or not self._worker.is_alive():
            # One worker for the node's life: a thread per activation leaves a malloc
            # arena behind each time, and resident memory climbs over lifecycle cycles.
            self._stop.clear()
            self._worker = threading.Thread(target=self._work, name='matte_worker',
                                            daemon=True)
            self._worker.start()
        self._subscribe(ros['input_transport'])
        self._camera_info_sub = self.create_subscription(
            CameraInfo, CAMERA_INFO_TOPIC, self._on_camera_info,
            _qos(ros['qos.input_reliability'], ros['qos.depth']))
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
        qos = _qos(self._ros['qos.input_reliability'], self._ros['qos.depth'])
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
        stamp = _stamp_seconds(msg.header)
        last, self._last_arrival = self._last_arrival, stamp
        self._slot.put(Arrival(msg, None if last is None else stamp - last))
        time.sleep(0)

    def _reject(self, exc: Exception) -> None:
        reason = text.message(exc)
        self.stats.on_rejected(reason)
        self.get_logger().warn('rejected image: %s' % reason,
                               throttle_duration_sec=LOG_THROTTLE)

    def _work(self):
        while not self._stop.is_set():
            if not self._running.wait(0.5):
                continue
            arrival = self._slot.take(timeout=0.5)
            if arrival is None:
                continue
            with self._frame_lock:
                if self._running.is_set():
                    self._handle(arrival.msg, arrival.gap)

    def _handle(self, msg: Image, stream_gap: Optional[float] = None) -> None:
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
                                          msg.header.frame_id, stream_gap)
            except MemoryBudgetError as exc:   # a frame size over the budget: refused
                self._reject(exc)
                return
            except Exception as exc:  # noqa: B902 - one bad frame must not stop the stream
                self.stats.on_failed(text.message('%s: %s' % (type(exc).__name__, exc)))
                self.get_logger().error('frame dropped, segmenter failed: %s' % text.message(exc),
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
            outputs.append((COMPOSITE_TOPIC,) + compositing.published(
                result.composite, getattr(msg, 'encoding', '')))
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
                self._publish_failed(topic, exc)
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
        quality = self._ros['composite.jpeg_quality']
        if result.composite is not None:
            messages.append((COMPOSITE_COMPRESSED_TOPIC,
                             lambda: compressed_composite(header, result.composite, quality)))
        for topic, build in messages:
            publisher = self._outputs.get(topic)
            if publisher is None or not _wanted(publisher):
                continue
            try:
                publisher.publish(build())
            except Exception as exc:  # noqa: B902 - rmw may refuse under load; keep going
                self._publish_failed(topic, exc)

    def _publish_failed(self, topic: str, exc: Exception) -> None:
        """
        Log a refused publish, unless the context is shutting down (SIGINT, SIGTERM).

        A signal shuts the context down while the worker may be publishing its last frame;
        that publish fails with "context is invalid", which is the shutdown, not a fault.
        """
        if not self.context.ok():
            return
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
        return self._frame_limit

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

    def _startup_config(self) -> params.Config:
        """Return the core's Config to configure with; ParamError if the values are bad."""
        if self._config is None:
            self._read_start_values()
            if self._config is None:
                raise params.ParamError(self._start_error)
        return self._config

    def _on_set_parameters(self, changed) -> SetParametersResult:
        """
        Validate once, then apply: dynamic ones from the next frame, others by a swap.

        A change that needs slow work (a rebuild, a picture) takes what the service's
        coroutine prepared off this thread (:meth:`_before_set_parameters`); a direct
        ``set_parameters`` call from this process does that work here.  The answer says
        whether the change is in force: there is no later revert.
        """
        try:
            core, ros = params.split(parameters.plain_values(changed))
            ros = {name: params.validate(name, value) for name, value in ros.items()}
            base = self._config if self._config is not None else params.Config()
            new = base.with_updates(core)
        except params.ParamError as exc:
            return SetParametersResult(successful=False, reason=text.message(exc))
        with self._reconfigure_lock:
            pipeline = self._pipeline
            try:
                self._refuse_while_configured(pipeline, new)
                if pipeline is not None:
                    self._apply(pipeline, new)
            except Exception as exc:  # noqa: B902 - reject the change, keep serving
                reason = text.message(exc)
                self.last_reconfigure_error = reason
                self.get_logger().warn('parameter change rejected: %s' % reason)
                return SetParametersResult(successful=False, reason=reason)
            if self._config is not None or pipeline is not None:
                self._config = new
                self._frame_limit = new['max_pixels']
            self._ros.update(ros)
        if 'input_transport' in ros and self._active:
            self._subscribe(ros['input_transport'])
        return SetParametersResult(successful=True)

    def _refuse_while_configured(self, pipeline: Optional[Pipeline],
                                 new: params.Config) -> None:
        """Raise ValueError for changes a configured node does not take (the cache folders)."""
        for name in ('models.model_dir', 'tensorrt.engine_cache'):
            if pipeline is not None and new[name] != pipeline.config[name]:
                raise ValueError('%s cannot change while the node is configured (clean up '
                                 'first; files are written only inside the model cache)'
                                 % name)

    def _apply(self, pipeline: Pipeline, new: params.Config) -> None:
        """Put ``new`` in force on the running pipeline (fast: slow work was done before)."""
        if not pipeline.needs_work(new):
            with self._pipeline_lock:
                pipeline.update(new)
            return
        entry = self._prepared.pop((id(pipeline), _key(new)), None)
        if entry is None:   # not through the service: nobody waits on this thread
            entry = pipeline.prepare(new)
        if isinstance(entry, BaseException):
            raise entry
        kind, made = entry
        if kind == 'pipeline':
            self._backend_note = made.status().note
            if self._backend_note:
                self.get_logger().warn(self._backend_note)
            with self._pipeline_lock:
                self._pipeline = made
            pipeline.close()
            self.get_logger().info('reloaded: segmenter %s on %s' % (made.name, made.backend))
        else:
            with self._pipeline_lock:
                pipeline.update(new, picture=made)

    # --- slow work, off the executor thread ----------------------------------------------------

    def _job(self, work) -> slow_work.Job:
        return slow_work.Job(work, self._wake.trigger, discard=_close_prepared)

    async def _wait(self, job: slow_work.Job, what: str):
        """Return ``(result or error)`` of ``job``, waiting at most the bound for it."""
        if not await slow_work.finished(job, self._wake.trigger):
            job.abandon()
            self._abandoned = job
            return TimeoutError(
                '%s not applied: its loading took longer than %.0f s (it goes on in the '
                'background and is discarded; a model it downloads stays in the cache)'
                % (what, slow_work.WAIT_LIMIT_S))
        return job.error if job.error is not None else job.result

    def _busy(self) -> Optional[BaseException]:
        if self._abandoned is not None and self._abandoned.running():
            return RuntimeError('busy: an earlier load is still running; try again later')
        return None

    async def _before_change_state(self, request) -> None:
        """Build the pipeline of a ``configure`` request on a worker, before the transition."""
        label = request.transition.label
        if label != 'configure' and (label or request.transition.id
                                     != Transition.TRANSITION_CONFIGURE):
            return
        if self._pipeline is not None or self._state_machine.current_state[1] != 'unconfigured':
            return
        try:
            config = self._startup_config()
        except params.ParamError:
            return   # on_configure reports it
        busy = self._busy()
        if busy is not None:
            self._preloaded = (_key(config), busy)
            return
        job = self._job(lambda: Pipeline(config))
        self._preloaded = (_key(config), await self._wait(job, 'configure'))

    async def _before_set_parameters(self, request, atomic: bool = False) -> None:
        """
        Do the slow work of a parameter request on a worker, before rclpy applies it.

        rclpy's ``set_parameters`` applies the parameters one by one (each through
        :meth:`_on_set_parameters`), ``set_parameters_atomically`` all at once; the same
        steps are followed here, each on the pipeline the step before would leave.
        """
        pipeline, config = self._pipeline, self._config
        if pipeline is None or config is None:
            return
        steps = [request.parameters] if atomic else [[p] for p in request.parameters]
        for step in steps:
            try:
                values = {m.name: parameters.plain(Parameter.from_parameter_msg(m).value)
                          for m in step}
                new = config.with_updates(params.split(values)[0])
                self._refuse_while_configured(pipeline, new)
            except Exception:  # noqa: B902 - refused by the callback itself, without work
                continue
            if not pipeline.needs_work(new):
                config = new
                continue
            key = (id(pipeline), _key(new))
            entry = self._busy()
            if entry is None:
                entry = await self._wait(self._job(lambda p=pipeline, n=new: p.prepare(n)),
                                         'the change of %s' % ', '.join(values))
            self._prepared[key] = entry
            if isinstance(entry, BaseException):
                continue
            if entry[0] == 'pipeline':
                pipeline = entry[1]
            config = new

    async def _before_set_parameters_atomically(self, request) -> None:
        await self._before_set_parameters(request, atomic=True)

    def _discard_prepared(self) -> None:
        """Release what slow work made for a request and the callback did not take."""
        prepared, self._prepared = self._prepared, {}
        for entry in prepared.values():
            _close_prepared(entry)
        preloaded, self._preloaded = self._preloaded, None
        if preloaded is not None:
            _close_prepared(preloaded[1])

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
        status = pipeline.status() if pipeline else None  # live: fallbacks after configure
        level, message = diagnostics.with_busy(level, message, status.busy if status else '')
        if status is not None and status.note != self._backend_note:
            self._backend_note = status.note
            if status.note:
                self.get_logger().warn(status.note)
        values = dict(snap)
        values.update(
            state='active' if self._active else (
                'inactive' if pipeline is not None else 'unconfigured'),
            segmenter=pipeline.name if pipeline else '',
            backend=status.backend if status else '',
            backend_note=status.note if status else '',
            dropped=self._slot.dropped,
            resets=getattr(pipeline.segmenter, 'resets', 0) if pipeline else 0,
            last_reset_reason=(getattr(pipeline.segmenter, 'last_reset_reason', '') or ''
                               if pipeline else ''),
            last_reject_reason=self.stats.last_reject_reason,
            **{'rejected[%s]' % k: n for k, n in self.stats.rejected_reasons.copy().items()},
            last_failure=self.stats.last_failure,
            last_reconfigure_error=self.last_reconfigure_error,
            **self._tracking_values())
        msg = diagnostics.status_message(self.get_clock().now().to_msg(),
                                         '%s: matte' % self.get_fully_qualified_name(),
                                         level, message, values)
        self._diagnostics_pub.publish(msg)


def compressed_composite(header, composite, quality: int) -> CompressedImage:
    """Return ``~/composite/compressed``: JPEG, or PNG (alpha kept) for a BGRA composite."""
    if composite.ndim == 3 and composite.shape[2] == 4:
        return CompressedImage(header=header, format='bgra8; png compressed bgra8',
                               data=compressed.encode(composite, 'png'))
    return CompressedImage(header=header, format='bgr8; jpeg compressed bgr8',
                           data=compressed.encode(composite, 'jpeg', quality))


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
