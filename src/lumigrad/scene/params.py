"""Scene parameters: Mitsuba-style keys, differentiable assignment, ``update()``.

``traverse(scene)`` returns a :class:`SceneParameters` mapping such as::

    green.reflectance.value        Color3f   (a BSDF with id 'green')
    light.emitter.radiance.value   Color3f   (the area emitter of shape 'light')
    small-box.vertex_positions     Float     (flat, world space)
    small-box.to_world             Transform4f (identity, applied on top)
    sensor.to_world, sensor.x_fov

plus PSDR-style aliases ``Mesh[i]``, ``BSDF[i]``, ``Emitter[i]``, ``Sensor[i]``
(``params['Mesh[0].vertex_positions']``; ``params['Mesh[0]']`` is the mesh
object itself, as PSDR's ``param_map``).

Assigning stores the new value (after checking its type, shape and
finiteness); ``update()`` pushes every assigned value into the scene and
rebuilds the derived buffers. Both are differentiable: assign a grad-enabled
value (or a function of one) and gradients flow to it through ``render``.
"""
from __future__ import annotations

import difflib
import re
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

import drjit as dr
import numpy as np

from .. import backend as bk
from ..geometry.mesh import Mesh
from ..geometry.transform import Transform4f
from .scene import make_opaque

#: Parameters whose derivatives need boundary (visibility) terms: those that
#: move geometry (shapes) or the camera (sensors).
SHAPE_BOUNDARY_SUFFIXES = ("vertex_positions", "to_world")
#: (a thin lens's aperture and focus distance move every edge's image: defocus)
SENSOR_BOUNDARY_SUFFIXES = ("to_world", "x_fov", "aperture_radius", "focus_distance")
#: emitter parameters that move shadow edges (point/directional lights, envmaps)
EMITTER_BOUNDARY_SUFFIXES = ("position", "to_world", "direction")


class _Entry:
    __slots__ = ("owner", "suffix", "getter", "setter", "kind")

    def __init__(self, owner: Any, suffix: str, getter: Callable[[], Any],
                 setter: Optional[Callable[[Any], None]], kind: str) -> None:
        self.owner, self.suffix, self.getter, self.setter, self.kind = (
            owner, suffix, getter, setter, kind)


def _is_differentiable(value: Any) -> bool:
    if isinstance(value, Transform4f):
        return True
    return isinstance(value, dr.ArrayBase) and dr.is_float_v(value) and dr.is_diff_v(value)


def _grad_enabled(value: Any) -> bool:
    if isinstance(value, Transform4f):
        return bool(dr.grad_enabled(value.matrix))
    return isinstance(value, dr.ArrayBase) and bool(dr.grad_enabled(value))


class SceneParameters(Mapping):
    """A mapping from parameter keys to the scene's current values."""

    def __init__(self, scene: Any) -> None:
        self.scene = scene
        self._entries: dict[str, _Entry] = {}
        self._aliases: dict[str, str] = {}
        self._objects: dict[str, Any] = {}
        self._pending: dict[str, Any] = {}
        self._walk()

    # -- construction ---------------------------------------------------------
    def _add(self, prefix: str, obj: Any, owner: Any = None) -> None:
        for suffix, value, setter in obj.parameters():
            key = f"{prefix}.{suffix}"
            # Read the live value at access time (setters may replace it).
            getter = self._make_getter(obj, suffix, value)
            self._entries[key] = _Entry(owner or obj, suffix, getter, setter,
                                        type(value).__name__)

    @staticmethod
    def _make_getter(obj: Any, suffix: str, initial: Any) -> Callable[[], Any]:
        def get() -> Any:
            for s, v, _ in obj.parameters():
                if s == suffix:
                    return v
            return initial
        return get

    def _walk(self) -> None:
        scene = self.scene
        seen_bsdfs: dict[int, str] = {}
        for i, shape in enumerate(scene.shapes):
            sid = shape.id or f"shape_{i}"
            self._add(sid, shape)
            self._objects[sid] = shape
            self._alias(f"Mesh[{i}]", sid)
            b = shape.bsdf
            if b is not None and id(b) not in seen_bsdfs:
                bid = b.id or f"{sid}.bsdf"
                seen_bsdfs[id(b)] = bid
                self._add(bid, b)
                self._objects[bid] = b
            if shape.emitter is not None:
                self._add(f"{sid}.emitter", shape.emitter)
                self._objects[f"{sid}.emitter"] = shape.emitter
        for j, b in enumerate(scene.bsdfs):
            if id(b) in seen_bsdfs:
                self._alias(f"BSDF[{j}]", seen_bsdfs[id(b)])
        n_other = 0
        for k, e in enumerate(scene.emitters):
            if getattr(e, "is_area", False):
                sid = e.shape.id or f"shape_{scene.shapes.index(e.shape)}"
                self._alias(f"Emitter[{k}]", f"{sid}.emitter")
                continue
            eid = e.id or ("emitter" if n_other == 0 else f"emitter_{n_other}")
            n_other += 1
            self._add(eid, e)
            self._objects[eid] = e
            self._alias(f"Emitter[{k}]", eid)
        for k, s in enumerate(scene.sensors):
            sid = s.id or ("sensor" if k == 0 else f"sensor_{k}")
            self._add(sid, s)
            self._objects[sid] = s
            self._alias(f"Sensor[{k}]", sid)

    def _alias(self, alias: str, prefix: str) -> None:
        self._aliases[alias] = prefix

    # -- key resolution ---------------------------------------------------------
    def _resolve(self, key: str) -> str:
        if key in self._entries:
            return key
        m = re.match(r"^((?:Mesh|BSDF|Emitter|Sensor)\[\d+\])(\.(.*))?$", key)
        if m and m.group(1) in self._aliases:
            full = self._aliases[m.group(1)] + (m.group(2) or "")
            if full in self._entries:
                return full
        raise KeyError(self._unknown(key))

    def _unknown(self, key: str) -> str:
        close = difflib.get_close_matches(key, list(self._entries), n=5, cutoff=0.5)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        return f"unknown scene parameter {key!r}{hint} (see traverse(scene).keys())"

    # -- Mapping interface --------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        m = re.match(r"^((?:Mesh|BSDF|Emitter|Sensor)\[\d+\])$", key)
        if m and key in self._aliases:
            return self._objects[self._aliases[key]]
        if key in self._objects and key not in self._entries:
            return self._objects[key]
        full = self._resolve(key)
        if full in self._pending:
            return self._pending[full]
        return self._entries[full].getter()

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        try:
            self._resolve(str(key))
            return True
        except KeyError:
            return False

    def __setitem__(self, key: str, value: Any) -> None:
        full = self._resolve(key)
        entry = self._entries[full]
        if entry.setter is None:
            raise KeyError(f"scene parameter {full!r} is read-only")
        current = entry.getter()
        self._pending[full] = _conform(full, current, value)

    # -- queries ----------------------------------------------------------------
    def is_differentiable(self, key: str) -> bool:
        full = self._resolve(key)
        e = self._entries[full]
        return e.setter is not None and _is_differentiable(e.getter())

    def needs_boundary_terms(self, key: str) -> bool:
        """True when the derivative w.r.t. ``key`` moves silhouettes or shadows
        (geometry or camera parameters)."""
        entry = self._entries[self._resolve(key)]
        if isinstance(entry.owner, Mesh):
            return entry.suffix in SHAPE_BOUNDARY_SUFFIXES
        if entry.owner in getattr(self.scene, "sensors", ()):
            return entry.suffix in SENSOR_BOUNDARY_SUFFIXES
        if entry.owner in getattr(self.scene, "emitters", ()):
            return entry.suffix in EMITTER_BOUNDARY_SUFFIXES
        return False

    def owner(self, key: str) -> Any:
        """The plugin object that holds parameter ``key``."""
        return self._entries[self._resolve(key)].owner

    def suffix(self, key: str) -> str:
        """The name of parameter ``key`` within its plugin (``'vertex_positions'``)."""
        return self._entries[self._resolve(key)].suffix

    def store(self, key: str, value: Any) -> None:
        """Write ``value`` into the scene object at once (no checks, no buffer
        rebuild): for internal swaps of values that already passed the checks."""
        self._entries[self._resolve(key)].setter(value)

    def differentiable_keys(self) -> list[str]:
        return [k for k in self._entries if self.is_differentiable(k)]

    def keep(self, *keys: str | Iterable[str]) -> "SceneParameters":
        """Keep only the given keys (exact names, aliases or regular expressions)."""
        flat: list[str] = []
        for k in keys:
            flat += [k] if isinstance(k, str) else list(k)
        keep: set[str] = set()
        for k in flat:
            try:
                keep.add(self._resolve(k))
            except KeyError:
                rx = re.compile(k)
                hits = [e for e in self._entries if rx.search(e)]
                if not hits:
                    raise KeyError(self._unknown(k)) from None
                keep.update(hits)
        self._entries = {k: v for k, v in self._entries.items() if k in keep}
        self._pending = {k: v for k, v in self._pending.items() if k in keep}
        return self

    def grad_enabled_items(self) -> dict[str, Any]:
        """Parameters whose current value has gradients enabled."""
        out = {}
        for k in self._entries:
            v = self[k]
            if self._entries[k].setter is not None and _grad_enabled(v):
                out[k] = v
        return out

    def set_dirty(self, key: str) -> None:
        full = self._resolve(key)
        self._pending[full] = self[full]

    # -- update -------------------------------------------------------------------
    def update(self, values: Optional[Mapping[str, Any]] = None) -> list[str]:
        """Push assigned values into the scene; returns the keys updated."""
        if values:
            for k, v in values.items():
                self[k] = v
        updated = list(self._pending)
        geometry = False
        set_by_mesh: dict[int, tuple] = {}
        for key, value in self._pending.items():
            entry = self._entries[key]
            make_opaque(value)  # a new value must not trigger a recompilation
            entry.setter(value)
            if isinstance(entry.owner, Mesh):
                geometry = True
                mesh, suffixes = set_by_mesh.get(id(entry.owner), (entry.owner, set()))
                suffixes.add(entry.suffix)
                set_by_mesh[id(mesh)] = (mesh, suffixes)
        self._pending.clear()
        for mesh, suffixes in set_by_mesh.values():
            # As Mitsuba: moved vertices turn a smooth mesh's normals (unless
            # the same update sets the normals too).
            if ("vertex_positions" in suffixes and "vertex_normals" not in suffixes
                    and mesh.vertex_normals is not None):
                mesh.recompute_vertex_normals()
            elif "vertex_normals" in suffixes:
                mesh.normals_follow_positions = False
        if geometry:
            self.scene.update()
        return updated

    def __repr__(self) -> str:
        lines = ["SceneParameters["]
        for k, e in self._entries.items():
            v = self[k]
            flag = "∂" if e.setter is not None and _is_differentiable(v) else " "
            lines.append(f"  {flag} {k:<42} {type(v).__name__}")
        lines.append("]")
        return "\n".join(lines)


def _conform(key: str, current: Any, value: Any) -> Any:
    """Check ``value`` against the parameter's current value; convert if needed.

    Raises ``TypeError``/``ValueError`` naming ``key`` and what was expected.
    """
    try:
        out = _convert(key, current, value)
    except (TypeError, ValueError) as e:
        msg = str(e)
        if not msg.startswith(key):
            msg = f"{key}: {msg}"
        raise type(e)(msg) from None
    except RuntimeError as e:  # Dr.Jit's own conversion errors
        raise TypeError(f"{key}: cannot use a value of type {type(value).__name__} here "
                        f"({e})") from None
    return out


def _convert(key: str, current: Any, value: Any) -> Any:
    if isinstance(current, Transform4f):
        if isinstance(value, Transform4f):
            out = value
        elif isinstance(value, (bk.Matrix4f, list, tuple, np.ndarray)):
            out = Transform4f(value)
        else:
            raise TypeError(f"expected a Transform4f or a 4x4 matrix, got {type(value).__name__}")
        _check_finite(key, out.matrix)
        return out
    if isinstance(current, (int, float, str, bool)) and not isinstance(current, dr.ArrayBase):
        if type(value) is not type(current) and not (
                isinstance(current, float) and isinstance(value, int)):
            raise TypeError(f"expected {type(current).__name__}, got {type(value).__name__}")
        return value
    if not isinstance(current, dr.ArrayBase):
        return value
    tp = type(current)
    if dr.is_tensor_v(current):
        if isinstance(value, (list, tuple, np.ndarray)):
            value = tp(np.asarray(value, dtype=np.float32))
        if not (isinstance(value, dr.ArrayBase) and dr.is_tensor_v(value)):
            raise TypeError(f"expected a tensor of shape {tuple(current.shape)}, got "
                            f"{type(value).__name__}")
        if tuple(value.shape) != tuple(current.shape):
            raise ValueError(f"expected shape {tuple(current.shape)}, got {tuple(value.shape)}")
        value = tp(value)
    else:
        depth = dr.depth_v(current)
        n_comp = len(current) if depth > 1 else 1
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = tp(value)
        elif isinstance(value, (list, tuple, np.ndarray)):
            arr = np.asarray(value, dtype=np.float32)
            if depth > 1:
                if arr.ndim != 1 or arr.size != n_comp:
                    raise ValueError(f"expected {n_comp} components, got shape {arr.shape}")
                value = tp(*arr.tolist())
            else:
                if arr.ndim != 1:
                    raise ValueError(f"expected a flat array of {dr.width(current)} values, "
                                     f"got shape {arr.shape}")
                value = tp(np.ascontiguousarray(arr))
        elif not isinstance(value, dr.ArrayBase):
            raise TypeError(f"expected {tp.__name__}, got {type(value).__name__}")
        if depth > 1 and dr.depth_v(value) > 1 and len(value) != n_comp:
            raise ValueError(f"expected {n_comp} components, got {len(value)}")
        if dr.depth_v(value) != depth:
            raise TypeError(f"expected {tp.__name__}, got {type(value).__name__}")
        wc, wv = dr.width(current), dr.width(value)
        if wc != wv and not (wc == 1 and wv == 1):
            raise ValueError(f"expected {wc} entries, got {wv}")
        if not isinstance(value, tp):
            value = tp(value)
    _check_finite(key, value)
    return value


def _check_finite(key: str, value: Any) -> None:
    v = dr.detach(value)
    if dr.is_matrix_v(v):
        ok = bool(np.isfinite(np.array(v)).all())
    else:
        ok = bool(dr.all(dr.isfinite(v), axis=None))
    if not ok:
        raise ValueError(f"{key}: the new value contains NaN or inf")


def traverse(scene: Any) -> SceneParameters:
    """All parameters of ``scene`` (see :class:`SceneParameters`)."""
    return SceneParameters(scene)
