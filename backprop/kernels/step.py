"""One training step with the fused kernels: the fast twin of the reference step.

The reference step (``backprop.loop.ReferenceStep``) is::

    xb, yb = to_inputs(pixels[batch]), labels[batch]
    loss, grads = model.loss_and_grads(xb, yb)   # forward, loss, backward
    opt.step(model.params, grads)                # Adam, parameter by parameter

``FusedStep`` does the same arithmetic in the same order, but the matrix
products write into buffers allocated once (BLAS, ``matmul(..., out=)``), and
everything between them is one pass of a hand-written kernel:

======================================  =====================================
reference                               fused kernel
======================================  =====================================
``to_inputs(pixels[batch])``            ``gather_scale``: uint8 rows, / 255
``dense_forward`` + ``relu_forward``    matmul, then ``bias_relu``
``dense_forward`` of the logits         matmul, then ``bias_add``
``softmax_cross_entropy`` + accuracy    ``softmax_cross_entropy`` (+ last db)
``relu_backward`` + ``db`` of a layer   ``relu_backward_bias_grad``
``Adam.step``                           ``adam_keras`` / ``adam_algorithm1``
                                        over all parameters in one buffer
======================================  =====================================

``tests/engine/test_fused_step.py`` checks that the two steps agree.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from backprop.errors import ConfigError
from backprop.loop import StepResult
from backprop.model import MLP
from backprop.optim import Adam
from backprop.params import flat_buffer, is_view_of, shapes_of

Array = Any  # a numpy.ndarray (the fused kernels run on the CPU)


class FusedStep:
    """``model.loss_and_grads`` then ``opt.step``, for one batch, fused.

    Args:
        model: updated in place; its parameters must be the views into
            ``model.flat`` that ``MLP`` made.
        opt: the optimizer (``Adam``, either convention).
        images: the training images as uint8 pixels, (N, D).
        labels: their integer labels, (N,).
        batch_size: the largest batch, B; buffers hold B rows.
        kernels: the kernel module (``backprop.kernels.cpu``).

    Raises:
        ConfigError: the model's parameters are not views of its buffer, or
            the images are not uint8.
    """

    def __init__(
        self,
        model: MLP,
        opt: Adam,
        images: Array,
        labels: Array,
        batch_size: int,
        kernels: types.ModuleType,
    ) -> None:
        if not is_view_of(model.params, model.flat, np):
            raise ConfigError(
                "the fused kernels update model.flat, but a parameter was replaced "
                "by another array; write into params[name][...] instead"
            )
        if images.dtype != np.uint8:
            raise ConfigError(
                f"the fused step gathers uint8 images, not {images.dtype}"
            )
        dtype = model.dtype
        self.model, self.opt, self.k = model, opt, kernels
        self.images, self.labels = images, labels
        widths = model.sizes[1:]
        self.x = np.empty((batch_size, model.sizes[0]), dtype)  # (B, D), the batch
        # outs[i]: output of layer i + 1 (after its ReLU); the last is the logits
        self.outs = [np.empty((batch_size, h), dtype) for h in widths]  # (B, H)
        # douts[i]: gradient of the loss with respect to outs[i]
        self.douts = [np.empty((batch_size, h), dtype) for h in widths]  # (B, H)
        # the gradients, named like the parameters, in one buffer for Adam
        self.grad_flat, self.grads = flat_buffer(shapes_of(model.params), dtype, np)

    def __call__(self, batch: Array) -> StepResult:
        """One step on the rows ``batch`` (b,) of the training set, b <= B.

        Returns:
            the batch's mean loss, its number of correct answers and the
            gradients (views of this step's reused buffer), from before the
            update.
        """
        x, y = self.gather(batch)
        logits = self.forward(x)
        loss, correct = self.loss(logits, y)
        self.backward(x)
        self.adam_step()
        return StepResult(loss, correct, self.grads)

    def gather(self, batch: Array) -> tuple[Array, Array]:
        """The batch's inputs, scaled into the reused buffer, and its labels."""
        x = self.k.gather_scale(self.images, batch, self.x)  # (b, D)
        return x, self.labels[batch]  # (b,)

    def forward(self, x: Array) -> Array:
        """``model.forward`` into the buffers: ``out_i = relu(out_{i-1} w_i + b_i)``.

        Returns:
            the logits, (b, C), a view of the last buffer.
        """
        k, params, n, layers = self.k, self.model.params, len(x), self.model.num_layers
        h = x
        for i in range(1, layers + 1):
            out = self.outs[i - 1][:n]  # (b, H)
            np.matmul(h, params[f"dense{i}.w"], out=out)
            if i < layers:
                k.bias_relu(out, params[f"dense{i}.b"])
            else:
                k.bias_add(out, params[f"dense{i}.b"])  # the logits
            h = out
        return h

    def loss(self, logits: Array, y: Array) -> tuple[float, int]:
        """Loss, correct count, dL/dlogits and the last layer's bias gradient."""
        last = self.model.num_layers
        dlogits = self.douts[-1][: len(y)]  # (b, C)
        return self.k.softmax_cross_entropy(
            logits, y, dlogits, self.grads[f"dense{last}.b"]
        )

    def backward(self, x: Array) -> None:
        """``model.backward`` into ``grads``, from the logits down to layer 1."""
        k, params, grads = self.k, self.model.params, self.grads
        n, layers = len(x), self.model.num_layers
        for i in range(layers, 0, -1):
            dout = self.douts[i - 1][:n]  # (b, H), gradient of layer i's output
            if i < layers:  # through the ReLU, and the bias gradient with it
                out = self.outs[i - 1][:n]
                k.relu_backward_bias_grad(dout, out, grads[f"dense{i}.b"])
            h_in = x if i == 1 else self.outs[i - 2][:n]  # (b, D), layer i's input
            np.matmul(h_in.T, dout, out=grads[f"dense{i}.w"])  # (D, H)
            if i > 1:  # the first layer needs no gradient of the data
                np.matmul(dout, params[f"dense{i}.w"].T, out=self.douts[i - 2][:n])

    def adam_step(self) -> None:
        """``opt.step(model.params, grads)`` as one kernel over the flat buffers."""
        opt, k = self.opt, self.k
        t = opt.advance(self.model.params)
        b1, b2 = opt.beta1, opt.beta2
        buffers = (self.model.flat, self.grad_flat, opt.m_flat, opt.v_flat)
        if opt.mode == "keras":
            k.adam_keras(*buffers, 1 - b1, 1 - b2, opt.keras_step_size(), opt.eps)
        else:
            k.adam_algorithm1(
                *buffers, 1 - b1, 1 - b2, opt.lr, opt.eps, 1 - b1**t, 1 - b2**t
            )
