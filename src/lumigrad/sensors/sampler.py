"""The ``independent`` sampler: uniform random numbers from PCG32 streams."""
from __future__ import annotations

from ..scene.schema import Param, register


@register
class IndependentSampler:
    """Independent uniform samples; ``sample_count`` is the default spp of renders.

    Random numbers come from one PCG32 stream per Monte Carlo sample (O'Neill
    2014, "PCG: A Family of Simple Fast Space-Efficient Statistically Good
    Algorithms for Random Number Generation"), seeded by the render's ``seed``.
    """

    PLUGIN = ("sampler", ("independent", "stratified", "multijitter", "ldsampler"))
    PARAMS = {
        "sample_count": Param("int", 4, min=1, max=1 << 24),
        "seed": Param("int", 0, min=0),
        "jitter": Param("bool", True),
    }

    def __init__(self, sample_count: int = 4, seed: int = 0, jitter: bool = True,
                 id: str | None = None) -> None:
        self.id = id
        self.sample_count = int(sample_count)
        self.seed = int(seed)
