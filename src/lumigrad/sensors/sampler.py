"""The ``independent`` sampler: uniform random numbers from PCG32 streams."""
from __future__ import annotations

from ..scene.schema import Param, register


@register
class IndependentSampler:
    """Independent uniform samples; ``sample_count`` is the default spp of renders.

    Mitsuba's ``stratified``, ``multijitter``, ``orthogonal`` and ``ldsampler``
    load as this sampler (their ``sample_count`` and ``seed`` are used): they
    place samples more evenly, which lowers the noise but not the expected
    image, so lumigrad's images converge to the same values.

    Random numbers come from one PCG32 stream per Monte Carlo sample (O'Neill
    2014, "PCG: A Family of Simple Fast Space-Efficient Statistically Good
    Algorithms for Random Number Generation"), seeded by the render's ``seed``.
    """

    PLUGIN = ("sampler", ("independent", "stratified", "multijitter", "orthogonal",
                          "ldsampler"))
    PARAMS = {
        "sample_count": Param("int", 4, min=1, max=1 << 24),
        "seed": Param("int", 0, min=0),
        "jitter": Param("bool", True),
        "dimension": Param("int", 4, min=1, ignored="Mitsuba 0.6's number of sample "
                           "dimensions of its low-discrepancy samplers; lumigrad's generator "
                           "has none, and the expected image does not depend on it"),
        "strength": Param("int", 2, min=1, ignored="the orthogonal-array strength of "
                          "Mitsuba's 'orthogonal' sampler; lumigrad's independent samples "
                          "converge to the same image (only the noise differs)"),
    }

    def __init__(self, sample_count: int = 4, seed: int = 0, jitter: bool = True,
                 id: str | None = None) -> None:
        self.id = id
        self.sample_count = int(sample_count)
        self.seed = int(seed)
