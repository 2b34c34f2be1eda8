"""One CNN training step with ReLU and max-pooling fused: the CNN's fast twin.

The reference step (``backprop.loop.ReferenceStep``) runs ``CNN.loss_and_grads``,
whose layers after each convolution are ``relu_forward`` then
``maxpool_forward`` (and backward ``maxpool_backward`` then ``relu_backward``):
four passes over the largest arrays of the network that do no arithmetic, each
allocating its result. ``FusedCNNStep`` runs the same layers in the same
order, but where a convolution is followed by a pool, the ReLU and the pool
are one pass of ``relu_maxpool_forward`` (and one of
``relu_maxpool_backward``), from the backend module
(``backprop.kernels.cpu``). The convolutions, the dense layers, the loss and
Adam are the reference's functions, so the step's results equal the
reference step's bit for bit where the pools' windows do not overlap (LeNet-5's
2x2 windows with stride 2 do not; see ``backprop.kernels.cpu.pool``).
``tests/engine/test_fused_cnn_step.py`` checks both on several networks;
``benchmarks/cnn_epoch.py`` times them.
"""

from __future__ import annotations

import types

from backprop.cnn import CNN
from backprop.conv import (
    conv2d_backward,
    conv2d_forward,
    maxpool_backward,
    maxpool_forward,
)
from backprop.data import to_inputs
from backprop.layers import dense_backward, dense_forward, relu_backward, relu_forward
from backprop.loop import Array, StepResult
from backprop.losses import softmax_cross_entropy
from backprop.optim import Adam


def forward(model: CNN, x: Array, k: types.ModuleType) -> tuple[Array, list[tuple]]:
    """``CNN.forward`` with each convolution's ReLU and pool fused.

    Args:
        model: the CNN.
        x: inputs, (N, H*W*C) rows or (N, H, W, C) images.
        k: the kernels' backend module.

    Returns:
        logits (N, classes), and one cache per layer run (a fused pair is one).
    """
    out = x.reshape(len(x), *model.input_shape)  # (N, H, W, C)
    caches: list[tuple] = []
    layers = model.layers
    index, counts = 0, {"conv": 0, "dense": 0}
    while index < len(layers):
        kind = layers[index][0]
        if kind == "pool":  # a pool first, or after another pool
            out, cache = maxpool_forward(out, layers[index][1], layers[index][2])
            caches.append(("pool", cache))
            index += 1
            continue
        counts[kind] += 1
        w = model.params[f"{kind}{counts[kind]}.w"]
        b = model.params[f"{kind}{counts[kind]}.b"]
        if kind == "conv":
            layer = layers[index]
            z, cache = conv2d_forward(out, w, b, layer[4], layer[3])  # (N, H, W, F)
            after = layers[index + 1] if index + 1 < len(layers) else None
            if after is not None and after[0] == "pool":
                pool, stride = after[1], after[2]
                out, pool_cache = k.relu_maxpool_forward(z, pool, stride)  # (N,H',W',F)
                caches.append(("conv+pool", cache, pool_cache))
                index += 2
                continue
            out, relu_cache = relu_forward(z)  # (N, H, W, F)
            caches.append(("conv", cache, relu_cache))
            index += 1
            continue
        image_shape = out.shape if out.ndim == 4 else None
        out, cache = dense_forward(out.reshape(len(out), -1), w, b)  # (N, H)
        relu_cache = None
        if index < len(layers) - 1:
            out, relu_cache = relu_forward(out)  # (N, H)
        caches.append(("dense", cache, relu_cache, image_shape))
        index += 1
    return out, caches


def backward(
    model: CNN, dlogits: Array, caches: list[tuple], k: types.ModuleType
) -> dict[str, Array]:
    """``CNN.backward`` for the caches of ``forward`` above.

    Args:
        model: the CNN.
        dlogits: gradient of the loss with respect to the logits, (N, classes).
        caches: from ``forward``.
        k: the kernels' backend module.

    Returns:
        grads: same keys and shapes as ``model.params``.
    """
    grads: dict[str, Array] = {}
    counts = {
        kind: sum(layer[0] == kind for layer in model.layers)
        for kind in ("conv", "dense")
    }
    dout = dlogits
    for position in range(len(caches) - 1, -1, -1):
        kind = caches[position][0]
        if kind == "pool":
            dout = maxpool_backward(dout, caches[position][1])  # (N, H, W, C)
            continue
        if kind == "conv+pool":
            dout = k.relu_maxpool_backward(dout, caches[position][2])  # (N,H,W,F)
            kind = "conv"
        elif caches[position][2] is not None:
            dout = relu_backward(dout, caches[position][2])  # like the output
        name = f"{kind}{counts[kind]}"
        counts[kind] -= 1
        layer_backward = conv2d_backward if kind == "conv" else dense_backward
        dout, grads[f"{name}.w"], grads[f"{name}.b"] = layer_backward(
            dout, caches[position][1], input_grad=position > 0
        )
        if kind == "dense" and position > 0 and caches[position][3] is not None:
            dout = dout.reshape(caches[position][3])  # (N, H, W, C)
    return {name: grads[name] for name in model.params}


class FusedCNNStep:
    """The CNN's training step with ReLU and pooling fused (see the module).

    Args:
        model: updated in place.
        opt: the optimizer.
        pixels: all training images as uint8 pixels, (N, D).
        labels: their integer labels, (N,).
        kernels: the backend module (``backprop.kernels.kernels_for``).
    """

    def __init__(
        self,
        model: CNN,
        opt: Adam,
        pixels: Array,
        labels: Array,
        kernels: types.ModuleType,
    ) -> None:
        self.model, self.opt, self.k = model, opt, kernels
        self.pixels, self.labels = pixels, labels

    def __call__(self, batch: Array) -> StepResult:
        """One forward and backward pass and one Adam step on rows ``batch``.

        Args:
            batch: row indices, (B,).

        Returns:
            the batch's mean loss, its number of correct answers and the
            gradients, all from before the update.
        """
        model = self.model
        xb = to_inputs(self.pixels[batch], model.dtype)  # (B, D) in [0, 1]
        yb = self.labels[batch]  # (B,)
        logits, caches = forward(model, xb, self.k)  # (B, classes)
        loss, dlogits = softmax_cross_entropy(logits, yb)  # (), (B, classes)
        grads = backward(model, dlogits, caches, self.k)
        self.opt.step(model.params, grads)
        return StepResult(loss, (logits.argmax(axis=1) == yb).sum(), grads)
