"""
Several cameras and their consumer in one process: the feed of the many-camera benchmark.

For each camera namespace ``NS`` the rig publishes frames on ``NS/image`` at ``--rate``
Hz (best effort, depth 1: a camera driver's latest-frame stream; the cameras' phases are
spread evenly over one period, as free-running cameras are not in step) and subscribes
to ``NS/matte/{mask,alpha,composite}`` as a tracker and RViz would.  Each frame is
stamped with its publish time, so a composite's latency is its receipt time minus its
stamp (one clock, this process's).  One rig feeds every layout under test (one process
for all cameras, or one process per camera), so its own cost is the same in both::

    python -m matte_ros.measure.camera_rig --namespaces /cam0 /cam1 --out rig.json

It first primes each camera (its first frame every 0.25 s until that camera's composite
arrives: the node has then matched the publisher and is active), then sends ``--warmup``
seconds that are not counted, then the measured window.  The JSON holds, per camera,
the frames sent and the composites received of frames stamped inside the window and
their latencies, and the window's bounds on ``time.monotonic()`` (the system's
monotonic clock, so that another process can match its own samples to the window).
"""

import argparse
import json
import time
from typing import Dict
from typing import List

from matte_ros import heap
from matte_ros.measure import player
from matte_ros.ros import dds
from matte_ros.ros import executor
from matte_ros.ros.image_msgs import make_image_msg
import rclpy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

OUTPUTS = ('mask', 'alpha', 'composite')
#: Seconds the rig waits, after the window, for outputs of frames sent inside it.
DRAIN_SECONDS = 3.0
#: Distinct frames per camera (the demo sequence, each camera from its own offset).
FRAMES = 60


def _stamp_ns(header) -> int:
    return header.stamp.sec * 10 ** 9 + header.stamp.nanosec


class Camera:
    """One camera: its publisher, its frames, and what came back for it."""

    def __init__(self, node, namespace: str, frames, index: int, count: int):
        self.namespace = namespace.rstrip('/')
        self.pub = node.create_publisher(
            Image, self.namespace + '/image',
            QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        self.messages = [make_image_msg(Header(frame_id='camera%d' % index), f, 'bgr8')
                         for f in frames]
        self.offset = (index * len(self.messages)) // max(1, count)
        self.sent: List[int] = []        # stamps (ns) of the frames sent
        self.received: Dict[str, Dict[int, int]] = {name: {} for name in OUTPUTS}
        for name in OUTPUTS:
            node.create_subscription(
                Image, '%s/matte/%s' % (self.namespace, name),
                lambda msg, n=name: self._on_output(node, msg, n),
                QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))

    def _on_output(self, node, msg, name: str) -> None:
        self.received[name][_stamp_ns(msg.header)] = node.get_clock().now().nanoseconds

    def send(self, node, count: int) -> int:
        """Publish the next frame (fresh stamp); return its stamp in ns."""
        msg = self.messages[(self.offset + count) % len(self.messages)]
        msg.header.stamp = node.get_clock().now().to_msg()
        self.pub.publish(msg)
        return _stamp_ns(msg.header)

    def matched(self, node) -> bool:
        """Tell whether the node's subscription and every output publisher are known here."""
        return (self.pub.get_subscription_count() >= 1
                and all(node.count_publishers('%s/matte/%s' % (self.namespace, name)) >= 1
                        for name in OUTPUTS))

    def summary(self, start_ns: int, end_ns: int) -> Dict[str, object]:
        """Return frames sent and outputs received for stamps in ``[start_ns, end_ns)``."""
        sent = [s for s in self.sent if start_ns <= s < end_ns]
        composites = self.received['composite']
        latencies = [(composites[s] - s) / 1e6 for s in sent if s in composites]
        complete = sum(1 for s in sent if all(s in self.received[n] for n in OUTPUTS))
        return {'namespace': self.namespace, 'sent': len(sent),
                'received': len(latencies), 'complete': complete,
                'latency_ms': latencies}


def _spin_until(node, deadline: float, done) -> bool:
    while time.monotonic() < deadline:
        if done():
            return True
        rclpy.spin_once(node, timeout_sec=0.02)
    return done()


def _prime(node, cameras: List[Camera], deadline: float) -> List[str]:
    """Send each camera's first frame every 0.25 s until its composite arrived; return the rest."""
    waiting = list(cameras)
    next_send = 0.0
    while waiting and time.monotonic() < deadline:
        if time.monotonic() >= next_send:
            for camera in waiting:
                camera.send(node, 0)
            next_send = time.monotonic() + 0.25
        rclpy.spin_once(node, timeout_sec=0.02)
        waiting = [c for c in waiting if not c.received['composite']]
    return [c.namespace for c in waiting]


def run(node, cameras: List[Camera], rate: float, warmup: float, seconds: float,
        timeout: float = 120.0) -> Dict[str, object]:
    """Prime, warm up and measure; return the per-camera summaries and the window."""
    deadline = time.monotonic() + timeout
    if not _spin_until(node, deadline, lambda: all(c.matched(node) for c in cameras)):
        missing = [c.namespace for c in cameras if not c.matched(node)]
        return {'error': 'no node matched the cameras %s' % ', '.join(missing)}
    silent = _prime(node, cameras, deadline)
    if silent:
        return {'error': 'no composite from %s' % ', '.join(silent)}
    for camera in cameras:
        for name in OUTPUTS:
            camera.received[name].clear()
    period = 1.0 / rate
    start = time.monotonic()
    due = [start + period * i / len(cameras) for i in range(len(cameras))]
    counts = [0] * len(cameras)
    window_start = start + warmup
    window_end = window_start + seconds
    bounds_ns = [None, None]
    with executor.until_shutdown(node.context):
        while node.context.ok():
            now = time.monotonic()
            if bounds_ns[0] is None and now >= window_start:
                bounds_ns[0] = node.get_clock().now().nanoseconds
            if now >= window_end:
                bounds_ns[1] = node.get_clock().now().nanoseconds
                break
            first = min(range(len(cameras)), key=lambda i: due[i])
            if due[first] <= now:
                camera = cameras[first]
                camera.sent.append(camera.send(node, counts[first]))
                counts[first] += 1
                due[first] += period
                continue
            rclpy.spin_once(node, timeout_sec=max(0.0, min(due[first] - now, 0.01)))
        _spin_until(node, time.monotonic() + DRAIN_SECONDS, lambda: False)
    if bounds_ns[1] is None:
        return {'error': 'interrupted'}
    return {'window_monotonic': [window_start, window_end],
            'seconds': seconds, 'rate_hz': rate,
            'cameras': [c.summary(bounds_ns[0], bounds_ns[1]) for c in cameras]}


def main(argv=None) -> int:
    """Feed the cameras, measure, and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--namespaces', nargs='+', required=True)
    parser.add_argument('--rate', type=float, default=15.0)
    parser.add_argument('--size', type=player._size, default=(640, 480), metavar='WxH')
    parser.add_argument('--warmup', type=float, default=5.0)
    parser.add_argument('--seconds', type=float, default=20.0)
    parser.add_argument('--timeout', type=float, default=120.0,
                        help='seconds to wait for the nodes to serve every camera')
    parser.add_argument('--out', required=True, help='JSON report')
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0:
        parser.error('--rate and --seconds must be positive')
    dds.use_large_frame_profile()
    heap.keep_freed_frames()
    rclpy.init()
    node = rclpy.create_node('matte_camera_rig')
    frames = list(player.source_frames('demo', FRAMES, args.size))
    cameras = [Camera(node, ns, frames, i, len(args.namespaces))
               for i, ns in enumerate(args.namespaces)]
    report = run(node, cameras, args.rate, args.warmup, args.seconds, args.timeout)
    with open(args.out, 'w') as stream:
        json.dump(report, stream)
    node.destroy_node()
    rclpy.try_shutdown()
    if 'error' in report:
        print('camera rig: %s' % report['error'], flush=True)
        return 1
    print('camera rig: %s' % ', '.join('%s %d/%d' % (c['namespace'], c['received'], c['sent'])
                                       for c in report['cameras']), flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
