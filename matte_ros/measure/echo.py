"""
An echo node: the transport floor under the node-added latency of ``matte-ros bench``.

It does what the matte node does around its segmenter and nothing else: takes each
``image`` (best effort, depth 1) on the same rclpy executor, and publishes ``~/mask`` and
``~/alpha`` (mono8 of the frame's size) and ``~/composite`` (the frame itself, bgr8) with
the input's header, reliable, depth 1, through the same message building
(:func:`matte_ros.ros.image_msgs.make_image_msg`).  The latency the recorder measures
through it is what rclpy and DDS cost between three processes on this machine, the
floor of the node's own added latency.

Like the node it measures each frame's stamp-to-published latency on its own clock and
publishes window medians on ``/diagnostics`` (``latency_ms[p50]``,
``node_added_ms[p50]``, the same keys and counting rule): with no pipeline, its whole
latency is "added", the floor of the node's in-node figure at the same frame rate.

Example::

    python -m matte_ros.measure.echo --namespace /bench_echo
"""

import argparse
import sys

from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
from matte_ros import heap
from matte_ros.ros import dds
from matte_ros.ros import diagnostics
from matte_ros.ros import executor
from matte_ros.ros.image_msgs import make_image_msg
from matte_ros.stats import stamp_age
from matte_ros.stats import Stats
import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image

#: Seconds between two diagnostics messages (the bench's node uses the same).
DIAGNOSTICS_PERIOD = 0.5


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
        self.stats = Stats()
        self._diagnostics = self.create_publisher(
            DiagnosticArray, diagnostics.TOPIC, 10)
        self.create_timer(DIAGNOSTICS_PERIOD, self._publish_diagnostics)

    def _on_image(self, msg: Image) -> None:
        if self._zeros.shape != (msg.height, msg.width):
            self._zeros = np.zeros((msg.height, msg.width), np.uint8)
        frame = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, -1)
        for publisher, (array, encoding) in zip(self.outputs, (
                (self._zeros, 'mono8'), (self._zeros, 'mono8'), (frame, 'bgr8'))):
            publisher.publish(make_image_msg(msg.header, array, encoding))
        age = stamp_age(msg.header.stamp, self.get_clock().now().nanoseconds)
        self.stats.on_processed(0.0, {}, age, age)

    def _publish_diagnostics(self) -> None:
        self._diagnostics.publish(diagnostics.status_message(
            self.get_clock().now().to_msg(), '%s: echo' % self.get_fully_qualified_name(),
            DiagnosticStatus.OK, 'echo', self.stats.snapshot()))


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
