"""Declarative parameter schemas of plugins.

Every plugin class declares what it accepts::

    class Diffuse(BSDF):
        PLUGIN = ("bsdf", "diffuse")
        PARAMS = {
            "reflectance": Param("texture", default=0.5),
        }
        def __init__(self, reflectance, id=None): ...

The loaders (XML and dict) check each scene value against ``PARAMS`` — name,
kind, arity, finiteness, range — and call ``cls(**values, id=...)`` with parsed
Python/Dr.Jit values, so error messages are uniform and name the plugin, the
parameter and (for XML) the file and line. Plugins need no parsing code.

Kinds of value and what the constructor receives:

============  ===============================================================
``float``     Python ``float``
``float_or_string``  a ``float``, or a ``str`` the plugin resolves (e.g. IOR names)
``image``     a float32 ``np.ndarray`` (H, W, C): in-memory images, dict form only
``int``       Python ``int``
``bool``      Python ``bool``
``string``    Python ``str`` (``choices`` restricts it)
``color``     ``tuple`` of 3 floats (``rgb``, ``srgb``, grey ``spectrum``/``float``)
``texture``   a texture plugin object; ``rgb``/``float``/``spectrum`` become a
              ``ConstantTexture`` (key ``<id>.<name>.value``)
``point``     ``tuple`` of 3 floats
``vector``    ``tuple`` of 3 floats
``transform`` :class:`~lumigrad.geometry.transform.Transform4f`
``object``    a nested plugin object of the category in ``category``
``objects``   a list of nested plugin objects (e.g. a sensor's film/sampler
              are separate ``object`` params; emitters nested in shapes are
              ``object`` too)
============  ===============================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence


@dataclass
class Param:
    """One accepted parameter of a plugin."""

    kind: str
    default: Any = None
    #: inclusive bounds (``None``: unbounded)
    min: Optional[float] = None
    max: Optional[float] = None
    #: exclusive bounds, for values like a field of view in (0, 180)
    min_exclusive: Optional[float] = None
    max_exclusive: Optional[float] = None
    required: bool = False
    choices: Optional[Sequence[str]] = None
    #: for kind 'object': the plugin category expected ('bsdf', 'emitter', ...)
    category: Optional[str] = None
    doc: str = ""
    #: other names accepted for this parameter (e.g. PSDR's older spellings)
    aliases: Sequence[str] = field(default_factory=tuple)
    #: an emitted quantity (radiance, intensity, irradiance): a flat
    #: ``<spectrum value="v"/>`` is light of an equal-energy spectrum, converted
    #: to RGB as Mitsuba's RGB variants do (``emitters._util.flat_emission_rgb``)
    emission: bool = False
    #: kind 'transform': accept a singular linear part (default: an error)
    singular_ok: bool = False
    #: non-empty: the parameter is accepted (and checked) for compatibility with
    #: Mitsuba scene files but not passed to the plugin; the text says why it
    #: cannot change lumigrad's image (e.g. a film's ``banner``)
    ignored: str = ""

    def check_range(self, value: float, where: str) -> None:
        """Raise ``ValueError`` naming ``where`` if ``value`` is out of range."""
        import math

        if isinstance(value, (int, float)) and not isinstance(value, bool):
            vals = [float(value)]
        elif isinstance(value, (tuple, list)):
            vals = [float(v) for v in value]
        else:
            return
        for v in vals:
            if not math.isfinite(v):
                raise ValueError(f"{where}: value {value!r} is not finite (NaN or inf)")
            if self.min is not None and v < self.min:
                raise ValueError(f"{where}: value {value!r} is below the minimum {self.min}")
            if self.max is not None and v > self.max:
                raise ValueError(f"{where}: value {value!r} is above the maximum {self.max}")
            if self.min_exclusive is not None and v <= self.min_exclusive:
                raise ValueError(f"{where}: value {value!r} must be greater than {self.min_exclusive}")
            if self.max_exclusive is not None and v >= self.max_exclusive:
                raise ValueError(f"{where}: value {value!r} must be less than {self.max_exclusive}")


    def check_transform(self, matrix: Any, where: str) -> None:
        """Raise ``ValueError`` naming ``where`` if a 4x4 transform is not finite or
        (unless ``singular_ok``) its linear part is singular or nearly so: a zero
        scale collapses a camera's view, an emitter or a shape to a plane, a line
        or a point. The test is scale-free: ``|det A| <= 1e-9 ∏ |A e_j|`` (the
        volume of the image of the unit cube against the product of the images
        of its edges)."""
        import numpy as np

        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (4, 4) or not np.all(np.isfinite(m)):
            raise ValueError(f"{where}: the transform is not a finite 4x4 matrix")
        if self.singular_ok:
            return
        lin = m[:3, :3]
        cols = np.linalg.norm(lin, axis=0)
        det = float(np.linalg.det(lin))
        if not np.all(cols > 0) or abs(det) <= 1e-9 * float(np.prod(cols)):
            raise ValueError(f"{where}: the transform is degenerate (its linear part is "
                             f"singular, determinant {det:.3g}: e.g. a zero scale or a "
                             "projection); give an invertible transform")


#: registry: (category, type name) -> plugin class. Filled by ``register``.
REGISTRY: dict[tuple[str, str], type] = {}


def register(cls: type) -> type:
    """Class decorator: add a plugin class to :data:`REGISTRY` under ``cls.PLUGIN``.

    ``PLUGIN`` is ``(category, name)`` or ``(category, (name, alias, ...))``.
    """
    category, names = cls.PLUGIN  # type: ignore[attr-defined]
    if isinstance(names, str):
        names = (names,)
    for name in names:
        REGISTRY[(category, name)] = cls
    return cls
