"""
Find unsafe deserialisation and shell use in Python sources (ROS-free, by AST).

Model files and parameters come from users and the network; two mistakes would turn
them into code execution: unpickling (``pickle``, ``torch.load`` without
``weights_only=True``, ``np.load(..., allow_pickle=True)``, ``yaml.load`` without a safe
loader, ``joblib``/``dill``/``marshal``/``shelve``) and handing a string to a shell
(``shell=True``, ``os.system``, ``os.popen``, ``eval``/``exec``).  :func:`audit` walks the
syntax tree, so comments and docstrings that merely name these do not count, and a call
spread over several lines is still seen.
"""

import ast
from dataclasses import dataclass
import os
from typing import Iterable
from typing import List

#: Modules whose import alone means a pickle-style loader is in use.
UNSAFE_MODULES = ('pickle', 'cPickle', '_pickle', 'dill', 'joblib', 'marshal', 'shelve',
                  'cloudpickle')
#: Calls that run a string through a shell or the interpreter.
SHELL_CALLS = ('os.system', 'os.popen', 'os.execl', 'os.execlp', 'os.spawnl',
               'subprocess.getoutput', 'subprocess.getstatusoutput', 'commands.getoutput')
BUILTIN_EVAL = ('eval', 'exec')


@dataclass(frozen=True)
class Finding:
    """One unsafe construct: where, and what."""

    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return '%s:%d: %s' % (self.path, self.line, self.what)


def _dotted(node: ast.AST) -> str:
    """Return ``a.b.c`` for a Name/Attribute chain, else ''."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return '.'.join(reversed(parts))
    return ''


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _check_call(call: ast.Call) -> List[str]:
    name = _dotted(call.func)
    last = name.rsplit('.', 1)[-1]
    found = []
    shell = _keyword(call, 'shell')
    if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
        found.append('%s(..., shell=...) runs a shell' % (name or 'call'))
    if name in SHELL_CALLS:
        found.append('%s runs a shell command' % name)
    if name in BUILTIN_EVAL:
        found.append('%s() executes a string as code' % name)
    if last == 'load' and name.split('.')[0] == 'torch':
        if not _is_true(_keyword(call, 'weights_only')):
            found.append('%s without weights_only=True unpickles' % name)
    if last == 'load' and name.split('.')[0] in ('np', 'numpy'):
        allow = _keyword(call, 'allow_pickle')
        if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
            found.append('%s with allow_pickle unpickles' % name)
    if name in ('yaml.load', 'yaml.load_all'):
        loader = _keyword(call, 'Loader')
        if loader is None and len(call.args) > 1:
            loader = call.args[1]
        if loader is None or 'Safe' not in _dotted(loader):
            found.append('%s without a SafeLoader can build objects' % name)
    if name in ('yaml.unsafe_load', 'yaml.full_load'):
        found.append('%s can build arbitrary objects' % name)
    return found


def audit_source(text: str, path: str = '<string>') -> List[Finding]:
    """Return the unsafe constructs in one Python source text."""
    tree = ast.parse(text, filename=path)
    findings = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] in UNSAFE_MODULES:
                    findings.append(Finding(path, node.lineno, 'import %s' % alias.name))
        elif isinstance(node, ast.ImportFrom):
            if (node.module or '').split('.')[0] in UNSAFE_MODULES:
                findings.append(Finding(path, node.lineno, 'from %s import' % node.module))
        elif isinstance(node, ast.Call):
            findings.extend(Finding(path, node.lineno, what) for what in _check_call(node))
    return findings


def python_files(roots: Iterable[str]) -> List[str]:
    """Return the .py files under the given files or directories, sorted."""
    out = []
    for root in roots:
        if os.path.isfile(root):
            out.append(root)
            continue
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith('.') and d != '__pycache__']
            out.extend(os.path.join(folder, f) for f in files if f.endswith('.py'))
    return sorted(out)


def audit(roots: Iterable[str]) -> List[Finding]:
    """Return every unsafe construct in the Python files under ``roots``."""
    findings = []
    for path in python_files(roots):
        with open(path, encoding='utf-8') as stream:
            findings.extend(audit_source(stream.read(), path))
    return findings
