"""
The segmenters this installation offers: built-in modules plus entry-point plugins.

Each module listed in :data:`BUILTIN` declares ``SPEC`` (a
:class:`~matte_ros.segmenters.spec.SegmenterSpec`); adding a segmenter to matte_ros is
one module and one line here.  Third-party packages add segmenters without editing
matte_ros through the entry-point group :data:`GROUP` (``docs/plugins.md``)::

    [options.entry_points]
    matte_ros.segmenters =
        mine = my_package.my_module:SPEC

A plugin that cannot be loaded or declares something invalid is left out with the
reason in :func:`problems` (printed by ``matte-ros doctor``); it never stops the node
or the built-in segmenters.  The table is built once per process, on first use.
"""

import functools
import importlib
from importlib import metadata
import logging
import re
from typing import Dict
from typing import List
from typing import Tuple

from matte_ros.segmenters.spec import SegmenterSpec

LOG = logging.getLogger(__name__)

#: Entry-point group third-party segmenters register under.
GROUP = 'matte_ros.segmenters'

#: Built-in segmenter modules, in the order the schema and the tables list them.
BUILTIN = (
    'matte_ros.segmenters.bgsub',
    'matte_ros.segmenters.framediff',
    'matte_ros.segmenters.rvm',
    'matte_ros.segmenters.selfie',
    'matte_ros.segmenters.instance',
    'matte_ros.segmenters.onnx_model',
)

#: Backend names a declaration may use (the ``backend`` parameter's values but auto).
BACKEND_NAMES = ('cpu', 'cuda', 'tensorrt', 'vpi')

_NAME = re.compile(r'^[a-z][a-z0-9_]*$')


class SpecError(ValueError):
    """A segmenter declaration that the registry refuses (says which and why)."""


def check(spec, taken=(), plugin: bool = False) -> SegmenterSpec:
    """
    Return ``spec`` if it is a valid declaration, else raise :class:`SpecError`.

    ``taken`` holds the segmenter and parameter names already registered.  A plugin's
    parameters must lie under ``<name>.`` so that it cannot shadow another's.
    """
    if not isinstance(spec, SegmenterSpec):
        raise SpecError('expected a SegmenterSpec, got %r' % type(spec).__name__)
    if not _NAME.match(spec.name or ''):
        raise SpecError('segmenter name %r must be lower case letters, digits, _' % spec.name)
    if spec.name in taken:
        raise SpecError('segmenter %r is registered already' % spec.name)
    if not callable(spec.factory):
        raise SpecError('segmenter %r: factory is not callable' % spec.name)
    names = spec.backend_names()
    unknown = [n for n in names if n not in BACKEND_NAMES]
    if unknown or 'cpu' not in names:
        raise SpecError('segmenter %r: backends %s must be among %s and include cpu'
                        % (spec.name, ', '.join(names), ', '.join(BACKEND_NAMES)))
    for param in spec.params:
        if not hasattr(param, 'name') or not hasattr(param, 'kind'):
            raise SpecError('segmenter %r: %r is not a matte_ros.params.Param'
                            % (spec.name, param))
        if param.name in taken:
            raise SpecError('segmenter %r: parameter %s is declared already'
                            % (spec.name, param.name))
        if plugin and not param.name.startswith(spec.name + '.'):
            raise SpecError('segmenter %r: parameter %s must be named %s.<key>'
                            % (spec.name, param.name, spec.name))
    return spec


def _plugin_entry_points():
    """Return the installed entry points of :data:`GROUP` (Python 3.10 selection API)."""
    return sorted(metadata.entry_points(group=GROUP), key=lambda ep: ep.name)


@functools.lru_cache(maxsize=1)
def _load() -> Tuple[Dict[str, SegmenterSpec], Tuple[str, ...]]:
    from matte_ros import params
    taken = {p.name for p in params.CORE if hasattr(p, 'name')}
    taken.add('segmenter')
    table: Dict[str, SegmenterSpec] = {}
    problems: List[str] = []

    def add(spec, plugin):
        check(spec, taken | set(table), plugin)
        table[spec.name] = spec
        taken.update(p.name for p in spec.params)

    for module_name in BUILTIN:
        add(importlib.import_module(module_name).SPEC, plugin=False)
    for ep in _plugin_entry_points():
        try:
            spec = ep.load()
            if isinstance(spec, SegmenterSpec) and spec.name != ep.name:
                raise SpecError('entry point %r names segmenter %r' % (ep.name, spec.name))
            add(spec, plugin=True)
        except Exception as exc:  # noqa: B902 - a broken plugin must not stop the others
            problems.append('plugin %s (%s): %s: %s'
                            % (ep.name, ep.value, type(exc).__name__, exc))
            LOG.warning('segmenter plugin left out: %s', problems[-1])
    return table, tuple(problems)


def specs() -> Dict[str, SegmenterSpec]:
    """Return segmenter name → declaration: the built-ins, then the plugins (by name)."""
    return _load()[0]


def get(name: str) -> SegmenterSpec:
    """Return one declaration; KeyError if no such segmenter is registered."""
    return specs()[name]


def problems() -> Tuple[str, ...]:
    """Return why each plugin that was left out was refused (empty when none)."""
    return _load()[1]


def _backend_text(spec: SegmenterSpec) -> str:
    return ' → '.join(use.name for use in spec.backends)


def to_markdown() -> str:
    """Return the README's segmenter table (markdown), one row per declaration."""
    rows = ['| segmenter | what it is | backends, best first | models '
            '| state carried between frames |',
            '|---|---|---|---|---|']
    for spec in specs().values():
        rows.append('| `%s` | %s | %s | %s | %s |' % tuple(
            cell.replace('|', '\\|') for cell in (
                spec.name, spec.description, _backend_text(spec),
                ', '.join('`%s`' % m for m in spec.models) or '—', spec.state)))
    return '\n'.join(rows) + '\n'
