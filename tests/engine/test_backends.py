"""NumPy and CuPy run the same engine: forward pass, gradients and 50 Adam steps agree.

Each comparison runs the paper's model (784-128-10, paper init, seed 0) on the
backend under test and on NumPy, from the same host-drawn weights, on the first
1,600 images of the bundled MNIST test set: the forward pass and gradients of one
batch of 32, then 50 Adam steps (lr 1e-3, batches of 32).

Differences are measured normwise, ``max|a - b| / max|b|`` over a whole array, so
that entries near zero (a pixel that is almost never lit) do not dominate.

Why the backends differ at all, and the tolerances
    cuBLAS and OpenBLAS add the terms of a matrix product in different orders,
    and the GPU's exp and log round differently (by an ulp or two). Each such
    difference is of the order of the dtype's epsilon (2.2e-16 in float64,
    1.2e-7 in float32), and 50 Adam steps carry it forward. Adam divides by
    sqrt(v) + eps, so where a gradient is nearly zero (mostly rounding), a tiny
    difference in it becomes a visible difference in the step; with
    ``algorithm1``'s smaller epsilon (1e-8, on the corrected sqrt(v)) the effect is
    larger. ``test_tolerances_cover_a_different_summation_order`` plays the part
    of another BLAS on the CPU: it reorders the sums of every dense layer with a
    fixed permutation. On a 2-core CPU this moved float32 logits and gradients by
    at most 3e-7, and parameters after 50 steps by 9e-7 (keras) and 2e-5
    (algorithm1); float64 differences stayed below 2e-14. The tolerances below
    leave a margin of 10 or more over those numbers, while a real fault (a step
    skipped, a gradient lost, data on the wrong device) moves these arrays by
    1e-2 or more.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import backprop.model as model_module
from backprop.data import BUNDLED_MNIST, load_split
from backprop.device import gpu_status, to_numpy, xp_of
from backprop.model import MLP
from backprop.optim import Adam

SIZES = [784, 128, 10]
BATCH = 32
STEPS = 50

# normwise tolerances: (forward, loss and gradients; parameters after 50 steps)
TOLERANCES = {
    ("float64", "keras"): (1e-10, 1e-10),
    ("float64", "algorithm1"): (1e-10, 1e-10),
    ("float32", "keras"): (1e-5, 1e-5),
    ("float32", "algorithm1"): (1e-5, 2e-4),
}
CASES = [pytest.param(*key, id="-".join(key)) for key in TOLERANCES]


@functools.lru_cache(maxsize=1)
def mnist_slice():
    images, labels = load_split(BUNDLED_MNIST, "test")
    n = BATCH * STEPS
    return images[:n].reshape(n, -1) / 255.0, labels[:n].astype(np.int64)


def engine_run(xp, dtype, mode):
    """Everything the comparison looks at, as host arrays keyed by name."""
    images, labels = mnist_slice()
    device = "cpu" if xp is np else "gpu"
    model = MLP(SIZES, seed=0, dtype=dtype, device=device)
    x = xp.asarray(images.astype(dtype))  # (1600, 784)
    y = xp.asarray(labels)  # (1600,)
    logits, _ = model.forward(x[:BATCH])  # (32, 10)
    loss, grads = model.loss_and_grads(x[:BATCH], y[:BATCH])
    result = {"batch logits": to_numpy(logits), "batch loss": to_numpy(loss)}
    result.update({f"batch grad {k}": to_numpy(g) for k, g in grads.items()})
    opt = Adam(lr=1e-3, mode=mode)
    losses = []
    for step in range(STEPS):
        rows = slice(step * BATCH, (step + 1) * BATCH)
        loss, grads = model.loss_and_grads(x[rows], y[rows])
        opt.step(model.params, grads)
        losses.append(to_numpy(loss))
    result["trained losses"] = np.stack(losses)  # (50,)
    result.update({f"trained {k}": to_numpy(p) for k, p in model.params.items()})
    return result


@functools.cache
def numpy_run(dtype, mode):
    return engine_run(np, dtype, mode)


def normwise(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def differences(run, reference, prefix):
    return {
        name: normwise(run[name], reference[name])
        for name in reference
        if name.startswith(prefix)
    }


def assert_within(diffs, tolerance):
    too_far = {k: v for k, v in diffs.items() if not v <= tolerance}
    assert not too_far, f"normwise differences above {tolerance:.0e}: {too_far}"


GPU_UNAVAILABLE = gpu_status()
needs_gpu = pytest.mark.skipif(
    GPU_UNAVAILABLE is not None, reason=f"no GPU: {GPU_UNAVAILABLE}"
)


def cupy_module():
    import cupy

    return cupy


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_forward_and_gradients_agree(dtype):
    xp = cupy_module()
    run, reference = engine_run(xp, dtype, "keras"), numpy_run(dtype, "keras")
    assert_within(differences(run, reference, "batch "), TOLERANCES[dtype, "keras"][0])


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype,mode", CASES)
def test_fifty_adam_steps_agree(dtype, mode):
    xp = cupy_module()
    run, reference = engine_run(xp, dtype, mode), numpy_run(dtype, mode)
    first, trained = TOLERANCES[dtype, mode]
    assert_within(differences(run, reference, "trained losses"), first)
    assert_within(differences(run, reference, "trained dense"), trained)
    # and training did something: the parameters moved well beyond the tolerance
    start = MLP(SIZES, seed=0, dtype=dtype).params["dense2.w"]
    assert normwise(run["trained dense2.w"], start) > 100 * trained


def test_results_stay_on_the_backend(xp):
    images, labels = mnist_slice()
    model = MLP(SIZES, seed=0, dtype="float32", device="cpu" if xp is np else "gpu")
    x, y = xp.asarray(images[:8].astype("float32")), xp.asarray(labels[:8])
    logits, _ = model.forward(x)
    loss, grads = model.loss_and_grads(x, y)
    Adam().step(model.params, grads)
    for array in (logits, loss, *grads.values(), *model.params.values()):
        assert xp_of(array) is xp
        assert array.dtype == np.float32


# --- the tolerances themselves, exercised on the CPU --------------------------


def reordered_dense_forward(x, w, b):
    order = np.random.default_rng(1).permutation(x.shape[1])  # (D,)
    return x[:, order] @ w[order, :] + b, (x, w)


def reordered_dense_backward(dout, cache, *, input_grad=True):
    x, w = cache
    rows = np.random.default_rng(2).permutation(x.shape[0])  # (N,)
    cols = np.random.default_rng(3).permutation(dout.shape[1])  # (H,)
    dw = x.T[:, rows] @ dout[rows, :]  # (D, H)
    db = dout[rows].sum(axis=0)  # (H,)
    dx = dout[:, cols] @ w.T[cols, :] if input_grad else None  # (N, D)
    return dx, dw, db


@pytest.mark.parametrize(
    "dtype,mode",
    [("float64", "keras"), ("float32", "keras"), ("float32", "algorithm1")],
)
def test_tolerances_cover_a_different_summation_order(dtype, mode, monkeypatch):
    reference = numpy_run(dtype, mode)
    with monkeypatch.context() as patch:
        patch.setattr(model_module, "dense_forward", reordered_dense_forward)
        patch.setattr(model_module, "dense_backward", reordered_dense_backward)
        run = engine_run(np, dtype, mode)
    first, trained = TOLERANCES[dtype, mode]
    one_batch = differences(run, reference, "batch ")
    after = differences(run, reference, "trained dense")
    one_batch.update(differences(run, reference, "trained losses"))
    assert_within(one_batch, first)
    assert_within(after, trained)
    # the reordering did change the rounding, so the check above is not vacuous
    assert max(one_batch.values()) > 0 and max(after.values()) > 0
