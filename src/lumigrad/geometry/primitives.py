"""Numpy generators of simple triangle meshes.

Every generator returns a :class:`MeshData`: a 2-tuple ``(positions, faces)``
(``positions`` float32 of shape (N, 3), ``faces`` uint32 of shape (F, 3)) that
also carries ``.normals`` (float32 (N, 3) or ``None``) and ``.uvs`` (float32
(N, 2) or ``None``) as attributes, so both ``v, f = icosphere()`` and
``m = uv_sphere(); m.normals`` work.

Conventions (those of Mitsuba 3's built-in shapes):

* Winding is counter-clockwise seen from outside: the geometric normal
  ``cross(v1 - v0, v2 - v0)`` points outward (for the flat shapes, along +Z).
* ``rectangle()`` is the square [-1, 1]^2 at z = 0 with ``uv = (p + 1) / 2``.
* ``cube()`` is [-1, 1]^3 with 4 vertices per face (24 in all), face normals
  and per-face uvs covering [0, 1]^2.
* ``disk()`` is the unit disk at z = 0 with Mitsuba's polar uvs
  ``(r, phi / 2pi)``.
* ``uv_sphere()`` uses Mitsuba's sphere uvs ``(phi / 2pi, theta / pi)`` with
  ``phi = atan2(y, x)`` in [0, 2pi) and ``theta`` measured from +Z.

All the work is vectorised numpy (no Python loop over vertices or faces; the
icosphere loops only over subdivision levels).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["MeshData", "icosphere", "uv_sphere", "torus", "cube", "rectangle", "disk",
           "sphere_tessellation_error"]


class MeshData(tuple):
    """``(positions, faces)`` with optional ``normals`` and ``uvs`` attributes."""

    normals: Optional[np.ndarray]
    uvs: Optional[np.ndarray]

    def __new__(cls, positions: np.ndarray, faces: np.ndarray,
                normals: Optional[np.ndarray] = None,
                uvs: Optional[np.ndarray] = None) -> "MeshData":
        self = super().__new__(cls, (np.ascontiguousarray(positions, dtype=np.float32),
                                     np.ascontiguousarray(faces, dtype=np.uint32)))
        self.normals = None if normals is None else np.ascontiguousarray(normals, dtype=np.float32)
        self.uvs = None if uvs is None else np.ascontiguousarray(uvs, dtype=np.float32)
        return self

    @property
    def positions(self) -> np.ndarray:
        return self[0]

    @property
    def faces(self) -> np.ndarray:
        return self[1]

    def __repr__(self) -> str:
        return (f"MeshData(vertices={len(self[0])}, faces={len(self[1])}, "
                f"normals={self.normals is not None}, uvs={self.uvs is not None})")


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


# ---------------------------------------------------------------------------
def icosphere(subdivisions: int = 3, radius: float = 1.0) -> MeshData:
    """Geodesic sphere: an icosahedron whose triangles are split 4-to-1
    ``subdivisions`` times, new vertices projected onto the sphere.

    ``10 * 4**k + 2`` vertices and ``20 * 4**k`` faces for ``k`` subdivisions.
    Normals are the unit positions; no uvs (an icosphere has no seam).
    """
    k = _check_count("subdivisions", subdivisions, 0)
    radius = _check_positive("radius", radius)
    t = (1.0 + 5.0 ** 0.5) / 2.0
    v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0],
                  [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
                  [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], dtype=np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11],
                  [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
                  [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
                  [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]], dtype=np.int64)
    for _ in range(k):
        # The three edges of every face, as sorted pairs, made unique so that
        # neighbouring faces share the midpoint vertex.
        e = np.stack([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=1).reshape(-1, 2)
        uniq, inv = np.unique(np.sort(e, axis=1), axis=0, return_inverse=True)
        mid = v[uniq[:, 0]] + v[uniq[:, 1]]
        mid /= np.linalg.norm(mid, axis=1, keepdims=True)
        m = inv.reshape(-1, 3) + len(v)  # midpoints of edges (01, 12, 20)
        v = np.concatenate([v, mid])
        a, b, c = f[:, 0], f[:, 1], f[:, 2]
        m01, m12, m20 = m[:, 0], m[:, 1], m[:, 2]
        f = np.concatenate([np.stack([a, m01, m20], 1), np.stack([b, m12, m01], 1),
                            np.stack([c, m20, m12], 1), np.stack([m01, m12, m20], 1)])
    return MeshData(v * radius, f, normals=v)


def uv_sphere(n_theta: int = 64, n_phi: int = 128, radius: float = 1.0) -> MeshData:
    """Latitude/longitude sphere about the Z axis with smooth normals and uvs.

    ``n_theta`` bands from the +Z pole to the -Z pole, ``n_phi`` segments
    around. The seam (phi = 0 = 2pi) and the poles are duplicated so that uvs
    ``(phi / 2pi, theta / pi)`` (Mitsuba's sphere parameterisation) are
    continuous on every triangle. The pole bands hold one triangle per segment,
    so there are ``2 * n_phi * (n_theta - 1)`` faces and no degenerate ones, and
    ``(n_theta + 1) * (n_phi + 1) - 2`` vertices (all referenced).
    See :func:`sphere_tessellation_error` for the distance to the true sphere.
    """
    nt = _check_count("n_theta", n_theta, 2)
    nphi = _check_count("n_phi", n_phi, 3)
    radius = _check_positive("radius", radius)
    theta = np.linspace(0.0, np.pi, nt + 1)
    phi = np.linspace(0.0, 2.0 * np.pi, nphi + 1)
    th, ph = np.meshgrid(theta, phi, indexing="ij")  # (nt+1, nphi+1)
    n = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=-1)
    n[0, :] = (0.0, 0.0, 1.0)   # exact poles (sin(pi) is not exactly 0)
    n[-1, :] = (0.0, 0.0, -1.0)
    uv = np.stack([ph / (2.0 * np.pi), th / np.pi], axis=-1)
    idx = np.arange((nt + 1) * (nphi + 1)).reshape(nt + 1, nphi + 1)
    v00, v10 = idx[:-1, :-1], idx[1:, :-1]
    v11, v01 = idx[1:, 1:], idx[:-1, 1:]
    # d/dtheta x d/dphi points outward, so (v00, v10, v11), (v00, v11, v01) are CCW.
    t1 = np.stack([v00, v10, v11], axis=-1)[:-1]  # band nt-1 would touch the -Z pole twice
    t2 = np.stack([v00, v11, v01], axis=-1)[1:]   # band 0 would touch the +Z pole twice
    f = np.concatenate([t1.reshape(-1, 3), t2.reshape(-1, 3)])
    # Two pole copies (+Z at phi = 2pi, -Z at phi = 0) are used by no triangle: drop them.
    keep = np.ones(len(idx.ravel()), dtype=bool)
    keep[[idx[0, -1], idx[-1, 0]]] = False
    remap = np.cumsum(keep) - 1
    return MeshData((n * radius).reshape(-1, 3)[keep], remap[f], normals=n.reshape(-1, 3)[keep],
                    uvs=uv.reshape(-1, 2)[keep])


def sphere_tessellation_error(n_theta: int, n_phi: int) -> float:
    """Upper bound on the distance from a :func:`uv_sphere` triangle to the true
    unit sphere (multiply by the radius).

    Every vertex lies on the sphere, so the largest gap is inside a triangle:
    it is at most ``1 - cos(rho)`` where ``rho`` is the angular radius of the
    triangle's circumscribed spherical cap. A band triangle spans at most
    ``dtheta = pi / n_theta`` in latitude and ``dphi = 2pi / n_phi`` of a great
    circle (at the equator), so ``rho <= sqrt(dtheta^2 + dphi^2) / 2``.
    """
    dtheta = np.pi / n_theta
    dphi = 2.0 * np.pi / n_phi
    return float(1.0 - np.cos(0.5 * np.hypot(dtheta, dphi)))


def torus(R: float = 1.0, r: float = 0.25, n_major: int = 64, n_minor: int = 32) -> MeshData:
    """Torus about the Z axis: ``p(u, v) = ((R + r cos v) cos u, (R + r cos v) sin u, r sin v)``.

    Smooth normals ``(cos v cos u, cos v sin u, sin v)``; uvs ``(u / 2pi, v / 2pi)``
    with duplicated seams. ``dp/du x dp/dv`` is the outward normal, which fixes
    the winding.
    """
    R = _check_positive("R", R)
    r = _check_positive("r", r)
    if r >= R:
        raise ValueError(f"torus: the minor radius r={r} must be smaller than R={R}")
    nu = _check_count("n_major", n_major, 3)
    nv = _check_count("n_minor", n_minor, 3)
    u = np.linspace(0.0, 2.0 * np.pi, nu + 1)
    w = np.linspace(0.0, 2.0 * np.pi, nv + 1)
    uu, ww = np.meshgrid(u, w, indexing="ij")
    ring = R + r * np.cos(ww)
    p = np.stack([ring * np.cos(uu), ring * np.sin(uu), r * np.sin(ww)], axis=-1)
    n = np.stack([np.cos(ww) * np.cos(uu), np.cos(ww) * np.sin(uu), np.sin(ww)], axis=-1)
    uv = np.stack([uu, ww], axis=-1) / (2.0 * np.pi)
    idx = np.arange((nu + 1) * (nv + 1)).reshape(nu + 1, nv + 1)
    v00, v10, v11, v01 = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    f = np.concatenate([np.stack([v00, v10, v11], -1).reshape(-1, 3),
                        np.stack([v00, v11, v01], -1).reshape(-1, 3)])
    return MeshData(p.reshape(-1, 3), f, normals=n.reshape(-1, 3), uvs=uv.reshape(-1, 2))


def cube() -> MeshData:
    """The cube [-1, 1]^3: 6 faces x 4 vertices (24), 12 triangles, face normals,
    with Mitsuba 3's uvs.

    Face ``k`` has outward normal ``n`` and tangents ``s``, ``t`` with
    ``s x t = n``; its corners are ``n + a s + b t`` for ``a, b`` in {-1, 1}.
    Its uvs are Mitsuba's: ``((p·s' + 1) / 2, (p·t' + 1) / 2)`` with the face's
    own ``(s', t')``, which have ``s' x t' = -n`` (seen from outside, a texture is
    mirrored), so each face covers [0, 1]^2 and textures land where Mitsuba puts
    them (with ``v = 0`` at an image's first row).
    """
    # (normal, s, t) with s x t = normal: the corners and the winding.
    frames = np.array([
        [[0, -1, 0], [1, 0, 0], [0, 0, 1]],    # -Y (bottom)
        [[0, 1, 0], [0, 0, 1], [1, 0, 0]],     # +Y (top)
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],     # +X
        [[0, 0, 1], [1, 0, 0], [0, 1, 0]],     # +Z
        [[-1, 0, 0], [0, 0, 1], [0, 1, 0]],    # -X
        [[0, 0, -1], [0, 1, 0], [1, 0, 0]],    # -Z
    ], dtype=np.float64)
    # Mitsuba's uv axes (s', t') of the same faces, s' x t' = -normal.
    uv_axes = np.array([
        [[0, 0, 1], [1, 0, 0]],      # -Y: u ~ z, v ~ x
        [[-1, 0, 0], [0, 0, -1]],    # +Y: u ~ -x, v ~ -z
        [[0, 1, 0], [0, 0, -1]],     # +X: u ~ y, v ~ -z
        [[0, 1, 0], [1, 0, 0]],      # +Z: u ~ y, v ~ x
        [[0, 1, 0], [0, 0, 1]],      # -X: u ~ y, v ~ z
        [[0, -1, 0], [1, 0, 0]],     # -Z: u ~ -y, v ~ x
    ], dtype=np.float64)
    ab = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)  # CCW in (s, t)
    nrm, s, t = frames[:, None, 0], frames[:, None, 1], frames[:, None, 2]
    p = nrm + ab[None, :, 0:1] * s + ab[None, :, 1:2] * t          # (6, 4, 3)
    normals = np.broadcast_to(nrm, p.shape)
    uv = (np.einsum("fvk,fck->fvc", p, uv_axes) + 1.0) / 2.0       # (6, 4, 2)
    base = 4 * np.arange(6)[:, None]
    f = np.concatenate([base + [0, 1, 2], base + [0, 2, 3]], axis=1).reshape(-1, 3)
    return MeshData(p.reshape(-1, 3), f, normals=normals.reshape(-1, 3), uvs=uv.reshape(-1, 2))


def rectangle() -> MeshData:
    """The square [-1, 1]^2 at z = 0, normal +Z, uvs ``(p + 1) / 2``: 4 vertices, 2 triangles."""
    p = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=np.float64)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    n = np.tile([0.0, 0.0, 1.0], (4, 1))
    return MeshData(p, f, normals=n, uvs=(p[:, :2] + 1.0) / 2.0)


def disk(n_segments: int = 128) -> MeshData:
    """The unit disk at z = 0, normal +Z, as a fan of ``n_segments`` triangles.

    The rim is the inscribed regular polygon: its largest distance to the true
    circle is ``1 - cos(pi / n_segments)``. uvs are Mitsuba's polar ones,
    ``(r, phi / 2pi)`` with ``phi`` in [0, 2pi): the rim vertex at phi = 0 is
    duplicated at 2pi so the uvs are continuous, and each triangle has its own
    centre vertex with ``v`` = the triangle's middle angle, so the interpolated
    ``v`` is the angle all the way to the centre (one shared centre vertex would
    interpolate ``r phi / 2pi``).
    """
    n = _check_count("n_segments", n_segments, 3)
    phi = np.linspace(0.0, 2.0 * np.pi, n + 1)
    rim = np.stack([np.cos(phi), np.sin(phi), np.zeros_like(phi)], axis=-1)
    rim[-1] = rim[0]
    mid = (phi[:-1] + phi[1:]) / (4.0 * np.pi)                     # middle angle / 2pi
    p = np.concatenate([rim, np.zeros((n, 3))])
    uv = np.concatenate([np.stack([np.ones_like(phi), phi / (2.0 * np.pi)], -1),
                         np.stack([np.zeros(n), mid], -1)])
    k = np.arange(n)
    f = np.stack([n + 1 + k, k, k + 1], axis=-1)
    return MeshData(p, f, normals=np.tile([0.0, 0.0, 1.0], (2 * n + 1, 1)), uvs=uv)
