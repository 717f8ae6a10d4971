"""Small numeric helpers shared by kernels."""
from __future__ import annotations

from typing import Any

import drjit as dr


def hmax(v: Any) -> Any:
    """Largest component of a 3-vector (per lane), via compare+select (see
    ``backend._install_llvm_minmax_workaround`` for why not ``dr.max``)."""
    m = dr.maximum(v[0], v[1])
    return dr.maximum(m, v[2])


def luminance(c: Any) -> Any:
    """Rec. 709 luminance of a linear RGB colour."""
    return 0.212671 * c[0] + 0.715160 * c[1] + 0.072169 * c[2]
