"""Weight initialisers, drawn on the host from one seeded NumPy Generator.

Drawing on the host (in float64, then cast) means the CPU engine, the GPU engine
and the TensorFlow reference all start from the very same weights for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# Keras draws He-normal from a truncated normal and divides the target stddev by
# the stddev of a standard normal truncated to [-2, 2], so the spread is right.
_TRUNCATED_STD = 0.87962566103423978


def truncated_normal(
    rng: np.random.Generator, shape: tuple[int, ...], stddev: float = 0.1
) -> np.ndarray:
    """Normal(0, stddev) values, each redrawn until within two stddevs of 0.

    This is what ``tf.random.truncated_normal`` and Keras's ``TruncatedNormal``
    do: values beyond two standard deviations are discarded and re-picked.

    Args:
        rng: the run's random generator.
        shape: shape of the result, e.g. (D, H).
        stddev: standard deviation before truncation (the paper uses 0.1).

    Returns:
        float64 array of ``shape``.
    """
    values = rng.standard_normal(shape)  # shape
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values * stddev


def paper_init(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """The paper's weights: truncated normal, stddev 0.1, shape (fan_in, fan_out)."""
    return truncated_normal(rng, (fan_in, fan_out), 0.1)


def he_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """He et al. (2015), for ReLU layers: stddev sqrt(2 / fan_in), as Keras draws it."""
    stddev = math.sqrt(2.0 / fan_in) / _TRUNCATED_STD
    return truncated_normal(rng, (fan_in, fan_out), stddev)


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """Glorot & Bengio (2010): uniform in +-sqrt(6 / (fan_in + fan_out))."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


INITIALIZERS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "paper": paper_init,
    "he": he_normal,
    "glorot": glorot_uniform,
}
