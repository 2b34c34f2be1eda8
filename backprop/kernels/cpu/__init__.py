"""Fused CPU kernels, written one element at a time and compiled by Numba.

Each public function is a thin Python wrapper that casts Python-float scalars
to the arrays' dtype (``dt = p.dtype.type``) and calls a compiled kernel
(``_name``). Passing scalars in the arrays' dtype matters twice: a float64
scalar meeting float32 data makes Numba compute in float64 (the Adam kernel
ran 3.5x slower so), and that would round differently from NumPy, which casts
a Python float to the array's dtype (NumPy 2's weak-scalar rule).

Every kernel names the reference function it replaces and is tested against it
in ``tests/engine/test_kernels.py``, bit for bit where the operations are the same
(everything but ``exp``/``log``, which come from a different library here).
The kernels are compiled with ``error_model="numpy"`` (a division by zero gives
inf or NaN, as in NumPy) and without fastmath, which would reorder and fuse
operations and change results.

Arrays are expected C-contiguous (a view ``buf[:b]`` of the leading rows of a
bigger buffer is), float32 or float64, every float argument of one call in the
same dtype; integer arrays are int64. Shapes: N batch size, D inputs, H units
of a layer, C classes, P parameter values. ``pool`` fuses a convolution's ReLU
and max-pooling (the CNN's step). ``sparse`` holds the first layer's
products on the non-zero pixels (and its ``BLOCK`` and ``DENSE_ABOVE``).
"""

from backprop.kernels.cpu.adam import adam_algorithm1, adam_keras
from backprop.kernels.cpu.augment import distort
from backprop.kernels.cpu.layers import (
    bias_add,
    bias_relu,
    gather_scale,
    relu_backward_bias_grad,
)
from backprop.kernels.cpu.loss import softmax_cross_entropy
from backprop.kernels.cpu.pool import relu_maxpool_backward, relu_maxpool_forward
from backprop.kernels.cpu.sparse import (
    PixelGroups,
    SparseImages,
    batch_density,
    compress,
    decompress,
    group_by_pixel,
    scale_table,
    sparse_forward,
    sparse_weight_grad,
)

__all__ = [
    "PixelGroups",
    "SparseImages",
    "adam_algorithm1",
    "batch_density",
    "compress",
    "decompress",
    "group_by_pixel",
    "scale_table",
    "sparse_forward",
    "sparse_weight_grad",
    "adam_keras",
    "bias_add",
    "bias_relu",
    "distort",
    "gather_scale",
    "relu_backward_bias_grad",
    "relu_maxpool_backward",
    "relu_maxpool_forward",
    "softmax_cross_entropy",
]
