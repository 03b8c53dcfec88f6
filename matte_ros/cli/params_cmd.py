"""``matte-ros params``: print the parameter schema (YAML for config/, markdown for README)."""

from matte_ros import params


def add_parser(subparsers):
    """Add the ``params`` subcommand."""
    parser = subparsers.add_parser('params', help='print every parameter (yaml or markdown)')
    parser.add_argument('--format', choices=('yaml', 'markdown'), default='markdown')
    return parser


def run(args) -> int:
    """Print the schema in the requested format."""
    print(params.to_yaml() if args.format == 'yaml' else params.to_markdown(), end='')
    return 0
