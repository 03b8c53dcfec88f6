"""``matte-ros params``: print the parameter schema (YAML for config/, markdown for README)."""

from matte_ros import params

BEGIN = '<!-- params:begin -->'
END = '<!-- params:end -->'


def add_parser(subparsers):
    """Add the ``params`` subcommand."""
    parser = subparsers.add_parser('params', help='print every parameter (yaml or markdown)')
    parser.add_argument('--format', choices=('yaml', 'markdown'), default='markdown')
    parser.add_argument('--update-readme', metavar='README',
                        help='replace the table between %s and %s in this file' % (BEGIN, END))
    return parser


def with_table(text: str) -> str:
    """Return ``text`` with the markdown table between the markers replaced."""
    if BEGIN not in text or END not in text:
        raise ValueError('no %s ... %s markers' % (BEGIN, END))
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    return '%s%s\n%s%s%s' % (head, BEGIN, params.to_markdown(), END, tail)


def run(args) -> int:
    """Print the schema in the requested format, or update the README's table."""
    if args.update_readme:
        with open(args.update_readme, encoding='utf-8') as f:
            text = f.read()
        with open(args.update_readme, 'w', encoding='utf-8') as f:
            f.write(with_table(text))
        return 0
    print(params.to_yaml() if args.format == 'yaml' else params.to_markdown(), end='')
    return 0
