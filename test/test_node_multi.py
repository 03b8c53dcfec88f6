"""
Two cameras in one process (the matte container), seen over DDS.

The container and its two camera nodes run in this test process on an executor thread of
their own; a separate client node publishes each camera's frames and reads its outputs
through DDS, as from another process.  Each camera's outputs must carry its own headers
and equal what a single-camera core pipeline gives on the same frames; with rvm the
model must be loaded once for both, ``~/reset`` and lifecycle transitions of one camera
must leave the other's stream alone.
"""

import threading

from builtin_interfaces.msg import Time
from conftest import davis_frames
from conftest import shared_path
from live_node import textured_frames
from matte_ros import shared_models
from matte_ros.image_encodings import decode
from matte_ros.pipeline import Pipeline
from matte_ros.ros.image_msgs import make_image_msg
from matte_ros.ros.lifecycle_client import LifecycleClient
from matte_ros.ros.multi import camera_namespaces
from matte_ros.ros.multi import MatteContainer
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

CAMERAS = ('/multi_a', '/multi_b')
SIZE = (224, 128)   # width, height: small, the test is about routing and state


class Container:
    """The matte container with ``values`` for every camera, spun on a thread."""

    def __init__(self, values, autostart=True):
        overrides = [Parameter(k, value=v) for k, v in values.items()]
        self.node = MatteContainer(
            camera_overrides=overrides,
            parameter_overrides=[Parameter('cameras', value=list(CAMERAS))])
        try:
            # the memory budget counts batches of up to as many frames as cameras
            assert shared_models.CAMERAS >= len(CAMERAS)
            if autostart:
                assert self.node.start_cameras() == len(CAMERAS)
        except BaseException:
            self.node.stop()
            for node in self.node.nodes():
                node.destroy_node()
            raise
        self.executor = SingleThreadedExecutor()
        for node in self.node.nodes():
            self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self):
        self.node.stop()
        counted = shared_models.CAMERAS
        self.executor.shutdown(timeout_sec=2.0)
        self.thread.join(5.0)
        for node in self.node.nodes():
            node.destroy_node()
        assert counted == 1   # nothing left counted for later tests


class Camera:
    """The client side of one camera: its input publisher, its alphas by header."""

    def __init__(self, client, namespace):
        self.client = client
        self.namespace = namespace
        self.lifecycle = LifecycleClient(client, namespace + '/matte', timeout=30.0)
        self.pub = client.create_publisher(
            Image, namespace + '/image',
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.alphas = {}
        client.create_subscription(Image, namespace + '/matte/alpha', self._on_alpha,
                                   QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))

    def _on_alpha(self, msg):
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id)
        self.alphas[key] = decode(msg.encoding, msg.height, msg.width, msg.step,
                                  msg.is_bigendian, msg.data)

    def spin_until(self, done, seconds=30.0):
        end = rclpy.clock.Clock().now().nanoseconds + seconds * 1e9
        while rclpy.clock.Clock().now().nanoseconds < end:
            rclpy.spin_once(self.client, timeout_sec=0.02)
            if done():
                return True
        return False

    def wait_connected(self):
        assert self.spin_until(lambda: self.pub.get_subscription_count() > 0), \
            '%s/matte does not subscribe to its image' % self.namespace

    def alpha_for(self, frame, sec):
        frame_id = self.namespace.strip('/') + '_optical'
        key = (sec, 0, frame_id)
        self.pub.publish(make_image_msg(Header(stamp=Time(sec=sec), frame_id=frame_id),
                                        frame, 'bgr8'))
        assert self.spin_until(lambda: key in self.alphas), \
            'no alpha with header %s on %s' % (key, self.namespace)
        return self.alphas[key]


def _headers_are_own(cameras):
    """Return True when every alpha a camera received carries that camera's frame_id."""
    return all(key[2] == cam.namespace.strip('/') + '_optical'
               for cam in cameras for key in cam.alphas)


def test_camera_namespaces_refuse_empty_repeated_and_invalid_lists():
    assert camera_namespaces(['front', '/robot/rear/']) == ['/front', '/robot/rear']
    for bad in ([], 'front', ['front', '/front'], ['1cam'], ['a b']):
        with pytest.raises(ValueError):
            camera_namespaces(bad)


def test_two_bgsub_cameras_in_one_process_each_equal_a_single_camera_pipeline(client_node):
    values = {'segmenter': 'bgsub', 'composite.mode': 'none', 'backend': 'cpu'}
    container = Container(values)
    try:
        cams = [Camera(client_node, ns) for ns in CAMERAS]
        for cam in cams:
            cam.wait_connected()
        streams = [textured_frames(8, SIZE[1], SIZE[0], seed=s) for s in (1, 2)]
        references = [Pipeline(values) for _ in cams]
        for i in range(8):
            for cam, frames, reference in zip(cams, streams, references):
                got = cam.alpha_for(frames[i], 100 + i)
                want = reference.process(frames[i], 100.0 + i,
                                         cam.namespace.strip('/') + '_optical').alpha
                assert np.array_equal(got, want), '%s frame %d' % (cam.namespace, i)
        assert _headers_are_own(cams)
        # the two background models are separate: the streams differ, so do the mattes
        assert not np.array_equal(cams[0].alphas[(107, 0, 'multi_a_optical')],
                                  cams[1].alphas[(107, 0, 'multi_b_optical')])
        for reference in references:
            reference.close()
    finally:
        container.close()


def test_rvm_cameras_share_one_session_and_keep_their_own_state(client_node):
    model = shared_path('models', 'rvm_mobilenetv3_fp32.onnx')
    values = {'segmenter': 'rvm', 'models.model_path': model, 'models.auto_fetch': False,
              'rvm.downsample_ratio': 0.5, 'rvm.max_gap': 0.0, 'composite.mode': 'none',
              'max_pixels': SIZE[0] * SIZE[1],   # the memory budget counts a batch of 2
              'backend': 'cpu'}
    loads = shared_models.CACHE.loads
    container = Container(values)
    references = []
    try:
        assert shared_models.CACHE.loads == loads + 1, 'the model is loaded once for both'
        runners = [n._pipeline.segmenter.runner for n in container.node.cameras]
        assert runners[0].users == 2 and runners[0].batcher is runners[1].batcher
        cams = [Camera(client_node, ns) for ns in CAMERAS]
        for cam in cams:
            cam.wait_connected()
        streams = [davis_frames(name, 5, SIZE) for name in ('parkour', 'dance-twirl')]
        references = [Pipeline(values) for _ in cams]
        fresh = Pipeline(values)
        assert shared_models.CACHE.loads == loads + 1, 'in-process pipelines share it too'

        def want(index, frame, sec, pipeline):
            frame_id = CAMERAS[index].strip('/') + '_optical'
            return pipeline.process(frame, float(sec), frame_id).alpha

        for i in range(3):
            for k, cam in enumerate(cams):
                got = cam.alpha_for(streams[k][i], 200 + i)
                assert np.array_equal(got, want(k, streams[k][i], 200 + i, references[k])), \
                    '%s frame %d differs from its single-camera reference' % (cam.namespace, i)
        # ~/reset of camera a: a starts afresh, b goes on with its carried state
        assert cams[0].lifecycle.reset().success
        got_b = cams[1].alpha_for(streams[1][3], 203)
        assert np.array_equal(got_b, want(1, streams[1][3], 203, references[1])), \
            "b's state went with a's reset"
        fresh_b = Pipeline(values)
        references.append(fresh_b)
        assert not np.array_equal(got_b, want(1, streams[1][3], 203, fresh_b)), \
            'b carries no state (the check above would prove nothing)'
        got_a = cams[0].alpha_for(streams[0][3], 203)
        assert np.array_equal(got_a, want(0, streams[0][3], 203, fresh)), 'a was not reset'
        assert not np.array_equal(got_a, want(0, streams[0][3], 203, references[0])), \
            'the reset made no difference'
        references[0].close()
        references[0] = fresh   # a's reference from here on
        # camera a deactivated: b serves on, a sends nothing; a activates again
        assert cams[0].lifecycle.change_state('deactivate')
        assert cams[0].lifecycle.state() == 'inactive'
        assert cams[1].lifecycle.state() == 'active'
        got_b = cams[1].alpha_for(streams[1][4], 204)
        assert np.array_equal(got_b, want(1, streams[1][4], 204, references[1]))
        assert cams[0].lifecycle.change_state('activate')
        assert _headers_are_own(cams)
    finally:
        for reference in references:
            reference.close()
        container.close()


@pytest.mark.parametrize('override', [Parameter('max_pixels', value='many'),
                                      Parameter('rvm.batch_max', value=99)])
def test_a_bad_camera_override_is_refused_and_leaves_nothing_counted(client_node, override):
    # the memory budget counts the cameras of live containers: a container that failed
    # to build must give its count back (else later checks count cameras that are gone)
    import rclpy.exceptions
    with pytest.raises((ValueError, rclpy.exceptions.ParameterException)):
        MatteContainer(camera_overrides=[override],
                       parameter_overrides=[Parameter('cameras', value=list(CAMERAS))])
    assert shared_models.CAMERAS == 1
