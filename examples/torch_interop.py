"""PyTorch interoperability: optimise a scene parameter computed by a torch function.

The red wall colour of the Cornell box is produced by PyTorch,
``colour = sigmoid(logits)``, from a ``torch.nn.Parameter``; the renderer is
wrapped with ``@dr.wrap(source='torch', target='drjit')``, which converts the
torch tensors to Dr.Jit arrays (zero-copy, DLPack) and connects the two
automatic differentiation systems: ``loss.backward()`` in PyTorch runs
lumigrad's reverse-mode pass (path replay backpropagation) and hands the
gradient back to torch, whose optimizer (``torch.optim.Adam``) takes the step.

Needs PyTorch (the ``torch`` optional extra: ``pip install lumigrad[torch]``).

Run: ``python examples/torch_interop.py [--res 32] [--spp 4] [--iterations 40]
[--output out/torch_interop]``
"""
from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

import drjit as dr
import numpy as np
import torch
from tqdm import tqdm

import lumigrad as lg
import lumigrad.viz

KEY = "red.reflectance.value"


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--spp", type=int, default=4, help="samples per pixel per iteration")
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--lr", type=float, default=0.2, help="torch Adam learning rate")
    ap.add_argument("--max-depth", type=int, default=4)
    ap.add_argument("--output", default=os.path.join("out", "torch_interop"))
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap.parse_args(argv)


def make_renderer(scene, params, spp: int):
    """A torch-callable renderer: colour (torch tensor, 3) -> image (H, W, 3)."""

    @dr.wrap(source="torch", target="drjit")
    def render_with_colour(colour, seed):
        # Inside, ``colour`` is a grad-tracking Dr.Jit TensorXf of shape (3,).
        params[KEY] = dr.unravel(lg.Color3f, colour.array)
        params.update()
        return lg.render(scene, params, spp=spp, seed=seed)

    return render_with_colour


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    torch.manual_seed(0)
    scene = lg.cornell_box(res=args.res, spp=args.spp, max_depth=args.max_depth)
    params = lg.traverse(scene)
    truth = np.array(params[KEY], dtype=np.float64).ravel()
    target = torch.from_numpy(np.array(lg.render(scene, params, spp=64 * args.spp,
                                                 seed=10_000)))

    render_with_colour = make_renderer(scene, params, args.spp)
    # The torch "model": a colour in (0, 1) through a sigmoid, starting blue.
    logits = torch.nn.Parameter(torch.tensor([-3.0, -1.5, 2.0]))
    optimizer = torch.optim.Adam([logits], lr=args.lr)

    losses, errors = [], []
    bar = tqdm(range(args.iterations), disable=args.quiet, desc="optimising", unit="it")
    for it in bar:
        optimizer.zero_grad()
        colour = torch.sigmoid(logits)
        image = render_with_colour(colour, it)
        loss = torch.mean(torch.square(image - target))
        loss.backward()              # through torch, then lumigrad's reverse pass
        optimizer.step()
        losses.append(loss.item())
        errors.append(float(np.sum(np.square(colour.detach().numpy() - truth))))
        bar.set_postfix(loss=f"{losses[-1]:.5f}", err=f"{errors[-1]:.4f}")

    final = torch.sigmoid(logits).detach().numpy().astype(np.float64)
    print(f"loss: first {losses[0]:.6f}, last {losses[-1]:.6f}")
    print(f"red wall colour = sigmoid(logits): found {np.round(final, 4).tolist()}, "
          f"true {np.round(truth, 4).tolist()}")
    print(f"squared colour error: {errors[0]:.5f} -> {errors[-1]:.5f}")
    lumigrad.viz.plot_losses(losses, os.path.join(args.output, "losses.png"),
                             title="L2 loss (torch optimiser)")
    lumigrad.viz.plot_losses(errors, os.path.join(args.output, "parameter_error.png"),
                             title="squared error of the red wall colour")
    with torch.no_grad():
        final_image = render_with_colour(torch.sigmoid(logits), 10_001)
    lumigrad.viz.side_by_side([final_image.numpy(), target.numpy()], ["optimised", "target"],
                              os.path.join(args.output, "result.png"))
    print(f"wrote {args.output}/losses.png, parameter_error.png, result.png")
    return {"losses": losses, "errors": errors, "final": final, "truth": truth}


if __name__ == "__main__":
    main()
