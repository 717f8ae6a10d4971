"""Shared parts of the sensors that are not pinhole cameras (``orthographic``,
``thinlens``): the film window (crop) and the pinhole interface, refused.

The boundary terms of geometry derivatives (``integrators/boundary``) project
edges onto the film through a camera's ``project``, ``project_differential``,
``apex``, ... . The orthographic camera implements them (its apex at
infinity); a thin lens is seen through one lens point per sample
(``ThinLensSensor.lens_view``, an off-axis pinhole) and its tables through all
of them at once (``lens_hull``). A pinhole's projection asked of the lens
itself has no single answer: the methods below raise a clear error.
"""
from __future__ import annotations

from typing import Any

import drjit as dr

from .. import backend as bk


class NonPinholeSensor:
    """Mixin: the boundary-term interface of a pinhole camera, refused."""

    PLUGIN: tuple

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"sensor '{self.PLUGIN[1]}'{f' (id {self.id!r})' if getattr(self, 'id', None) else ''}"
            " has no single pinhole projection (a thin lens is one pinhole per lens point: "
            "see ThinLensSensor.lens_view); this is a bug in the caller, please report it.")

    project = project_differential = film_direction = film_density = _refuse
    frustum_bounds = frustum_halfspaces = to_local = position = _focal = _refuse
    apex = point_ahead = pixel_size = _refuse

    @property
    def resolution(self) -> tuple[int, int]:
        """(width, height) in pixels (the crop window, if the film has one)."""
        return self.film.width, self.film.height  # type: ignore[attr-defined]

    def _film_window(self, scale: float) -> tuple[float, tuple[float, float]]:
        """``(scale', (pp_x, pp_y))`` of the film's crop window for a camera whose
        film maps ``s`` in [0, 1] to ``(1 - 2 s) scale`` (see ``HDRFilm.crop_camera``)."""
        film = self.film  # type: ignore[attr-defined]
        if getattr(film, "cropped", False):
            return film.crop_camera(scale, (0.0, 0.0))
        return scale, (0.0, 0.0)

    def _local_film_xy(self, film_pos: Any, scale: Any) -> tuple[Any, Any]:
        """Camera-space ``(x, y)`` of film position ``film_pos`` in [0,1]² on the
        plane where the film spans ``(1 - 2 s) scale`` horizontally (image right
        is local -X, image down local -Y, as the perspective camera)."""
        w, h = self.film.width, self.film.height  # type: ignore[attr-defined]
        ppx, ppy = self._pp
        x = (1.0 - 2.0 * (film_pos[0] + ppx)) * scale
        y = (1.0 - 2.0 * (film_pos[1] + ppy)) * scale * dr.opaque(bk.Float, h / w)
        return x, y


def film_density_by_jacobian(view: Any, p: Any, n: Any) -> Any:
    """Film area (pixels²) per unit surface area at ``p`` (normal ``n``): the
    projection's Jacobian (``view.project_differential``) on two unit tangents
    of the surface."""
    from ..core.frame import coordinate_system
    t1, t2 = coordinate_system(n)
    a, b = view.project_differential(p, t1), view.project_differential(p, t2)
    return dr.abs(a[0] * b[1] - a[1] * b[0])
