"""Optimizers written out by hand: SGD and Adam, updating parameters in place.

State (Adam's moments ``m`` and ``v``) is kept in dicts keyed like the
parameters, so a checkpoint can store it by name.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from backprop.device import xp_of
from backprop.errors import ConfigError

Array = Any  # a numpy.ndarray or cupy.ndarray
ADAM_MODES = ("keras", "algorithm1")


def _f32(value: float) -> float:
    """Round a Python float to float32 and back, as Keras does to lr and the betas."""
    return float(np.float32(value))


def _same_kind(a: Array, b: Array) -> bool:
    """True when ``a`` and ``b`` have the same array type, shape and dtype."""
    return type(a) is type(b) and a.shape == b.shape and a.dtype == b.dtype


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
        self.m: dict[str, Array] = {}
        self.v: dict[str, Array] = {}
        self._scratch: dict[str, tuple[Any, Array, Array]] = {}  # see _scratch_for

    def step(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        """Apply one Adam update to every parameter, in place.

        The update of one parameter, written with temporaries, is::

            m += (1 - b1) * (g - m)          # m <- b1 m + (1 - b1) g, as Keras does
            v += (1 - b2) * (g * g - v)      # v <- b2 v + (1 - b2) g^2
            p -= lr_t * m / (sqrt(v) + eps)  # "keras" mode

        Each expression would allocate a new array for every intermediate
        result, at every step. The code below does the very same operations in
        the same order, but writes the intermediates into two scratch arrays
        per parameter (``out=`` and in-place operators), so a step allocates
        nothing and the results are identical to the last bit.

        Args:
            params: name -> array; updated in place.
            grads: name -> gradient, same shapes as ``params``.
        """
        if not self.m:
            for name, p in params.items():
                xp = xp_of(p)
                self.m[name] = xp.zeros_like(p)
                self.v[name] = xp.zeros_like(p)
        self.t += 1
        b1, b2, t = self.beta1, self.beta2, self.t
        if self.mode == "keras":
            lr_t = _f32(self.lr) * math.sqrt(1 - _f32(b2) ** t) / (1 - _f32(b1) ** t)
        for name, p in params.items():
            g, m, v = grads[name], self.m[name], self.v[name]
            xp, s1, s2 = self._scratch_for(name, p)  # two work arrays like p
            # m <- m + (1 - b1) (g - m)
            xp.subtract(g, m, out=s1)
            s1 *= 1 - b1
            m += s1
            # v <- v + (1 - b2) (g g - v)
            xp.multiply(g, g, out=s1)
            s1 -= v
            s1 *= 1 - b2
            v += s1
            if self.mode == "keras":
                # p <- p - lr_t m / (sqrt(v) + eps)
                xp.sqrt(v, out=s1)
                s1 += self.eps
                xp.multiply(m, lr_t, out=s2)
                s2 /= s1
                p -= s2
            else:
                # m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
                # p <- p - lr m_hat / (sqrt(v_hat) + eps)
                xp.divide(m, 1 - b1**t, out=s2)  # m_hat
                xp.divide(v, 1 - b2**t, out=s1)  # v_hat
                xp.sqrt(s1, out=s1)
                s1 += self.eps
                s2 *= self.lr
                s2 /= s1
                p -= s2

    def _scratch_for(self, name: str, p: Array) -> tuple[Any, Array, Array]:
        """The array module of ``p`` and two scratch arrays shaped like it.

        Made on first use and kept (they are not part of the optimizer's
        state), so finding the array module and allocating happen once, not at
        every step.
        """
        entry = self._scratch.get(name)
        if entry is None or not _same_kind(entry[1], p):
            xp = xp_of(p)
            entry = (xp, xp.empty_like(p), xp.empty_like(p))
            self._scratch[name] = entry
        return entry

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state: ``t``, and ``m.<name>``/``v.<name>`` arrays."""
        state: dict[str, Any] = {"t": self.t}
        for name in self.m:
            state[f"m.{name}"] = self.m[name]
            state[f"v.{name}"] = self.v[name]
        return state

    def load_state_dict(self, state: dict[str, Any], params: dict[str, Array]) -> None:
        """Restore ``state_dict()`` output, placing moments beside ``params``."""
        self.t = int(state["t"])
        self.m, self.v = {}, {}
        if self.t == 0:
            return
        for name, p in params.items():
            xp = xp_of(p)
            self.m[name] = xp.asarray(state[f"m.{name}"], dtype=p.dtype)
            self.v[name] = xp.asarray(state[f"v.{name}"], dtype=p.dtype)
