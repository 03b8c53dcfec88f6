"""
The code stays valid for the robots' oldest target: Python 3.10 and Humble's rclpy.

This machine runs Python 3.11 with Kilted's rclpy, where newer syntax and APIs work and
so would pass every other test.  Two static checks catch them instead:

- ``vermin`` (the minimum Python version of each construct: syntax such as
  ``except*``, and standard-library APIs such as ``tomllib``, ``typing.Self``,
  ``datetime.UTC``) must find nothing that needs more than 3.10;
- an AST scan finds rclpy APIs that Humble does not have (``with rclpy.init()``,
  modules and methods added in Iron, Jazzy or Kilted, ``create_timer(autostart=...)``),
  unless the use sits in a ``try`` block that falls back.

Each check is first shown to fail on a probe that uses the constructs it must catch.
"""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ['matte_ros', 'launch', 'test', 'tools', 'setup.py']

#: rclpy modules that Humble's rclpy (3.3) does not have, and where they appeared.
NEW_MODULES = {
    'rclpy.event_handler': 'Iron (Humble: rclpy.qos_event)',
    'rclpy.type_support': 'Iron',
    'rclpy.service_introspection': 'Iron',
    'rclpy.parameter_client': 'Iron',
    'rclpy.clock_type': 'Jazzy (Humble: rclpy.clock.ClockType)',
    'rclpy.experimental': 'Jazzy (EventsExecutor)',
}
#: rclpy names (methods, classes) that Humble does not have.
NEW_NAMES = {
    'add_pre_set_parameters_callback': 'Iron',
    'add_post_set_parameters_callback': 'Iron',
    'AsyncParameterClient': 'Iron',
    'EventsExecutor': 'Jazzy',
    'InitContextManager': 'Kilted',
}
#: keyword arguments that Humble's function of that name does not take.
NEW_KEYWORDS = {('create_timer', 'autostart'): 'Jazzy'}

PROBE_PY311 = """
import datetime
import tomllib
from typing import Self


def f():
    try:
        pass
    except* ValueError:
        pass
    return datetime.UTC
"""

PROBE_RCLPY = """
import rclpy
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.experimental import EventsExecutor
import rclpy.type_support


def main(node):
    with rclpy.init():
        node.add_post_set_parameters_callback(print)
        node.create_timer(1.0, print, autostart=False)
    try:
        from rclpy.clock_type import ClockType
    except ImportError:
        from rclpy.clock import ClockType
    return ClockType
"""


def run_vermin(paths):
    """Run vermin for a 3.10 target; return (exit code, report)."""
    pytest.importorskip('vermin', reason='vermin (requirements.txt) is not installed')
    argv = [sys.executable, '-c', 'import sys, vermin; sys.exit(vermin.main())',
            '--target=3.10-', '--violations', '--eval-annotations', '--no-tips',
            '--processes=1'] + list(paths)
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


def _in_try(parents, node):
    """Tell whether ``node`` lies in the body of a ``try`` that has an except handler."""
    child = node
    parent = parents.get(child)
    while parent is not None:
        if isinstance(parent, ast.Try) and parent.handlers and child in parent.body:
            return True
        child, parent = parent, parents.get(parent)
    return False


def _is_rclpy_init(call):
    func = call.func if isinstance(call, ast.Call) else None
    if isinstance(func, ast.Attribute):
        return func.attr == 'init' and isinstance(func.value, ast.Name) and \
            func.value.id == 'rclpy'
    return False


def newer_rclpy_uses(source, filename='<source>'):
    """Return 'file:line: what (since)' for each use of an rclpy API Humble lacks."""
    tree = ast.parse(source, filename)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []

    def report(node, what, since):
        if not _in_try(parents, node):
            found.append('%s:%d: %s (%s)' % (filename, node.lineno, what, since))

    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for item in node.items:
                if _is_rclpy_init(item.context_expr):
                    report(node, 'with rclpy.init()', 'Kilted; Humble: init() + try_shutdown()')
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ''])
            for module in modules:
                for new, since in NEW_MODULES.items():
                    if module == new or module.startswith(new + '.'):
                        report(node, 'import ' + module, since)
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name in NEW_NAMES:
                        report(node, alias.name, NEW_NAMES[alias.name])
        elif isinstance(node, ast.Attribute) and node.attr in NEW_NAMES:
            report(node, node.attr, NEW_NAMES[node.attr])
        elif isinstance(node, ast.Call):
            name = getattr(node.func, 'attr', getattr(node.func, 'id', ''))
            for keyword in node.keywords:
                since = NEW_KEYWORDS.get((name, keyword.arg))
                if since:
                    report(node, '%s(%s=...)' % (name, keyword.arg), since)
    return found


def python_files():
    """Yield the repository's Python files (package, launch, tests, tools, setup.py)."""
    for entry in SOURCES:
        path = os.path.join(ROOT, entry)
        if os.path.isfile(path):
            yield path
        for folder, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d != '__pycache__']
            for name in sorted(files):
                if name.endswith('.py'):
                    yield os.path.join(folder, name)


def test_vermin_catches_python_311_constructs(tmp_path):
    probe = tmp_path / 'probe.py'
    probe.write_text(PROBE_PY311)
    code, report = run_vermin([str(probe)])
    assert code != 0, report
    for construct in ('except*', 'tomllib', 'typing.Self', 'datetime.UTC'):
        assert construct in report, (construct, report)


def test_code_needs_at_most_python_310():
    code, report = run_vermin([p for p in SOURCES if os.path.exists(os.path.join(ROOT, p))])
    assert code == 0, 'needs a Python newer than 3.10 (Humble, JetPack 6):\n' + report


def test_scan_catches_rclpy_apis_newer_than_humble():
    found = newer_rclpy_uses(PROBE_RCLPY, 'probe.py')
    text = '\n'.join(found)
    for what in ('with rclpy.init()', 'import rclpy.event_handler', 'import rclpy.experimental',
                 'EventsExecutor', 'import rclpy.type_support',
                 'add_post_set_parameters_callback', 'create_timer(autostart=...)'):
        assert what in text, (what, text)
    assert 'clock_type' not in text   # inside try/except with a fallback: allowed
    assert len(found) == 7, text


def test_no_rclpy_api_newer_than_humble_without_a_fallback():
    found = []
    for path in python_files():
        with open(path, encoding='utf-8') as f:
            found += newer_rclpy_uses(f.read(), os.path.relpath(path, ROOT))
    assert not found, 'rclpy APIs Humble lacks (add a fallback):\n' + '\n'.join(found)
