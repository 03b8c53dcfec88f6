"""
Publish frames from a folder, a video, a camera or the built-in demo sequence.

A stand-in for a camera driver in the demo, the benchmarks and the tests::

    python -m matte_ros.measure.player --source demo --topic /demo/image --rate 15
"""

import argparse
import time

import cv2
from matte_ros import heap
from matte_ros.measure import datasets
from matte_ros.measure import demo_sequence
from matte_ros.ros import dds
from matte_ros.ros import executor
from matte_ros.ros.image_msgs import make_image_msg
import rclpy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header


def source_frames(source: str, count: int, size=None):
    """Yield BGR frames from ``source`` ('demo' = the built-in sequence), resized to ``size``."""
    if source == 'demo':
        for _, frame, _ in demo_sequence.frames(count or 90, size or (640, 480)):
            yield frame
        return
    for i, (_, frame) in enumerate(datasets.iter_frames(source)):
        if count and i >= count:
            return
        if size and (frame.shape[1], frame.shape[0]) != tuple(size):
            frame = cv2.resize(frame, tuple(size), interpolation=cv2.INTER_AREA)
        yield frame


def _size(text: str):
    width, height = text.lower().split('x')
    return int(width), int(height)


def _prime(node, pub, msg, topic: str, deadline: float) -> int:
    """
    Send ``msg`` (fresh stamp) every 0.25 s until an image arrives on ``topic``.

    A publisher that sees its subscriber may still be unknown to that subscriber for a
    while (discovery is not symmetric); best-effort frames sent meanwhile are lost.  An
    output of the node proves the path works.  Returns the frames sent.
    """
    seen = []  # images received on ``topic``
    sub = node.create_subscription(Image, topic, seen.append,
                                   QoSProfile(depth=1,
                                              reliability=ReliabilityPolicy.BEST_EFFORT))
    sent = 0
    next_send = time.monotonic()
    while not seen and time.monotonic() < deadline:
        if time.monotonic() >= next_send:
            msg.header.stamp = node.get_clock().now().to_msg()
            pub.publish(msg)
            sent += 1
            next_send += 0.25
        rclpy.spin_once(node, timeout_sec=0.02)
    node.destroy_subscription(sub)
    if not seen:
        print('no image on %s after %d priming frames; sending the sequence anyway'
              % (topic, sent), flush=True)
    return sent


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
    parser.add_argument('--size', type=_size, default=None, metavar='WxH',
                        help='resize frames to this size (demo: render at it)')
    parser.add_argument('--seconds', type=float, default=0.0,
                        help='repeat the frames until this many seconds passed (0 = once)')
    parser.add_argument('--prime-until', default='', metavar='TOPIC',
                        help='before the sequence, send its first frame every 0.25 s until '
                             "an image arrives on TOPIC (the node's output): the node has "
                             'then matched this publisher, and no frame of the sequence is '
                             'lost to discovery')
    args = parser.parse_args(argv)
    dds.use_large_frame_profile()
    heap.keep_freed_frames()
    rclpy.init()
    node = rclpy.create_node('matte_player')
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE if args.reliable
                     else ReliabilityPolicy.BEST_EFFORT)
    pub = node.create_publisher(Image, args.topic, qos)
    deadline = time.monotonic() + 30.0
    while pub.get_subscription_count() < args.wait_subscribers and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    # messages are built before the run, so that the rate is not limited by conversion;
    # each gets a fresh stamp (the publish time) just before it is sent
    messages = [make_image_msg(Header(frame_id=args.frame_id), frame, 'bgr8')
                for frame in source_frames(args.source, args.count, args.size)]
    if args.prime_until and messages:
        primed = _prime(node, pub, messages[0], args.prime_until, deadline + 30.0)
        print('primed with %d frames' % primed, flush=True)
    period = 1.0 / args.rate if args.rate > 0 else 0.0
    start = next_time = time.monotonic()
    sent = 0
    with executor.until_shutdown(node.context):
        while messages and node.context.ok():
            for msg in messages:
                msg.header.stamp = node.get_clock().now().to_msg()
                pub.publish(msg)
                sent += 1
                next_time += period
                delay = next_time - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if args.seconds and time.monotonic() - start >= args.seconds:
                    break
            if not args.seconds or time.monotonic() - start >= args.seconds:
                break
    print('sent %d frames on %s in %.3f s' % (sent, pub.topic_name, time.monotonic() - start),
          flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
