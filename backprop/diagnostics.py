"""Training diagnostics: is each layer learning, and are its ReLUs alive?

Three numbers per dense layer and epoch, the ones CS231n's "babysitting the
learning process" watches. A layer's parameters are its weights and its bias
together, ``theta = (W, b)``:

* ``grad_norm``: ``||dL/dtheta||`` (L2 over W and b), the mean over every
  step of the epoch. It falls as the loss flattens; one layer's norm far above
  or below the others' hints at exploding or vanishing gradients.
* ``update_ratio``: ``||theta_after - theta_before|| / ||theta_before||`` for
  one step, the size of the optimizer's step relative to the weights; around
  1e-3 is the rule of thumb. Measured honestly, from a snapshot of the
  parameters before the step and the parameters after it (whatever the
  optimizer did: Adam's moments, its bias correction, a fused kernel), at
  every ``every``-th step of the epoch (``UPDATE_EVERY``, 10, by default; the
  first step is always measured) and averaged over those steps. From one step
  to the next the ratio changes slowly, so a sample of one step in ten
  estimates the epoch's mean well, for a tenth of the cost.
* ``dead_fraction`` (layers followed by a ReLU): the fraction of the layer's
  units whose ReLU output is 0 for every example of a fixed probe batch (the
  first ``PROBE_SIZE``, 512, test images), measured after the epoch's last
  step. A dead unit gets no gradient and stops learning; a unit that fires
  for fewer than one image in 512 counts as dead here.

Cost. ``backprop.loop.train_epoch`` calls ``before_step()`` before each
step and ``after_step(result)`` after it. ``after_step`` reads the step's
gradients from its ``StepResult`` (``ReferenceStep`` and
``kernels.step.FusedStep`` both return one) and adds each layer's norm, two
dot products, into an array on the model's device; nothing is read back to
the host until ``summary()``, once per epoch, so a GPU is never made to wait
inside the epoch. The measured steps also copy the parameters once (one pass
over ``model.flat``), subtract, and take two more dot products per layer.
The dead-ReLU probe is one forward pass of ``PROBE_SIZE`` rows per epoch. On
the paper's 784-128-10 model, batch 256, on a 2-core CPU, this costs about 40
us per step and 3 ms per epoch: 1.1% of an epoch with the reference step,
1.4% with the fused one (measured on the AVX2 machine of lecture 9).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop.device import to_numpy, xp_of
from backprop.errors import ConfigError
from backprop.model import MLP
from backprop.params import flat_buffer, is_view_of, shapes_of

Array = Any  # a numpy.ndarray or cupy.ndarray
PROBE_SIZE = 512  # test images forwarded each epoch to count dead ReLUs
UPDATE_EVERY = 10  # the update ratio is measured at every 10th step


def layer_names(model: MLP) -> list[str]:
    """The layers with weights, input to output, named by their parameters.

    ``["dense1", "dense2"]`` for an MLP; ``["conv1", "conv2", "dense1", ...]``
    for a ``CNN`` (a layer ``name`` owns ``name.w`` and ``name.b``).
    """
    return [name[: -len(".w")] for name in model.params if name.endswith(".w")]


def squared_norms(arrays: dict[str, Array], layers: list[str], out: Array) -> Array:
    """``||W_l||^2 + ||b_l||^2`` of each layer, into ``out``, on the device.

    Two dot products per layer (BLAS, one pass over the values), written into
    a buffer that lives on the device: nothing is read back to the host, and
    nothing is allocated but the dots' 0-d results.

    Args:
        arrays: ``dense1.w``, ``dense1.b``, ... (parameters or gradients).
        layers: the layer names, e.g. ``["dense1", "dense2"]``.
        out: where to write, (L,) float64 on the arrays' device.

    Returns:
        ``out``.
    """
    xp = xp_of(out)
    for i, layer in enumerate(layers):
        w, b = arrays[f"{layer}.w"].ravel(), arrays[f"{layer}.b"].ravel()
        out[i] = xp.dot(w, w) + xp.dot(b, b)
    return out


def dead_fractions(model: MLP, probe: Array) -> Array:
    """Fraction of each hidden layer's units that are 0 for every probe row.

    A convolution's unit is one of its F filters: dead when its map is 0 at
    every position of every probe image.

    Args:
        model: the model (an MLP, whose caches are ``(dense_cache, relu_out)``,
            or a ``CNN``, whose caches start with the layer's kind).
        probe: inputs on the model's device, (P, D).

    Returns:
        one fraction per layer followed by a ReLU, (L - 1,), on the device.
    """
    xp = xp_of(probe)
    _, caches = model.forward(probe)
    outputs = [  # each ReLU's output; an MLP's caches are (dense_cache, relu_out)
        c[2] if isinstance(c[0], str) else c[1] for c in caches if c[0] != "pool"
    ]
    fractions = [
        1.0 - (relu_out > 0).reshape(-1, relu_out.shape[-1]).any(axis=0).mean()
        for relu_out in outputs  # (P, H), or (P, H', W', F) for a convolution
        if relu_out is not None
    ]
    return xp.stack(fractions) if fractions else xp.zeros(0)  # (L - 1,)


class Diagnostics:
    """Measures the layers around each training step; ``summary()`` per epoch.

    Args:
        model: the model the training steps update.
        probe: a fixed batch of inputs on the model's device, (P, D), for
            the dead ReLUs.
        every: measure the update ratio at every ``every``-th step.

    Raises:
        ConfigError: ``every`` is below 1, or the model's parameters are not
            views into ``model.flat`` (the snapshot copies that buffer).
    """

    def __init__(
        self,
        model: MLP,
        probe: Array,
        every: int = UPDATE_EVERY,
    ) -> None:
        if every < 1:
            raise ConfigError(f"measure the update ratio every >= 1 steps, not {every}")
        xp = xp_of(model.flat)
        if not is_view_of(model.params, model.flat, xp):
            raise ConfigError(
                "diagnostics copy model.flat, but a parameter was replaced by "
                "another array; write into params[name][...] instead"
            )
        self.model, self.probe, self.every = model, probe, every
        self.layers = layer_names(model)
        # the parameters before a measured step, laid out like model.params
        self.before_flat, self.before = flat_buffer(
            shapes_of(model.params), model.dtype, xp
        )
        count = len(self.layers)
        self.grad_sum = xp.zeros(count, np.float64)  # (L,), sum of ||grad||
        self.ratio_sum = xp.zeros(count, np.float64)  # (L,), sum of update ratios
        # one step's squared norms of the gradients, weights and update, (L,) each
        self.grad_sq, self.weight_sq, self.update_sq = (
            xp.zeros(count, np.float64) for _ in range(3)
        )
        self.steps = 0  # steps since the last summary (counted on the host)
        self.measured = 0  # of which the update ratio was measured

    def before_step(self) -> None:
        """Before a step: snapshot the parameters when this step is measured."""
        if self.steps % self.every == 0:
            self.before_flat[...] = self.model.flat
            squared_norms(self.before, self.layers, self.weight_sq)

    def after_step(self, result: Any) -> None:
        """After a step: add its gradient norms, and its update ratio if measured.

        Args:
            result: the step's ``backprop.loop.StepResult``; its ``grads`` are
                keyed like ``model.params``.
        """
        xp = xp_of(self.grad_sum)
        self.grad_sum += xp.sqrt(squared_norms(result.grads, self.layers, self.grad_sq))
        if self.steps % self.every == 0:
            self.before_flat -= self.model.flat  # now theta_before - theta_after
            squared_norms(self.before, self.layers, self.update_sq)
            weight_sq = xp.maximum(self.weight_sq, 1e-300)  # zero weights: no NaN
            self.ratio_sum += xp.sqrt(self.update_sq / weight_sq)
            self.measured += 1
        self.steps += 1

    def summary(self) -> dict[str, dict[str, float]]:
        """The diagnostics since the last summary, read back once; then restart.

        Returns:
            ``{"dense1": {"grad_norm": g, "update_ratio": r, "dead_fraction":
            d}, ..., "dense<L>": {"grad_norm": g, "update_ratio": r}}`` as
            Python floats (JSON); ``{}`` when no step was taken.
        """
        if self.steps == 0:
            return {}
        xp = xp_of(self.grad_sum)
        layers = len(self.layers)
        values = to_numpy(
            xp.concatenate(
                [
                    self.grad_sum / self.steps,
                    self.ratio_sum / max(self.measured, 1),
                    dead_fractions(self.model, self.probe).astype(np.float64),
                ]
            )
        )  # (3L - 1,): the one read back of the epoch
        result: dict[str, dict[str, float]] = {}
        for i, layer in enumerate(self.layers):
            result[layer] = {
                "grad_norm": float(values[i]),
                "update_ratio": float(values[layers + i]),
            }
            if i < layers - 1:
                result[layer]["dead_fraction"] = float(values[2 * layers + i])
        self.grad_sum[...] = 0
        self.ratio_sum[...] = 0
        self.steps = self.measured = 0
        return result
