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
``to_inputs(pixels[batch])``            ``group_by_pixel``: the batch's
                                        compressed images, by pixel (sparse);
                                        ``gather_scale``: uint8 rows, / 255
                                        (dense)
``x @ w`` of the first layer            ``sparse_forward`` (sparse); matmul
                                        (dense)
``dense_forward`` + ``relu_forward``    matmul, then ``bias_relu``
``dense_forward`` of the logits         matmul, then ``bias_add``
``softmax_cross_entropy`` + accuracy    ``softmax_cross_entropy`` (+ last db)
``relu_backward`` + ``db`` of a layer   ``relu_backward_bias_grad``
``x.T @ dout`` of the first layer       ``sparse_weight_grad`` (sparse);
                                        matmul (dense)
``Adam.step``                           ``adam_keras`` / ``adam_algorithm1``
                                        over all parameters in one buffer
======================================  =====================================

Sparse or dense: the training images are compressed once (``compress``: the
positions and values of each image's non-zero pixels), and again whenever
``backprop.kernels.images_changed`` says they were rewritten (``--augment``
does, before each epoch). A batch whose share of non-zero pixels is at most
``dense_above`` (``sparse.DENSE_ABOVE``, measured) runs the first layer's
two products on the non-zeros; a denser one, or a first layer narrower than
``sparse.BLOCK``, gathers the dense batch for BLAS.

Threads: the sparse kernels run on all of Numba's threads; while they do,
BLAS (left with the small products of the layers above) is held to one
thread, so the two pools never compete for the cores. Measured on 2 cores:
see ``benchmarks/profile_step.py --threads``.

Python calls: a sparse step makes 11 calls into compiled Numba code (the row
check ``_batch_nonzeros`` three times, ``_group_by_pixel``, ``_sparse_forward``,
``_bias_relu``, ``_bias_add``, ``_softmax_cross_entropy``,
``_relu_backward_bias_grad``, ``_sparse_weight_grad``, ``_adam_*``), 3 BLAS
products (the second layer's) and 2 BLAS thread settings (about 0.7 us each,
through threadpoolctl's library handles), about 100 Python-level calls in all
counted with ``sys.setprofile`` (a dense step: 45), each a few tenths of a
microsecond: some 30 us of a step of 500 to 1,000 us on the 2-core machine of
lecture 9.

``tests/engine/test_fused_step.py`` and ``tests/engine/test_sparse.py`` check
that the two steps agree.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any

import numpy as np

from backprop.errors import ConfigError
from backprop.kernels import watch_images
from backprop.loop import StepResult
from backprop.model import MLP
from backprop.optim import Adam
from backprop.params import flat_buffer, is_view_of, shapes_of

Array = Any  # a numpy.ndarray (the fused kernels run on the CPU)

# BLAS threads while the sparse kernels run (the Numba kernels take the cores).
BLAS_THREADS_WITH_SPARSE = 1


@dataclasses.dataclass
class SparseBatch:
    """A batch as the sparse first layer reads it: row indices, and by pixel.

    Attributes:
        rows: int64 indices into the training images, (b,).
        groups: the batch's non-zeros grouped by pixel (``PixelGroups``).
    """

    rows: Array
    groups: Any

    def __len__(self) -> int:
        return len(self.rows)


class BlasThreads:
    """Sets the number of BLAS threads, cheaply (one C call per library).

    ``threadpoolctl``'s ``limit()`` context costs about 7 us; the libraries'
    own setters, reached through it once here, about 0.7 us each.
    """

    def __init__(self) -> None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # then BLAS keeps its threads
            self.libs: list = []
        else:
            blas = ThreadpoolController().select(user_api="blas")
            self.libs = list(blas.lib_controllers)
        self.default = [lib.num_threads for lib in self.libs]

    def set(self, n: int | None) -> None:
        """``n`` threads in every BLAS library; None restores their defaults."""
        for lib, default in zip(self.libs, self.default):
            lib.set_num_threads(default if n is None else n)


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
        dense_above: the density (share of non-zero pixels) above which a
            batch takes the dense products; None is ``sparse.DENSE_ABOVE``,
            0 always dense, 1 always sparse.

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
        dense_above: float | None = None,
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
        sparse_ok = widths[0] >= kernels.sparse.BLOCK  # a whole register block
        limit = kernels.sparse.DENSE_ABOVE if dense_above is None else dense_above
        self.dense_above = limit if sparse_ok else 0.0
        self.scale = kernels.scale_table(dtype)  # (256,), pixel value -> input
        self.sparse = None  # the compressed images (made here, before any clock)
        if self.dense_above > 0:
            self.sparse = kernels.compress(images)
        self.blas = BlasThreads()
        watch_images(images, self)

    def images_changed(self) -> None:
        """The training images were rewritten: compress them again when next used."""
        self.sparse = None

    def __call__(self, batch: Array) -> StepResult:
        """One step on the rows ``batch`` (b,) of the training set, b <= B.

        Returns:
            the batch's mean loss, its number of correct answers and the
            gradients (views of this step's reused buffer), from before the
            update.
        """
        x, y = self.gather(batch)
        if isinstance(x, SparseBatch):  # the cores to Numba, one to BLAS
            self.blas.set(BLAS_THREADS_WITH_SPARSE)
        try:
            logits = self.forward(x)
            loss, correct = self.loss(logits, y)
            self.backward(x)
            self.adam_step()
        finally:
            if isinstance(x, SparseBatch):
                self.blas.set(None)
        return StepResult(loss, correct, self.grads)

    def gather(self, batch: Array) -> tuple[Array | SparseBatch, Array]:
        """The batch's inputs and labels (b,).

        Returns:
            ``(x, y)``: x is a ``SparseBatch`` (the batch's non-zeros, grouped
            by pixel for the weight gradient) when the batch is sparse enough,
            else the dense inputs scaled into the reused buffer, (b, D).
        """
        k = self.k
        if self.dense_above > 0:
            if self.sparse is None:  # once, and after the images change
                self.sparse = k.compress(self.images)
            if k.batch_density(self.sparse, batch) <= self.dense_above:
                groups = k.group_by_pixel(self.sparse, batch, self.scale)
                return SparseBatch(batch, groups), self.labels[batch]
        x = k.gather_scale(self.images, batch, self.x)  # (b, D)
        return x, self.labels[batch]  # (b,)

    def forward(self, x: Array | SparseBatch) -> Array:
        """``model.forward`` into the buffers: ``out_i = relu(out_{i-1} w_i + b_i)``.

        Returns:
            the logits, (b, C), a view of the last buffer.
        """
        k, params, n, layers = self.k, self.model.params, len(x), self.model.num_layers
        h = x
        for i in range(1, layers + 1):
            out = self.outs[i - 1][:n]  # (b, H)
            if isinstance(h, SparseBatch):  # x @ w over the non-zero pixels
                w = params["dense1.w"]
                k.sparse_forward(self.sparse, h.rows, self.scale, w, out)
            else:
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

    def backward(self, x: Array | SparseBatch) -> None:
        """``model.backward`` into ``grads``, from the logits down to layer 1."""
        k, params, grads = self.k, self.model.params, self.grads
        n, layers = len(x), self.model.num_layers
        for i in range(layers, 0, -1):
            dout = self.douts[i - 1][:n]  # (b, H), gradient of layer i's output
            if i < layers:  # through the ReLU, and the bias gradient with it
                out = self.outs[i - 1][:n]
                k.relu_backward_bias_grad(dout, out, grads[f"dense{i}.b"])
            h_in = x if i == 1 else self.outs[i - 2][:n]  # (b, D), layer i's input
            if isinstance(h_in, SparseBatch):  # x.T @ dout over the non-zeros
                k.sparse_weight_grad(h_in.groups, dout, grads["dense1.w"])  # (D, H)
            else:
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
