"""``lg.LargeSteps`` (Nicolet et al. 2021) and the shape-reconstruction example;
optimisation steps that move geometry compile no new kernels."""
from __future__ import annotations

import drjit as dr
import numpy as np
import pytest

import lumigrad as lg
from lumigrad.geometry import primitives

from .conftest import load_example


def _cube_scene():
    return lg.load_dict({"type": "scene", "box": {"type": "cube"},
                         "sensor": {"type": "perspective"}})


def _dense_system(steps: lg.LargeSteps) -> np.ndarray:
    m = np.zeros((steps.n, steps.n))
    np.add.at(m, (steps._rows, steps._cols), steps._vals)
    return m


def test_parametrisation_of_a_mesh_with_split_vertices():
    """Mitsuba's ``cube`` has 24 vertices (split per face) at 8 positions: one
    unknown per position; ``x = (I + λL)⁻¹ u`` as a dense solve computes it;
    copies of a position stay together; ``to_differential`` inverts it."""
    params = lg.traverse(_cube_scene())
    x = params["box.vertex_positions"]
    steps = lg.LargeSteps(x, params["box.faces"], 10.0)
    assert (steps.vertex_count, steps.n) == (24, 8)
    m = _dense_system(steps)
    # Symmetric positive definite (eigenvalues of I + λL are 1 + λ × those of L ≥ 0).
    np.testing.assert_allclose(m, m.T)
    assert np.all(np.linalg.eigvalsh(m) >= 1.0 - 1e-9)
    u = steps.to_differential(x)
    np.testing.assert_allclose(np.array(steps.from_differential(u)), np.array(x), atol=2e-6)
    rng = np.random.default_rng(1)
    u2 = rng.normal(size=3 * steps.n).astype(np.float32)
    got = np.array(steps.from_differential(lg.Float(u2))).reshape(-1, 3)
    want = np.linalg.solve(m, u2.reshape(-1, 3).astype(np.float64))[steps.copy_of]
    np.testing.assert_allclose(got, want, atol=1e-5)
    for k in range(steps.n):
        copies = got[steps.copy_of == k]
        np.testing.assert_array_equal(copies, np.broadcast_to(copies[:1], copies.shape))


def test_a_step_reaches_the_neighbours():
    """A change of one unknown moves its vertex most, its neighbours less, and
    every vertex somewhat (the inverse of ``I + λL`` is dense): the smoothed
    step of the paper, where plain descent would move one vertex alone."""
    m = primitives.icosphere(2)
    steps = lg.LargeSteps(m.positions, m.faces, 20.0)
    u = np.array(steps.to_differential(m.positions)).reshape(-1, 3)
    k = 7
    u[k, 1] += 1.0
    moved = np.abs(np.array(steps.from_differential(lg.Float(u.ravel()))).reshape(-1, 3)
                   - m.positions)[:, 1]
    neighbours = np.unique(m.faces[(m.faces == k).any(1)])
    neighbours = neighbours[neighbours != k]
    others = np.setdiff1d(np.arange(len(moved)), np.append(neighbours, k))
    assert moved[k] > moved[neighbours].max()
    assert moved[neighbours].min() > moved[others].max()
    assert moved[others].min() > 0


def test_reverse_and_forward_derivatives_of_the_solve():
    """``dr.backward`` and ``dr.forward`` through ``from_differential`` agree with
    each other and with differences (the map is linear: exact up to rounding)."""
    m = primitives.icosphere(1)
    steps = lg.LargeSteps(m.positions, m.faces, 5.0)
    rng = np.random.default_rng(3)
    u0 = steps.to_differential(m.positions)
    w = lg.Float(rng.normal(size=3 * steps.vertex_count).astype(np.float32))
    du = lg.Float(rng.normal(size=3 * steps.n).astype(np.float32))
    u = lg.Float(u0)
    dr.enable_grad(u)
    dr.backward(dr.sum(steps.from_differential(u) * w))
    reverse = float(dr.sum(dr.grad(u) * du)[0])
    u = lg.Float(u0)
    dr.enable_grad(u)
    dr.set_grad(u, du)
    out = dr.sum(steps.from_differential(u) * w)
    dr.forward_to(out)
    forward = float(dr.grad(out)[0])

    def f(t: float) -> float:
        return float(dr.sum(steps.from_differential(u0 + t * du) * w)[0])
    fd = (f(0.5) - f(-0.5)) / 1.0
    assert reverse == pytest.approx(forward, rel=1e-5)
    assert reverse == pytest.approx(fd, rel=1e-3)


def test_bad_arguments_are_refused():
    m = primitives.icosphere(1)
    for lam in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="lambda_"):
            lg.LargeSteps(m.positions, m.faces, lam)
    with pytest.raises(ValueError, match="outside"):
        lg.LargeSteps(m.positions, m.faces + 1000, 1.0)
    steps = lg.LargeSteps(m.positions, m.faces, 1.0)
    with pytest.raises(ValueError, match="expected"):
        steps.from_differential(lg.Float(np.zeros(5, np.float32)))
    with pytest.raises(ValueError, match="vertices"):
        steps.to_differential(np.zeros((3, 3)))


def test_geometry_steps_compile_no_new_kernels():
    """A step of a vertex optimisation (direct integrator, a sun and a sky
    whose sampling follows the scene's bounds, boundary terms on) compiles
    its kernels once: values that follow the geometry (bounds, sample counts)
    enter kernels as inputs, not literals (which cost ~0.2-0.4 s a step)."""
    ex = load_example("shape_reconstruction")
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        v, f = ex.start_mesh()
        path = os.path.join(tmp, "start.ply")
        ex.meshio.write_ply(path, v, f)
        scene = lg.load_dict(ex.scene_dict(16, path))
    params = lg.traverse(scene)
    key = "obj.vertex_positions"
    steps = lg.LargeSteps(params[key], params["obj.faces"], 20.0)
    opt = dr.opt.Adam(lr=0.05, uniform=True)
    opt["u"] = steps.to_differential(params[key])
    target = lg.render(scene, sensor=0, spp=2, seed=9) * 1.2
    misses = []
    dr.set_flag(dr.JitFlag.KernelHistory, True)
    try:
        for it in range(3):
            dr.kernel_history()
            params[key] = steps.from_differential(opt["u"])
            params.update()
            dr.backward(lg.l1(lg.render(scene, params, sensor=0, spp=2, seed=it), target))
            opt.step()
            dr.eval(opt["u"])
            dr.sync_thread()
            misses.append(sum(1 for k in dr.kernel_history()
                              if str(k.get("type")) == "KernelType.JIT" and not k["cache_hit"]))
    finally:
        dr.set_flag(dr.JitFlag.KernelHistory, False)
    assert misses[1:] == [0, 0], misses


def test_shape_reconstruction_example(tmp_path):
    """Every vertex of a sphere moves onto the target surface (six views,
    tiny images, few steps): the mean distance falls below 40 % (0.27-0.35 in
    runs: the order of scatter-adds makes runs differ) and no face turns
    inside out."""
    out = load_example("shape_reconstruction").main(
        ["--res", "32", "--spp", "2", "--iterations", "60", "--output", str(tmp_path),
         "--quiet"])
    d = out["distances"]
    assert d[-1] < 0.4 * d[0], d
    from lumigrad.geometry import meshio
    mesh = meshio.read_mesh(tmp_path / "result.ply")
    x, f = mesh.positions, mesh.faces
    n = np.cross(x[f[:, 1]] - x[f[:, 0]], x[f[:, 2]] - x[f[:, 0]])
    assert np.all(np.sum(n * x[f].mean(1), axis=1) > 0), "faces turned inside out"
    for name in ("losses.png", "distance.png", "view0.png", "view2.png"):
        assert (tmp_path / name).stat().st_size > 0, name
