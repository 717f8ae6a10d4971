"""Recover the red wall colour of the Cornell box from a reference image.

The workflow of Mitsuba 3's "gradient-based optimization" tutorial, with
lumigrad:

1. render a reference image of the built-in Cornell box (many samples);
2. change ``red.reflectance.value`` to a wrong colour;
3. minimise the mean squared error between new renders and the reference with
   Adam (``drjit.opt.Adam``, Kingma & Ba 2015): each iteration renders with few
   samples and a new seed, back-propagates the loss through the renderer (path
   replay backpropagation, Vicini et al. 2021) and takes a step; the colour is
   clamped to [0, 1] after each step.

Writes the loss curve (``losses.png``), the colour error per iteration
(``parameter_error.png``), the reference, initial and final images
and a side-by-side figure into ``--output``; prints the loss and the colour.

Run: ``python examples/optimize_cbox_wall.py [--res 64] [--spp 4] [--iterations 50]
[--output out/optimize_cbox_wall]``
"""
from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

import drjit as dr
import drjit.opt  # noqa: F401  (Dr.Jit's optimizers live in a submodule)
import numpy as np
from tqdm import tqdm

import lumigrad as lg
import lumigrad.viz

KEY = "red.reflectance.value"
INITIAL = (0.01, 0.2, 0.9)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--res", type=int, default=64, help="image width and height")
    ap.add_argument("--spp", type=int, default=4, help="samples per pixel per iteration")
    ap.add_argument("--ref-spp", type=int, default=None,
                    help="samples per pixel of the reference (default 64 × spp)")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--lr", type=float, default=0.05, help="Adam learning rate")
    ap.add_argument("--max-depth", type=int, default=4, help="path length (segments)")
    ap.add_argument("--output", default=os.path.join("out", "optimize_cbox_wall"))
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap.parse_args(argv)


def colour_error(a, b) -> float:
    """Squared distance between two colours (Mitsuba's tutorial metric)."""
    return float(np.sum(np.square(np.array(a, dtype=np.float64).ravel() -
                                  np.array(b, dtype=np.float64).ravel())))


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    scene = lg.cornell_box(res=args.res, spp=args.spp, max_depth=args.max_depth)
    params = lg.traverse(scene)

    # 1. the reference image and the true colour
    ref_spp = args.ref_spp or 64 * args.spp
    image_ref = lg.render(scene, params, spp=ref_spp, seed=10_000)
    param_ref = lg.Color3f(params[KEY])

    # 2. start from a wrong colour
    params[KEY] = lg.Color3f(*INITIAL)
    params.update()
    image_init = lg.render(scene, params, spp=ref_spp, seed=10_001)

    # 3. optimise: the optimizer owns a grad-enabled copy of the parameter and
    # params.update(opt) pushes it into the scene (opt is a key -> value mapping)
    opt = dr.opt.Adam(lr=args.lr)
    opt[KEY] = params[KEY]
    params.update(opt)

    losses, errors = [], [colour_error(params[KEY], param_ref)]
    bar = tqdm(range(args.iterations), disable=args.quiet, desc="optimising", unit="it")
    for it in bar:
        image = lg.render(scene, params, spp=args.spp, seed=it)
        loss = lg.l2(image, image_ref)
        dr.backward(loss)
        opt.step()
        opt[KEY] = dr.clip(opt[KEY], 0.0, 1.0)   # a reflectance stays in [0, 1]
        params.update(opt)
        losses.append(loss.item())
        errors.append(colour_error(params[KEY], param_ref))
        bar.set_postfix(loss=f"{losses[-1]:.5f}", err=f"{errors[-1]:.4f}")

    final = np.array(params[KEY], dtype=np.float64).ravel()
    truth = np.array(param_ref, dtype=np.float64).ravel()
    print(f"loss: first {losses[0]:.6f}, last {losses[-1]:.6f}")
    print(f"red wall colour: start {list(INITIAL)}, found {np.round(final, 4).tolist()}, "
          f"true {np.round(truth, 4).tolist()}")
    print(f"squared colour error: {errors[0]:.5f} -> {errors[-1]:.5f}")

    image_final = lg.render(scene, params, spp=ref_spp, seed=10_002)
    out = args.output
    lg.write_image(os.path.join(out, "reference.png"), image_ref)
    lg.write_image(os.path.join(out, "initial.png"), image_init)
    lg.write_image(os.path.join(out, "final.png"), image_final)
    # The loss of a few-sample render is dominated by Monte Carlo noise (the
    # light's pixels); the colour error shows the convergence itself.
    lumigrad.viz.plot_losses(losses, os.path.join(out, "losses.png"),
                             title="L2 loss (red wall colour)")
    lumigrad.viz.plot_losses(errors, os.path.join(out, "parameter_error.png"),
                             title="squared error of the red wall colour")
    lumigrad.viz.side_by_side([image_init, image_final, image_ref],
                              ["initial", f"after {args.iterations} iterations", "reference"],
                              os.path.join(out, "before_after.png"))
    print(f"wrote {out}/losses.png, parameter_error.png, before_after.png, "
          "reference/initial/final.png")
    return {"losses": losses, "errors": errors, "final": final, "truth": truth,
            "output": out}


if __name__ == "__main__":
    main()
