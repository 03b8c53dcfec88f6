"""
An echo node: the transport floor under the node-added latency of ``matte-ros bench``.

It does what the matte node does around its segmenter and nothing else: takes each
``image`` (best effort, depth 1) on the same rclpy executor, and publishes ``~/mask`` and
``~/alpha`` (mono8 of the frame's size) and ``~/composite`` (the frame itself, bgr8) with
the input's header, reliable, depth 1, through the same message building
(:func:`matte_ros.ros.image_msgs.make_image_msg`).  The latency the recorder measures
through it is what rclpy and DDS cost between three processes on this machine, the
floor of the node's own added latency.

Example::

    python -m matte_ros.ros.echo --namespace /bench_echo
"""

import argparse
import sys

from matte_ros import heap
from matte_ros.ros import dds
from matte_ros.ros import executor
from matte_ros.ros.image_msgs import make_image_msg
import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image


class Echo(Node):
    """Republish every input frame as mask, alpha (zeros) and composite (itself)."""

    def __init__(self, namespace: str):
        super().__init__('echo', namespace=namespace)
        reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        self.outputs = [self.create_publisher(Image, '~/' + name, reliable)
                        for name in ('mask', 'alpha', 'composite')]
        self.create_subscription(
            Image, 'image', self._on_image,
            QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        self._zeros = np.zeros((0, 0), np.uint8)

    def _on_image(self, msg: Image) -> None:
        if self._zeros.shape != (msg.height, msg.width):
            self._zeros = np.zeros((msg.height, msg.width), np.uint8)
        frame = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, -1)
        for publisher, (array, encoding) in zip(self.outputs, (
                (self._zeros, 'mono8'), (self._zeros, 'mono8'), (frame, 'bgr8'))):
            publisher.publish(make_image_msg(msg.header, array, encoding))


def main(argv=None) -> int:
    """Run the echo node until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--namespace', default='/bench_echo')
    args = parser.parse_args(argv)
    dds.use_large_frame_profile()
    heap.keep_freed_frames()
    rclpy.init()
    executor.spin(Echo(args.namespace))
    return 0


if __name__ == '__main__':
    sys.exit(main())
