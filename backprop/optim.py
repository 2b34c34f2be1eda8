"""Optimizers written out by hand: SGD and Adam, updating parameters in place.

``WeightAverage`` keeps the moving average of the weights that a run may
predict with (TensorFlow's ``ExponentialMovingAverage``). State (Adam's
moments ``m`` and ``v``, the average) is kept in dicts keyed like the
parameters, so a checkpoint can store it by name.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from backprop.device import xp_of
from backprop.errors import ConfigError
from backprop.params import flat_buffer, shapes_of

Array = Any  # a numpy.ndarray or cupy.ndarray
ADAM_MODES = ("keras", "algorithm1")


def _f32(value: float) -> float:
    """Round a Python float to float32 and back, as Keras does to lr and the betas."""
    return float(np.float32(value))


class SGD:
    """Plain stochastic gradient descent: ``p -= lr * g``.

    Args:
        lr: learning rate.
    """

    def __init__(self, lr: float = 0.01) -> None:
        if not lr > 0:
            raise ConfigError(f"learning rate must be > 0, got {lr}")
        self.lr = lr

    def step(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        """Update every parameter in place."""
        for name, p in params.items():
            p -= self.lr * grads[name]

    def state_dict(self) -> dict[str, Any]:
        """SGD keeps no state."""
        return {}

    def load_state_dict(self, state: dict[str, Any], params: dict[str, Array]) -> None:
        """SGD keeps no state."""


class Adam:
    """Adam (Kingma & Ba, 2015) in one of two conventions.

    Both keep ``m = b1 m + (1 - b1) g`` and ``v = b2 v + (1 - b2) g^2``. They
    differ in where epsilon goes:

    * ``"keras"`` (default; the paper's ``tf.optimizers.Adam``): the step is
      ``lr_t * m / (sqrt(v) + eps)`` with ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``
      and ``eps = 1e-7`` added to the uncorrected ``sqrt(v)``. Keras holds lr in
      a float32 variable and turns b1 and b2 into float32 before the powers, so
      this mode rounds those three to float32 in ``lr_t``, and nowhere else.
    * ``"algorithm1"`` (the paper's Algorithm 1): ``m_hat = m / (1 - b1^t)``,
      ``v_hat = v / (1 - b2^t)``, step ``lr * m_hat / (sqrt(v_hat) + eps)`` with
      ``eps = 1e-8``, all in the parameters' precision.

    Args:
        lr: learning rate (alpha).
        beta1: decay of the first moment.
        beta2: decay of the second moment.
        eps: epsilon; None picks the mode's default (1e-7 keras, 1e-8 algorithm1).
        mode: ``"keras"`` or ``"algorithm1"``.
    """

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float | None = None,
        mode: str = "keras",
    ) -> None:
        if mode not in ADAM_MODES:
            raise ConfigError(
                f"unknown Adam mode {mode!r}; choose one of {', '.join(ADAM_MODES)}"
            )
        if not lr > 0:
            raise ConfigError(f"learning rate must be > 0, got {lr}")
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ConfigError(f"betas must be in [0, 1), got {beta1}, {beta2}")
        self.lr, self.beta1, self.beta2, self.mode = lr, beta1, beta2, mode
        self.eps = (1e-7 if mode == "keras" else 1e-8) if eps is None else eps
        self.t = 0
        self.m: dict[str, Array] = {}  # views into m_flat, made at the first step
        self.v: dict[str, Array] = {}
        self.m_flat: Array = None
        self.v_flat: Array = None

    def step(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        """Apply one Adam update to every parameter, in place.

        Args:
            params: name -> array; updated in place.
            grads: name -> gradient, same shapes as ``params``.
        """
        t = self.advance(params)
        b1, b2 = self.beta1, self.beta2
        for name, p in params.items():
            g, m, v = grads[name], self.m[name], self.v[name]
            xp = xp_of(p)
            m += (1 - b1) * (g - m)  # m <- b1 m + (1 - b1) g, as Keras writes it
            v += (1 - b2) * (g * g - v)  # v <- b2 v + (1 - b2) g^2
            if self.mode == "keras":
                p -= self.keras_step_size() * m / (xp.sqrt(v) + self.eps)
            else:
                m_hat = m / (1 - b1**t)  # bias-corrected moments
                v_hat = v / (1 - b2**t)
                p -= self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)

    def advance(self, params: dict[str, Array]) -> int:
        """Count one more step (allocating the moments at the first); return t.

        ``m`` and ``v`` are views into one flat buffer each (``m_flat``,
        ``v_flat``), laid out like ``params``, so a fused kernel can update
        every parameter in one pass (``backprop.kernels``).
        """
        if not self.m:
            xp, dtype = xp_of(*params.values()), next(iter(params.values())).dtype
            self.m_flat, self.m = flat_buffer(shapes_of(params), dtype, xp)
            self.v_flat, self.v = flat_buffer(shapes_of(params), dtype, xp)
        self.t += 1
        return self.t

    def keras_step_size(self) -> float:
        """``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``, with Keras's float32 numbers."""
        b1, b2, t = _f32(self.beta1), _f32(self.beta2), self.t
        return _f32(self.lr) * math.sqrt(1 - b2**t) / (1 - b1**t)

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state: ``t``, and ``m.<name>``/``v.<name>`` arrays."""
        state: dict[str, Any] = {"t": self.t}
        for name in self.m:
            state[f"m.{name}"] = self.m[name]
            state[f"v.{name}"] = self.v[name]
        return state

    def load_state_dict(self, state: dict[str, Any], params: dict[str, Array]) -> None:
        """Restore ``state_dict()`` output, placing moments beside ``params``."""
        t = int(state["t"])
        self.t, self.m, self.v = 0, {}, {}
        if t == 0:
            return
        self.advance(params)  # allocates the flat moments
        self.t = t
        for name, p in params.items():
            xp = xp_of(p)
            self.m[name][...] = xp.asarray(state[f"m.{name}"], dtype=p.dtype)
            self.v[name][...] = xp.asarray(state[f"v.{name}"], dtype=p.dtype)


class WeightAverage:
    """An exponential moving average of the weights (Polyak averaging).

    TensorFlow's ``tf.train.ExponentialMovingAverage(momentum, num_updates)``:
    after optimizer step t the average moves towards the weights,
    ``average -= (1 - d) * (average - w)`` with ``d = min(momentum, (1 + t) /
    (10 + t))``, and at the first step it is the weights. ``d`` grows with t
    (0.25 at step 2) until it reaches ``momentum``, so early on the average
    keeps up with the weights, and late in training it averages the last
    ``1 / (1 - d)`` steps or so: with a constant learning rate the weights keep
    jumping from step to step, and their average sits nearer the middle of
    where they jump. The optimizer steps the weights; the run scores and
    predicts with the average. As TensorFlow does, ``d`` is computed in
    float32.

    Args:
        momentum: the largest ``d``, in [0, 1). With 0.999, ``d`` reaches it
            at step 8,990; at the end of the paper's 4,700 steps it is 0.998,
            an average over about the last 500 steps.
    """

    def __init__(self, momentum: float = 0.999) -> None:
        if not 0 <= momentum < 1:
            raise ConfigError(
                f"the average's momentum must be in [0, 1), got {momentum}"
            )
        self.momentum = momentum
        self.params: dict[str, Array] = {}  # views into flat, made at the first update
        self.flat: Array = None

    def decay(self, t: int) -> float:
        """``d = min(momentum, (1 + t) / (10 + t))`` at step t, in float32 as TF's."""
        one, ten, steps = np.float32(1), np.float32(10), np.float32(t)
        return float(min(np.float32(self.momentum), (one + steps) / (ten + steps)))

    def update(self, params: dict[str, Array], t: int) -> None:
        """Move the average towards the weights after optimizer step ``t``.

        Args:
            params: name -> array, the weights the optimizer just updated.
            t: the optimizer's step count, from 1 (TF's ``num_updates``).
        """
        if not self.params:  # the first step: the average is the weights
            xp, dtype = xp_of(*params.values()), next(iter(params.values())).dtype
            self.flat, self.params = flat_buffer(shapes_of(params), dtype, xp)
            self.copy_from(params)
            return
        d = self.decay(t)
        for name, p in params.items():
            average = self.params[name]
            average -= (1 - d) * (average - p)  # as TF's assign_moving_average

    def copy_from(self, params: dict[str, Array]) -> None:
        """Set the average to ``params`` (arrays keyed and shaped alike)."""
        for name, average in self.params.items():
            average[...] = params[name]

    def copy_to(self, params: dict[str, Array]) -> None:
        """Write the average into ``params`` (arrays keyed and shaped alike)."""
        for name, p in params.items():
            p[...] = self.params[name]

    def load(self, params: dict[str, Array], like: dict[str, Array]) -> None:
        """Restore a saved average, placed and typed like ``like``."""
        xp, dtype = xp_of(*like.values()), next(iter(like.values())).dtype
        self.flat, self.params = flat_buffer(shapes_of(like), dtype, xp)
        for name in like:
            self.params[name][...] = xp.asarray(params[name], dtype=dtype)


@contextmanager
def averaged(params: dict[str, Array], average: WeightAverage | None) -> Iterator[None]:
    """Within the block, ``params`` hold the average; afterwards, their own values.

    For scoring a model with its averaged weights; with no average (or none
    yet), the block sees the weights as they are.
    """
    if average is None or not average.params:
        yield
        return
    own = {name: p.copy() for name, p in params.items()}
    average.copy_to(params)
    try:
        yield
    finally:
        for name, p in params.items():
            p[...] = own[name]
