"""
Publish frames from a folder, a video, a camera or the built-in demo sequence.

A stand-in for a camera driver in the demo, the benchmarks and the tests::

    python -m matte_ros.ros.player --source demo --topic /demo/image --rate 15
"""

import argparse
import time

from matte_ros import datasets
from matte_ros import demo_sequence
from matte_ros.ros import dds
from matte_ros.ros.image_msgs import make_image_msg
import rclpy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header


def source_frames(source: str, count: int):
    """Yield BGR frames from ``source`` ('demo' = the built-in sequence)."""
    if source == 'demo':
        for _, frame, _ in demo_sequence.frames(count or 90):
            yield frame
        return
    for i, (_, frame) in enumerate(datasets.iter_frames(source)):
        if count and i >= count:
            return
        yield frame


def main(argv=None) -> int:
    """Publish the frames at ``--rate`` Hz, each stamped with the publish time."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--source', default='demo')
    parser.add_argument('--topic', default='image')
    parser.add_argument('--rate', type=float, default=15.0)
    parser.add_argument('--count', type=int, default=0, help='frames to send (0 = all)')
    parser.add_argument('--frame-id', default='camera')
    parser.add_argument('--wait-subscribers', type=int, default=1)
    parser.add_argument('--reliable', action='store_true')
    args = parser.parse_args(argv)
    dds.use_large_frame_profile()
    rclpy.init()
    node = rclpy.create_node('matte_player')
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE if args.reliable
                     else ReliabilityPolicy.BEST_EFFORT)
    pub = node.create_publisher(Image, args.topic, qos)
    deadline = time.monotonic() + 30.0
    while pub.get_subscription_count() < args.wait_subscribers and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    frames = list(source_frames(args.source, args.count))
    period = 1.0 / args.rate if args.rate > 0 else 0.0
    next_time = time.monotonic()
    sent = 0
    try:
        for frame in frames:
            header = Header(frame_id=args.frame_id, stamp=node.get_clock().now().to_msg())
            pub.publish(make_image_msg(header, frame, 'bgr8'))
            sent += 1
            next_time += period
            delay = next_time - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    except KeyboardInterrupt:
        pass
    print('sent %d frames on %s' % (sent, pub.topic_name), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
