"""
Record the node's outputs (and its input) to PNG files, with latency per frame.

Frames are matched across topics by their header stamp, which the node copies
unchanged from input to every output::

    python -m matte_ros.measure.recorder --node /demo/matte --input /demo/image --out out/
"""

import argparse
import json
import os
import time

import cv2
from matte_ros import heap
from matte_ros.image_encodings import image_to_bgr8
from matte_ros.ros import dds
from matte_ros.ros import executor
import rclpy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image

STREAMS = ('mask', 'alpha', 'composite')


def _stamp_key(header) -> str:
    return '%d.%09d' % (header.stamp.sec, header.stamp.nanosec)


def _wait_for_publishers(node, topics, timeout: float = 30.0) -> None:
    """Spin until each topic has a publisher known to this node (or ``timeout``, said)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(node.count_publishers(t) > 0 for t in topics):
            return
        rclpy.spin_once(node, timeout_sec=0.05)
    print('no publisher after %.0f s on: %s' % (
        timeout, ', '.join(t for t in topics if node.count_publishers(t) == 0)), flush=True)


def main(argv=None) -> int:
    """Record until ``--count`` composites arrived or ``--idle`` seconds pass without any."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--node', default='/matte', help='fully qualified node name')
    parser.add_argument('--input', default='', help='also record this input topic')
    parser.add_argument('--out', required=True)
    parser.add_argument('--count', type=int, default=0)
    parser.add_argument('--idle', type=float, default=5.0)
    parser.add_argument('--timeout', type=float, default=300.0)
    parser.add_argument('--ready-file', default='', metavar='PATH',
                        help='create PATH once every output topic of the node has a '
                             'publisher this process knows of (its subscriptions have '
                             'matched): start the camera after that and no output is lost')
    parser.add_argument('--no-images', action='store_true',
                        help='only measure latency (benchmarks): decode and write nothing')
    args = parser.parse_args(argv)
    dds.use_large_frame_profile()
    heap.keep_freed_frames()
    rclpy.init()
    node = rclpy.create_node('matte_recorder')
    latencies = {}
    pending = []   # PNGs are written after the run, so that encoding them adds no latency
    last = [time.monotonic()]
    done = [0]
    topics = {name: '%s/%s' % (args.node.rstrip('/'), name) for name in STREAMS}
    if args.input:
        topics['input'] = args.input
    for name in topics:
        os.makedirs(args.out if args.no_images else os.path.join(args.out, name),
                    exist_ok=True)

    def on_msg(msg, name):
        now = node.get_clock().now().nanoseconds
        key = _stamp_key(msg.header)
        stamp_ns = msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec
        if not args.no_images:
            image = image_to_bgr8(msg.encoding, msg.height, msg.width, msg.step,
                                  msg.is_bigendian, msg.data)
            if name in ('mask', 'alpha'):
                image = image[..., 0]
            pending.append((os.path.join(args.out, name, key + '.png'), image.copy()))
        if name != 'input':
            latencies.setdefault(key, {})[name] = (now - stamp_ns) / 1e6
        if name == 'composite':
            done[0] += 1
        last[0] = time.monotonic()

    for name, topic in topics.items():
        reliability = (ReliabilityPolicy.BEST_EFFORT if name == 'input'
                       else ReliabilityPolicy.RELIABLE)
        node.create_subscription(Image, topic, lambda m, n=name: on_msg(m, n),
                                 QoSProfile(depth=50, reliability=reliability))
    with executor.until_shutdown(node.context):
        if args.ready_file:
            _wait_for_publishers(node, [t for n, t in topics.items() if n != 'input'])
            with open(args.ready_file, 'w') as f:
                f.write('ready\n')
        start = time.monotonic()
        while time.monotonic() - start < args.timeout and node.context.ok():
            rclpy.spin_once(node, timeout_sec=0.1)
            if args.count and done[0] >= args.count:
                break
            if done[0] and time.monotonic() - last[0] > args.idle:
                break
    for path, image in pending:
        cv2.imwrite(path, image)
    with open(os.path.join(args.out, 'latency_ms.json'), 'w') as f:
        json.dump(latencies, f, indent=1, sort_keys=True)
    print('recorded %d frames into %s' % (done[0], args.out), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
