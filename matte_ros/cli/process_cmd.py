"""
``matte-ros process``: run a segmenter over images, a video or a ROS 2 bag, offline.

Writes ``OUT/mask/<stem>.png``, ``OUT/alpha/<stem>.png`` and ``OUT/composite/<stem>.png``
for every input frame (stems as the input files; for a video or a bag, the zero-padded
frame index), and ``OUT/background/<stem>.png`` when the segmenter has a background
model (bgsub), through the same :class:`~matte_ros.pipeline.Pipeline` the node uses;
with ``composite.mode`` transparent the composite PNGs are BGRA (alpha kept).
Frames of images or a video carry no time: they are stamped index / ``--fps`` seconds
(default 30), which is what bgsub's ``bgsub.consensus.still_seconds`` counts in.
A bag (MCAP or sqlite3, read with ``rosbags``, no ROS needed) takes ``--topic``; its
frames are segmented with their header stamps, and ``--output-bag`` also writes the
outputs as Image topics with the input headers.
"""

import os
import sys

import cv2
from matte_ros import bags
from matte_ros import params
from matte_ros.measure import datasets
from matte_ros.pipeline import Pipeline

OUTPUTS = ('mask', 'alpha', 'composite')
#: Written only when the segmenter returns a background image.
BACKGROUND = 'background'
#: Frame rate assumed for inputs without stamps (images, video).
DEFAULT_FPS = 30.0


def add_parser(subparsers):
    """Add the ``process`` subcommand."""
    parser = subparsers.add_parser(
        'process', help='segment a folder of images or a video into PNG masks')
    parser.add_argument('--segmenter', default=None, help='segmenter (default: bgsub)')
    parser.add_argument('--input', required=True,
                        help='folder of images, video file, camera device, or ROS 2 bag '
                             '(folder with metadata.yaml, or its .mcap/.db3 file)')
    parser.add_argument('--output', required=True, help='output folder')
    parser.add_argument('--topic', default=None,
                        help='bag input: Image or CompressedImage topic to segment')
    parser.add_argument('--output-bag', default=None, metavar='PATH',
                        help='bag input: also write a new bag with the outputs')
    parser.add_argument('--output-prefix', default='/matte',
                        help='topic prefix in --output-bag (default: /matte → /matte/mask ...)')
    parser.add_argument('--storage', default='mcap', choices=bags.STORAGES,
                        help='storage of --output-bag (default: mcap)')
    parser.add_argument('--param', action='append', default=[], metavar='KEY=VALUE',
                        help='any node parameter, e.g. --param threshold=0.4 (repeatable)')
    parser.add_argument('--backend', default=None, help='backend (default: auto)')
    parser.add_argument('--max-frames', type=int, default=0, help='stop after N frames')
    parser.add_argument('--fps', type=float, default=DEFAULT_FPS,
                        help='images/video: frame rate for the stamps (index / fps s) that '
                             'time-based parameters count in (default: %(default)s)')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser


def run(args) -> int:
    """Process every frame; return 0, or 2 with a message on bad arguments or input."""
    try:
        values = params.parse_assignments(args.param)
        if args.segmenter:
            values['segmenter'] = params.validate('segmenter', args.segmenter)
        if args.backend:
            values['backend'] = params.validate('backend', args.backend)
        if not 0 < args.fps <= 10000:  # also refuses NaN
            raise ValueError('--fps must lie in (0, 10000], got %r' % args.fps)
        bag = None
        if bags.bag_folder(args.input) is not None:
            if not args.topic:
                raise bags.BagError('a bag input needs --topic (the image topic)')
            bag = frames = bags.BagFrames(args.input, args.topic,
                                          values.get('max_pixels', params.BY_NAME[
                                              'max_pixels'].default))
            total = len(bag)
        elif args.topic or args.output_bag:
            raise bags.BagError('--topic and --output-bag need a bag as --input')
        else:
            frames = datasets.iter_frames(args.input)
            total = datasets.count(args.input)
        pipeline = Pipeline(values)
        out_bag = bags.BagOutput(args.output_bag, args.output_prefix,
                                 args.storage) if args.output_bag else None
    except Exception as exc:  # noqa: B902 - report any setup failure as a usage error
        print('matte-ros process: %s' % exc, file=sys.stderr)
        return 2
    if args.max_frames and total:
        total = min(total, args.max_frames)
    for sub in OUTPUTS:
        os.makedirs(os.path.join(args.output, sub), exist_ok=True)
    written = 0
    progress = _progress(total, args.quiet)
    try:
        for stem, frame in frames:
            if bag is not None:
                timestamp, header = bag.current
                result = pipeline.process(frame, bags.stamp_seconds(header), header.frame_id)
                if out_bag is not None:
                    out_bag.write(timestamp, header, result)
            else:
                result = pipeline.process(frame, written / args.fps)
            cv2.imwrite(os.path.join(args.output, 'mask', stem + '.png'), result.mask)
            cv2.imwrite(os.path.join(args.output, 'alpha', stem + '.png'), result.alpha)
            if result.composite is not None:
                cv2.imwrite(os.path.join(args.output, 'composite', stem + '.png'),
                            result.composite)
            if result.background is not None:
                os.makedirs(os.path.join(args.output, BACKGROUND), exist_ok=True)
                cv2.imwrite(os.path.join(args.output, BACKGROUND, stem + '.png'),
                            result.background)
            written += 1
            progress.update(1)
            if args.max_frames and written >= args.max_frames:
                break
    finally:
        progress.close()
        pipeline.close()
        if bag is not None:
            bag.close()
        if out_bag is not None:
            out_bag.close()
            print('%d frames → bag %s (%s)' % (out_bag.written, args.output_bag,
                                               ', '.join(out_bag.topics.values())))
    written_to = OUTPUTS + ((BACKGROUND,) if os.path.isdir(
        os.path.join(args.output, BACKGROUND)) else ())
    print('%d frames → %s/{%s}' % (written, args.output, ','.join(written_to)))
    return 0 if written else 2


def _progress(total, quiet):
    from tqdm import tqdm
    return tqdm(total=total or None, unit='frame', disable=quiet, file=sys.stderr)
