"""
What a segmenter declares about itself: :class:`SegmenterSpec`.

Every segmenter module ends with one ``SPEC = SegmenterSpec(...)``: its name, what it
is, its parameter section, the backends it runs on (best first, each with the
capability it needs) and the models it uses.  The schema (:mod:`matte_ros.params`),
the backend choice (:mod:`matte_ros.backends`), the launch help, ``config/matte.yaml``,
the README tables and the quality table are derived from these declarations, so a
segmenter is described in exactly one place.

The registry (:mod:`matte_ros.segmenters.registry`) collects the built-in modules and
third-party ones registered under the entry-point group ``matte_ros.segmenters``
(``docs/plugins.md``).  This module imports nothing heavy: reading a declaration
never loads ONNX Runtime or torch.
"""

from dataclasses import dataclass
from typing import Any
from typing import Callable
from typing import Mapping
from typing import Optional
from typing import Tuple


@dataclass(frozen=True)
class BackendUse:
    """
    One backend a segmenter runs on.

    ``needs`` is the capability :func:`matte_ros.backends.probe` must find (empty for
    ``cpu``).  ``unless`` receives the parameter values and returns why this backend
    cannot serve them (empty when it can): bgsub runs on ``vpi`` only with
    ``bgsub.algorithm mog2``.  When a backend is missing or ruled out, the choice falls
    back to the next one in :attr:`SegmenterSpec.backends`, down to ``cpu``.
    ``not_auto`` says why ``backend: auto`` never picks this one ('' when it may): the
    user asks for it by name.  ``needs_by`` receives the parameter values and returns the
    capability when it depends on them (rvm on cuda: ONNX Runtime's CUDA provider, or
    torch's CUDA for ``rvm.runtime torchscript``); ``needs`` is the answer without values.
    """

    name: str
    needs: str = ''
    unless: Optional[Callable[[Mapping[str, Any]], str]] = None
    not_auto: str = ''
    needs_by: Optional[Callable[[Mapping[str, Any]], str]] = None

    def capability(self, config: Optional[Mapping[str, Any]]) -> str:
        """Return the capability this backend needs with ``config`` ('' for none)."""
        if config is not None and self.needs_by is not None:
            return self.needs_by(config)
        return self.needs

    def excluded_by(self, config: Optional[Mapping[str, Any]]) -> str:
        """Return why ``config`` rules this backend out ('' when it does not)."""
        if config is None or self.unless is None:
            return ''
        return self.unless(config) or ''


@dataclass(frozen=True)
class Variant:
    """
    A named configuration worth comparing (one row of the quality table).

    ``overrides`` are ``key=value`` strings as ``--param`` takes them; ``model`` is the
    registry name (:mod:`matte_ros.models`) of the model file the variant runs, if any.
    """

    label: str
    overrides: Tuple[str, ...] = ()
    model: str = ''


CPU = BackendUse('cpu')


@dataclass(frozen=True)
class SegmenterSpec:
    """
    A segmenter's self-description.

    ``name``: the ``segmenter`` parameter value.  ``summary``: a few words for the
    ``segmenter`` parameter's description and the launch help.  ``description`` and
    ``state``: the README's segmenter table (what it is, what it carries between
    frames).  ``factory``: the :class:`~matte_ros.segmenters.base.Segmenter` subclass,
    called as ``factory(config_values, backend)``.  ``params``: its parameter section
    (:class:`matte_ros.params.Param`, names under ``<name>.``).  ``backends``: best
    first, ending with ``cpu``.  ``models``: registry names of the model files it may
    load.  ``variants``: the configurations the quality table scores.
    """

    name: str
    summary: str
    description: str
    factory: Callable[..., Any]
    params: Tuple[Any, ...] = ()
    backends: Tuple[BackendUse, ...] = (CPU,)
    models: Tuple[str, ...] = ()
    state: str = 'none'
    variants: Tuple[Variant, ...] = ()

    def backend_names(self) -> Tuple[str, ...]:
        """Return the names of the backends it runs on, best first."""
        return tuple(use.name for use in self.backends)

    def use(self, backend: str) -> Optional[BackendUse]:
        """Return how it runs on ``backend``, or None when it does not."""
        for use in self.backends:
            if use.name == backend:
                return use
        return None
