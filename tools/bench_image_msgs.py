#!/usr/bin/env python3
"""
Print a table of the per-frame cost of image message I/O and compositing.

Measures, at 640×480 and 1280×720, the cost of filling ``sensor_msgs/Image.data`` from
a NumPy array, an ``array.array`` and ``bytes`` (why :func:`matte_ros.image_encodings.encode`
returns an ``array.array``), building a whole message, serialising it, decoding it
back (zero-copy view, then BGR conversion) and the compositing stages the node runs on
every frame.  Each cell is the median over ``--repeat`` runs (fewer for the slow NumPy
assignment).  The machine's speed drifts: compare rows of one run, not runs.

Example::

    .venv/bin/python tools/bench_image_msgs.py --repeat 30
"""

import argparse
import array
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
from matte_ros import compositing  # noqa: E402
from matte_ros import image_encodings  # noqa: E402
from matte_ros import params  # noqa: E402
from matte_ros.ros import image_msgs  # noqa: E402
import numpy as np  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

SIZES = ((640, 480), (1280, 720))


def median_ms(fn, repeat):
    """
    Return the median wall time of ``fn()`` in milliseconds over ``repeat`` calls.

    Returns NaN when ``fn`` fails (rclpy with ``ROS_PYTHON_CHECK_FIELDS=1`` refuses a NumPy
    array in ``msg.data`` outright).
    """
    try:
        fn()
    except (AssertionError, TypeError):
        return float('nan')
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def frame_and_alpha(width, height):
    """Return a camera-like BGR frame and a soft alpha with a person-sized blob."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 128 + 60 * np.sin(xx / 37.0) * np.cos(yy / 29.0)
    frame = np.clip(base[..., None] + rng.normal(0, 12, (height, width, 3)), 0, 255)
    frame = frame.astype(np.uint8)
    dist = np.hypot((xx - width / 2) / (width / 5), (yy - height / 2) / (height / 2.5))
    alpha = np.clip(1.5 - dist, 0, 1).astype(np.float32)
    return frame, alpha


def compositor(**changes):
    """Return a Compositor with the defaults plus ``changes`` (dots written as __)."""
    values = params.defaults()
    for key, value in changes.items():
        values[key.replace('__', '.')] = value
    return compositing.Compositor(values)


def rows_for(width, height, repeat, picture_path):
    """Return ``[(label, ms)]`` for one frame size."""
    frame, alpha = frame_and_alpha(width, height)
    rgb = image_encodings.from_bgr8(frame, 'rgb8')
    uyvy = image_encodings.from_bgr8(frame, 'yuv422')
    header = Header(frame_id='camera')
    msg = Image()
    as_array = array.array('B', frame.tobytes())
    as_bytes = frame.tobytes()
    bgr_msg = image_msgs.make_image_msg(header, frame, 'bgr8')
    rgb_msg = image_msgs.make_image_msg(header, rgb, 'rgb8')
    yuv_msg = image_msgs.make_image_msg(header, uyvy, 'yuv422')
    mask = compositing.alpha_to_mask(alpha, 0.5, 0)
    slow = max(2, repeat // 10)

    def assign(value):
        def run():
            msg.data = value
        return run

    blur = compositor(composite__mode='blur')
    color = compositor(composite__mode='color')
    image = compositor(composite__mode='image', composite__image_path=picture_path)
    soft = compositor(composite__mode='blur', mask__dilate=5, mask__feather=5)
    return [
        ('msg.data = numpy array (bgr8)', median_ms(assign(frame.reshape(-1)), slow)),
        ('msg.data = array.array', median_ms(assign(as_array), repeat)),
        ('msg.data = bytes', median_ms(assign(as_bytes), repeat)),
        ('encode bgr8 → array.array', median_ms(lambda: image_encodings.encode(frame, 'bgr8'),
                                                repeat)),
        ('make_image_msg bgr8 (encode + assign)',
         median_ms(lambda: image_msgs.make_image_msg(header, frame, 'bgr8'), repeat)),
        ('serialize_message bgr8', median_ms(lambda: serialize_message(bgr_msg), repeat)),
        ('decode bgr8 (view)', median_ms(lambda: image_msgs.decode_image_msg(bgr_msg),
                                         repeat)),
        ('image_msg_to_bgr8 bgr8', median_ms(lambda: image_msgs.image_msg_to_bgr8(bgr_msg),
                                             repeat)),
        ('image_msg_to_bgr8 rgb8', median_ms(lambda: image_msgs.image_msg_to_bgr8(rgb_msg),
                                             repeat)),
        ('image_msg_to_bgr8 yuv422', median_ms(lambda: image_msgs.image_msg_to_bgr8(yuv_msg),
                                               repeat)),
        ('from_bgr8 rgb8', median_ms(lambda: image_encodings.from_bgr8(frame, 'rgb8'), repeat)),
        ('alpha_to_mask (no dilate)', median_ms(lambda: compositing.alpha_to_mask(
            alpha, 0.5, 0), repeat)),
        ('alpha_to_mask (dilate 5)', median_ms(lambda: compositing.alpha_to_mask(
            alpha, 0.5, 5), repeat)),
        ('to_mono8', median_ms(lambda: compositing.to_mono8(alpha), repeat)),
        ('composite blur (kernel 41)', median_ms(lambda: blur.composite(frame, alpha, mask),
                                                 repeat)),
        ('composite blur + dilate 5 + feather 5',
         median_ms(lambda: soft.composite(frame, alpha), repeat)),
        ('composite color', median_ms(lambda: color.composite(frame, alpha, mask), repeat)),
        ('composite image', median_ms(lambda: image.composite(frame, alpha, mask), repeat)),
    ]


def main(argv=None):
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--repeat', type=int, default=30, help='runs per cell (median)')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        picture_path = os.path.join(tmp, 'background.png')
        cv2.imwrite(picture_path, frame_and_alpha(800, 600)[0][:, ::-1])
        columns = [rows_for(w, h, args.repeat, picture_path) for w, h in SIZES]
    print('ROS_PYTHON_CHECK_FIELDS=%s, numpy %s, OpenCV %s'
          % (os.environ.get('ROS_PYTHON_CHECK_FIELDS', ''), np.__version__, cv2.__version__))
    print('| ms per frame | %s |' % ' | '.join('%d×%d' % size for size in SIZES))
    print('|---|%s' % ('---:|' * len(SIZES)))
    for i, (label, _) in enumerate(columns[0]):
        cells = ['refused' if col[i][1] != col[i][1] else '%.3f' % col[i][1]
                 for col in columns]
        print('| %s | %s |' % (label, ' | '.join(cells)))


if __name__ == '__main__':
    main()
