"""
``matte-ros``: the command-line front of the core (no ROS graph needed).

Subcommands: ``process`` (frames → mask/alpha/composite PNGs), ``params`` (the
parameter schema as YAML or markdown), and those other modules add: ``eval``,
``models``, ``bench``, ``doctor``.
"""

import argparse
import importlib
import sys

from matte_ros import __version__
from matte_ros import heap

#: Modules that contribute a subcommand through ``add_parser(subparsers)`` and ``run(args)``.
SUBCOMMAND_MODULES = (
    'matte_ros.cli.process_cmd',
    'matte_ros.cli.params_cmd',
    'matte_ros.cli.eval_cmd',
    'matte_ros.cli.models_cmd',
    'matte_ros.cli.bench_cmd',
    'matte_ros.cli.doctor_cmd',
)


def build_parser() -> argparse.ArgumentParser:
    """Assemble the parser from every subcommand module that is present."""
    parser = argparse.ArgumentParser(prog='matte-ros', description=__doc__.strip().split('\n')[0])
    parser.add_argument('--version', action='version', version='matte_ros ' + __version__)
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            if exc.name != name:
                raise
            continue
        sub = module.add_parser(subparsers)
        sub.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    """Run one subcommand; exit status 0 on success, 2 on a usage or input error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, 'run', None):
        parser.print_help()
        return 2
    heap.keep_freed_frames()   # the same heap as the node's, for comparable speeds
    return int(args.run(args) or 0)


if __name__ == '__main__':
    sys.exit(main())
