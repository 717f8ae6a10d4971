"""Differentiable affine/projective transforms (Mitsuba's ``Transform4f``).

A :class:`Transform4f` holds a 4x4 matrix of the active variant (``Matrix4f``)
and its inverse. Every constructor is differentiable: ``Transform4f().rotate(axis,
angle)`` with a grad-enabled ``angle`` gives a matrix whose entries depend on it,
so a scene parameter can be a function of a latent variable.

Composition follows Mitsuba: ``T.translate(v)`` returns ``T @ Translate(v)``,
i.e. the new operation is applied *first* to points. Building the chain
``Transform4f().translate(t).rotate(a, θ).scale(s)`` therefore scales, then
rotates, then translates. :meth:`__matmul__` composes two transforms.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import drjit as dr
import numpy as np

from .. import backend as bk


def _vec3(v: Any) -> Any:
    if isinstance(v, (int, float)):
        return bk.Array3f(v, v, v)
    if isinstance(v, (list, tuple, np.ndarray)):
        if len(v) != 3:
            raise ValueError(f"expected 3 components, got {len(v)}")
        return bk.Array3f(*[float(x) if not isinstance(x, dr.ArrayBase) else x for x in v])
    return bk.Array3f(v)


class Transform4f:
    """A 4x4 homogeneous transform with its inverse, both differentiable.

    A Dr.Jit PyTree over its ``matrix``: ``dr.enable_grad(t)``, ``dr.detach(t)``,
    ``dr.grad(t)`` work as on the matrix; the inverse is derived from it.
    """

    DRJIT_STRUCT: dict = {}  # set to {"matrix": Matrix4f} when the variant is bound

    def __init__(self, matrix: Any = None, inverse: Any = None) -> None:
        #: float64 copy of a constant matrix (built from numbers, not from
        #: Dr.Jit variables): compositions of constants are done in float64 and
        #: rounded once, so a transform gives the same float32 matrix whether it
        #: comes from an XML file or from a chain of calls in Python.
        self._np: np.ndarray | None = None
        self._inverse: Any = None
        if matrix is None:
            self._matrix = dr.identity(bk.Matrix4f)
            self._inverse = dr.identity(bk.Matrix4f)
            self._np = np.eye(4)
            return
        if isinstance(matrix, Transform4f):
            self._matrix, self._inverse, self._np = matrix._matrix, matrix._inverse, matrix._np
            return
        if isinstance(matrix, (list, tuple, np.ndarray)):
            arr = np.asarray(matrix, dtype=np.float64)
            if arr.shape == (3, 3):
                full = np.eye(4)
                full[:3, :3] = arr
                arr = full
            if arr.shape != (4, 4):
                raise ValueError(f"a transform matrix must be 4x4 (or 3x3), got shape {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError("a transform matrix contains NaN or inf")
            self._set_constant(arr)
            return
        self._matrix = bk.Matrix4f(matrix)
        self._inverse = bk.Matrix4f(inverse) if inverse is not None else None

    @property
    def matrix(self) -> Any:
        return self._matrix

    @matrix.setter
    def matrix(self, value: Any) -> None:
        self._matrix = value
        self._inverse = None
        self._np = None

    @property
    def inverse(self) -> Any:
        """The inverse matrix; recomputed (attached) when the matrix has gradients
        that a cached inverse would not carry."""
        inv = self._inverse
        if inv is None or (dr.grad_enabled(self._matrix) and not dr.grad_enabled(inv)):
            inv = dr.rcp(self._matrix)
            if not dr.grad_enabled(self._matrix):
                self._inverse = inv
        return inv

    def _set_constant(self, arr: np.ndarray) -> None:
        self._np = arr
        self._matrix = bk.Matrix4f(arr.astype(np.float32))
        try:
            inv = np.linalg.inv(arr)
        except np.linalg.LinAlgError:
            inv = np.full((4, 4), np.inf)
        self._inverse = bk.Matrix4f(inv.astype(np.float32))

    @classmethod
    def _constant(cls, arr: np.ndarray) -> "Transform4f":
        t = cls.__new__(cls)
        t._set_constant(arr)
        return t

    # -- composition ------------------------------------------------------
    def __matmul__(self, other: "Transform4f") -> "Transform4f":
        if self._np is not None and other._np is not None and \
                not dr.grad_enabled(self._matrix) and not dr.grad_enabled(other._matrix):
            return Transform4f._constant(self._np @ other._np)
        return Transform4f(self.matrix @ other.matrix, other.inverse @ self.inverse)

    def inverse_transform(self) -> "Transform4f":
        return Transform4f(self.inverse, self.matrix)

    def translate(self, v: Any) -> "Transform4f":
        return self @ Transform4f.translation(v)

    def scale(self, v: Any) -> "Transform4f":
        return self @ Transform4f.scaling(v)

    def rotate(self, axis: Any, angle_deg: Any) -> "Transform4f":
        return self @ Transform4f.rotation(axis, angle_deg)

    def look_at(self, origin: Any, target: Any, up: Any) -> "Transform4f":
        return self @ Transform4f.looking_at(origin, target, up)

    # -- elementary transforms (differentiable in their arguments) ---------
    @staticmethod
    def translation(v: Any) -> "Transform4f":
        c = _const3(v)
        if c is not None:
            m = np.eye(4)
            m[:3, 3] = c
            return Transform4f._constant(m)
        v = _vec3(v)
        m = dr.identity(bk.Matrix4f)
        mi = dr.identity(bk.Matrix4f)
        for i in range(3):
            m[i, 3] = v[i]
            mi[i, 3] = -v[i]
        return Transform4f(m, mi)

    @staticmethod
    def scaling(v: Any) -> "Transform4f":
        c = _const3(v)
        if c is not None:
            return Transform4f._constant(np.diag([c[0], c[1], c[2], 1.0]))
        v = _vec3(v)
        m = dr.identity(bk.Matrix4f)
        mi = dr.identity(bk.Matrix4f)
        for i in range(3):
            m[i, i] = v[i]
            mi[i, i] = dr.rcp(v[i])
        return Transform4f(m, mi)

    @staticmethod
    def rotation(axis: Any, angle_deg: Any) -> "Transform4f":
        """Rotation by ``angle_deg`` degrees about ``axis`` (right-handed)."""
        c = _const3(axis)
        if c is not None and isinstance(angle_deg, (int, float)):
            return Transform4f._constant(_rotation_np(c, float(angle_deg)))
        m = rotation_matrix(axis, angle_deg)
        return Transform4f(m, m.T)

    @staticmethod
    def looking_at(origin: Any, target: Any, up: Any) -> "Transform4f":
        """Camera-to-world transform: +Z looks from ``origin`` to ``target``.

        Follows Mitsuba: the camera's local +X is ``cross(up, dir)`` (so images
        are not mirrored), +Y is ``cross(dir, left)``.
        """
        co, ct, cu = _const3(origin), _const3(target), _const3(up)
        if co is not None and ct is not None and cu is not None:
            return Transform4f._constant(_look_at_np(co, ct, cu))
        o, t, u = _vec3(origin), _vec3(target), _vec3(up)
        d = t - o
        if dr.all(dr.norm(d) < 1e-12, axis=None):
            raise ValueError("degenerate look-at: origin and target coincide")
        d = dr.normalize(d)
        left = dr.cross(dr.normalize(u), d)
        if dr.all(dr.norm(left) < 1e-7, axis=None):
            raise ValueError("degenerate look-at: 'up' is parallel to the viewing direction")
        left = dr.normalize(left)
        new_up = dr.cross(d, left)
        m = dr.identity(bk.Matrix4f)
        for i in range(3):
            m[i, 0] = left[i]
            m[i, 1] = new_up[i]
            m[i, 2] = d[i]
            m[i, 3] = o[i]
        return Transform4f(m)

    @staticmethod
    def perspective(fov_deg: Any, near: float, far: float) -> "Transform4f":
        """Mitsuba's perspective projection (maps the view frustum to [-1,1]² × [0,1])."""
        recip = 1.0 / (far - near)
        cot = 1.0 / dr.tan(dr.deg2rad(fov_deg) * 0.5)
        m = dr.zeros(bk.Matrix4f)
        m[0, 0] = cot
        m[1, 1] = cot
        m[2, 2] = far * recip
        m[2, 3] = -near * far * recip
        m[3, 2] = 1.0
        return Transform4f(m)

    # -- application --------------------------------------------------------
    def transform_point(self, p: Any) -> Any:
        m = self.matrix
        x = m[0, 0] * p[0] + m[0, 1] * p[1] + m[0, 2] * p[2] + m[0, 3]
        y = m[1, 0] * p[0] + m[1, 1] * p[1] + m[1, 2] * p[2] + m[1, 3]
        z = m[2, 0] * p[0] + m[2, 1] * p[1] + m[2, 2] * p[2] + m[2, 3]
        w = m[3, 0] * p[0] + m[3, 1] * p[1] + m[3, 2] * p[2] + m[3, 3]
        return bk.Array3f(x, y, z) / w

    def transform_affine_point(self, p: Any) -> Any:
        m = self.matrix
        return bk.Array3f(*[m[i, 0] * p[0] + m[i, 1] * p[1] + m[i, 2] * p[2] + m[i, 3]
                            for i in range(3)])

    def transform_vector(self, v: Any) -> Any:
        m = self.matrix
        return bk.Array3f(*[m[i, 0] * v[0] + m[i, 1] * v[1] + m[i, 2] * v[2] for i in range(3)])

    def transform_normal(self, n: Any) -> Any:
        """Normals transform with the inverse transpose."""
        mi = self.inverse
        return bk.Array3f(*[mi[0, i] * n[0] + mi[1, i] * n[1] + mi[2, i] * n[2] for i in range(3)])

    def __repr__(self) -> str:
        return f"Transform4f({self.matrix})"

    def numpy(self) -> np.ndarray:
        """The matrix as a (4, 4) numpy array (detached; float64 for constants)."""
        if self._np is not None and not dr.grad_enabled(self._matrix):
            return self._np.copy()
        return np.array(dr.detach(self.matrix), dtype=np.float64).reshape(4, 4)

    def is_identity(self) -> bool:
        if dr.grad_enabled(self._matrix):
            return False
        if self._np is not None:
            return bool(np.array_equal(self._np, np.eye(4)))
        return bool(np.allclose(self.numpy(), np.eye(4)))


def _const3(v: Any) -> np.ndarray | None:
    """``v`` as a float64 3-vector if it is made of plain numbers, else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return np.array([v, v, v], dtype=np.float64)
    if isinstance(v, (list, tuple, np.ndarray)) and len(v) == 3 and \
            all(isinstance(x, (int, float, np.floating, np.integer)) for x in v):
        return np.asarray(v, dtype=np.float64)
    return None


def _rotation_np(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    n = np.linalg.norm(axis)
    if n == 0:
        raise ValueError("rotation axis is the zero vector")
    x, y, z = axis / n
    s, c = np.sin(np.radians(angle_deg)), np.cos(np.radians(angle_deg))
    omc = 1.0 - c
    m = np.eye(4)
    m[:3, :3] = [[c + x * x * omc, x * y * omc - z * s, x * z * omc + y * s],
                 [y * x * omc + z * s, c + y * y * omc, y * z * omc - x * s],
                 [z * x * omc - y * s, z * y * omc + x * s, c + z * z * omc]]
    return m


def _look_at_np(o: np.ndarray, t: np.ndarray, up: np.ndarray) -> np.ndarray:
    d = t - o
    if np.linalg.norm(d) < 1e-12:
        raise ValueError("degenerate look-at: origin and target coincide")
    d = d / np.linalg.norm(d)
    if np.linalg.norm(up) == 0:
        raise ValueError("degenerate look-at: 'up' is the zero vector")
    left = np.cross(up / np.linalg.norm(up), d)
    if np.linalg.norm(left) < 1e-7:
        raise ValueError("degenerate look-at: 'up' is parallel to the viewing direction")
    left = left / np.linalg.norm(left)
    new_up = np.cross(d, left)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = left, new_up, d, o
    return m


def rotation_matrix(axis: Any, angle_deg: Any) -> Any:
    """Rodrigues rotation matrix (``Matrix4f``) about ``axis`` by ``angle_deg`` degrees.

    ``angle_deg`` may be a grad-enabled ``Float``: the matrix is differentiable in it.
    """
    a = dr.normalize(_vec3(axis))
    theta = dr.deg2rad(angle_deg if isinstance(angle_deg, dr.ArrayBase) else bk.Float(angle_deg))
    s, c = dr.sincos(theta)
    omc = 1.0 - c
    x, y, z = a[0], a[1], a[2]
    m = dr.identity(bk.Matrix4f)
    m[0, 0] = c + x * x * omc
    m[0, 1] = x * y * omc - z * s
    m[0, 2] = x * z * omc + y * s
    m[1, 0] = y * x * omc + z * s
    m[1, 1] = c + y * y * omc
    m[1, 2] = y * z * omc - x * s
    m[2, 0] = z * x * omc - y * s
    m[2, 1] = z * y * omc + x * s
    m[2, 2] = c + z * z * omc
    return m


def rotation_matrix_rad(axis: Sequence[float], angle_rad: Any) -> Any:
    """As :func:`rotation_matrix`, with the angle in radians (PSDR's ``Matrix4f.rotate``)."""
    if isinstance(angle_rad, (int, float)):
        angle_rad = bk.Float(angle_rad)
    return rotation_matrix(axis, angle_rad * (180.0 / math.pi))


def _bind_struct() -> None:
    Transform4f.DRJIT_STRUCT = {"matrix": bk.Matrix4f}


_bind_struct()
bk.ON_BIND.append(_bind_struct)
