"""
``matte-ros params``: print the parameter schema (YAML for config/, markdown for README).

``--update-readme FILE`` regenerates every generated block of a markdown file: the text
between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` for each NAME in
:data:`BLOCKS` that the file holds.
"""

from matte_ros import params
from matte_ros.segmenters import registry

BEGIN = '<!-- params:begin -->'
END = '<!-- params:end -->'

#: Generated blocks: marker name → function returning the block's markdown.
BLOCKS = {
    'params': params.to_markdown,
    'params-summary': params.to_summary_markdown,
    'segmenters': registry.to_markdown,
}


def markers(name: str):
    """Return the (begin, end) comment lines around the block ``name``."""
    return '<!-- %s:begin -->' % name, '<!-- %s:end -->' % name


def add_parser(subparsers):
    """Add the ``params`` subcommand."""
    parser = subparsers.add_parser('params', help='print every parameter (yaml or markdown)')
    parser.add_argument('--format', choices=('yaml', 'markdown'), default='markdown')
    parser.add_argument('--update-readme', metavar='README',
                        help='regenerate the blocks between <!-- NAME:begin --> and '
                             '<!-- NAME:end --> (NAME: %s) in this file' % ', '.join(BLOCKS))
    return parser


def block(text: str, name: str):
    """Return the current content of block ``name`` in ``text``, or None when absent."""
    begin, end = markers(name)
    if begin not in text or end not in text:
        return None
    return text.split(begin, 1)[1].split(end, 1)[0].strip() + '\n'


def with_tables(text: str) -> str:
    """Return ``text`` with every generated block it holds replaced; ValueError if none."""
    found = False
    for name, make in BLOCKS.items():
        if block(text, name) is None:
            continue
        found = True
        begin, end = markers(name)
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = '%s%s\n%s%s%s' % (head, begin, make(), end, tail)
    if not found:
        raise ValueError('no generated block markers (%s)' % ', '.join(
            markers(name)[0] for name in BLOCKS))
    return text


def run(args) -> int:
    """Print the schema in the requested format, or update the README's tables."""
    if args.update_readme:
        with open(args.update_readme, encoding='utf-8') as f:
            text = f.read()
        with open(args.update_readme, 'w', encoding='utf-8') as f:
            f.write(with_tables(text))
        return 0
    print(params.to_yaml() if args.format == 'yaml' else params.to_markdown(), end='')
    return 0
