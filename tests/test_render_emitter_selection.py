"""Emitter selection for next-event estimation is proportional to ``sampling_weight``:
changing the weights changes the noise, never the expected image."""
from __future__ import annotations

import numpy as np
import pytest

import lumigrad as lg


def _scene(weight: float) -> lg.Scene:
    d = lg.cornell_box_dict(res=16, max_depth=3)
    d["lamp"] = {"type": "point", "position": [0.3, 0.5, 0.2], "sampling_weight": weight,
                 "intensity": {"type": "rgb", "value": [1.0, 1.0, 1.0]}}
    return lg.load_dict(d)


def _mean_and_se(scene: lg.Scene, k: int = 4, spp: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Mean over pixels of each channel and its standard error (pixels and seeds are
    independent estimates)."""
    imgs = np.stack([np.array(lg.render(scene, spp=spp, seed=10 + s)) for s in range(k)])
    per = imgs.reshape(k, -1, 3)
    mean = per.mean(axis=(0, 1))
    se = np.sqrt(per.var(axis=0, ddof=1).mean(axis=0) / (k * per.shape[1]))
    return mean, se


@pytest.mark.parametrize("weight", [0.25, 4.0])
def test_sampling_weight_changes_noise_not_the_image(weight: float) -> None:
    m1, s1 = _mean_and_se(_scene(1.0))
    m2, s2 = _mean_and_se(_scene(weight))
    z = np.abs(m1 - m2) / np.sqrt(s1 ** 2 + s2 ** 2)
    assert np.all(z < 5.0), (m1, m2, z)


def test_negative_sampling_weight_is_rejected() -> None:
    with pytest.raises(ValueError, match="sampling_weight"):
        _scene(-1.0)


@pytest.mark.filterwarnings("ignore:derivatives with respect to")
def test_moving_an_area_light_does_not_recompile() -> None:
    """The area light's sampling tables (its total area) are kernel inputs, not
    literals: resizing the light between renders reuses the compiled kernels, as
    an optimization of the light's geometry needs."""
    import drjit as dr
    scene = lg.load_dict(lg.cornell_box_dict(res=16, max_depth=3))
    params = lg.traverse(scene)
    key = "light.vertex_positions"
    v0 = np.array(params[key])
    lights = []
    for scale in (1.0, 1.1, 1.2):
        # Scale the light about its centre: its area (and so the emitted power) changes.
        v = v0.reshape(-1, 3)
        params[key] = type(params[key])((v.mean(0) + scale * (v - v.mean(0))).ravel())
        params.update()
        if scale == 1.2:
            dr.set_flag(dr.JitFlag.KernelHistory, True)
            dr.kernel_history()
        lights.append(np.array(lg.render(scene, spp=4, seed=1)).mean())
    launched = [k for k in dr.kernel_history() if k["type"] == dr.KernelType.JIT]
    dr.set_flag(dr.JitFlag.KernelHistory, False)
    assert lights[0] < lights[1] < lights[2]
    assert launched and all(k["cache_hit"] for k in launched)
