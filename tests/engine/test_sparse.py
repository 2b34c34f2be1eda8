"""The sparse first layer against the dense products it replaces.

``backprop.kernels.cpu.sparse`` computes ``x @ w`` and ``x.T @ dz`` of the
first layer from the non-zero pixels only, with fused multiply-adds in pixel
(or row) order; NumPy's BLAS sums all terms in its own order. Both are within
``gamma_k sum |x w|`` of the exact sum for k non-zero terms (a zero term adds
an exact zero), so they differ by at most ``2 k eps sum |x| |w|`` (eps the
dtype's machine epsilon): that is the bound asserted here, per element.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba", reason="the sparse kernels need Numba")

import numba  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from backprop.app.augment import Augmentation, EpochAugmenter  # noqa: E402
from backprop.data import load_pixels, to_inputs  # noqa: E402
from backprop.kernels import images_changed, kernels_for, warm_up  # noqa: E402
from backprop.kernels.step import FusedStep, SparseBatch  # noqa: E402
from backprop.loop import ReferenceStep  # noqa: E402
from backprop.model import MLP  # noqa: E402
from backprop.optim import Adam  # noqa: E402

CPU = kernels_for(np)
BLOCK = CPU.sparse.BLOCK
# hidden widths: below, at and past a register block, and with a tail
WIDTHS = [1, 3, 17, BLOCK, BLOCK + 5, 2 * BLOCK]


def images_of(rng, n, d, density):
    """uint8 (n, d) with about ``density`` non-zero pixels; row 0 is empty."""
    keep = rng.random((n, d)) < density
    images = (keep * rng.integers(1, 256, (n, d))).astype(np.uint8)  # (n, d)
    images[0] = 0
    return images


def within_bound(got, want, k, magnitude, dtype):
    """|got - want| <= 2 k eps |x||w| elementwise (k: terms per element)."""
    eps = np.finfo(dtype).eps
    bound = 2 * np.maximum(k, 1) * eps * magnitude
    return np.all(np.abs(got - want) <= bound)


shapes = st.fixed_dictionaries(
    {
        "n": st.integers(1, 12),
        "b": st.integers(1, 9),
        "d": st.integers(1, 40),
        "h": st.sampled_from(WIDTHS),
        "density": st.sampled_from([0.0, 0.05, 0.2, 0.6, 1.0]),
        "dtype": st.sampled_from(["float32", "float64"]),
        "seed": st.integers(0, 2**16),
    }
)


@settings(max_examples=60, deadline=None)
@given(shapes)
def test_compress_round_trips(s):
    rng = np.random.default_rng(s["seed"])
    images = images_of(rng, s["n"], s["d"], s["density"])
    sparse = CPU.compress(images)
    np.testing.assert_array_equal(CPU.decompress(sparse), images)
    assert sparse.indptr[-1] == np.count_nonzero(images)
    for r in range(s["n"]):  # positions ascending within each image
        row = sparse.indices[sparse.indptr[r] : sparse.indptr[r + 1]]
        assert np.all(np.diff(row.astype(np.int64)) > 0)


@settings(max_examples=80, deadline=None)
@given(shapes)
def test_sparse_forward_is_the_dense_product(s):
    rng = np.random.default_rng(s["seed"])
    dt = np.dtype(s["dtype"])
    images = images_of(rng, s["n"], s["d"], s["density"])
    rows = rng.integers(0, s["n"], s["b"]).astype(np.int64)  # (b,), repeats too
    rows[0] = 0  # an empty image
    w = rng.standard_normal((s["d"], s["h"])).astype(dt)  # (D, H)
    out = np.full((s["b"] + 2, s["h"]), np.nan, dt)  # a bigger buffer
    got = CPU.sparse_forward(CPU.compress(images), rows, CPU.scale_table(dt), w, out)
    x = to_inputs(images, s["dtype"])[rows]  # (b, D), the reference's batch
    want = x @ w  # (b, H)
    k = np.count_nonzero(x, axis=1)[:, None]  # (b, 1) terms per row
    assert got.shape == want.shape
    assert within_bound(got, want, k, np.abs(x) @ np.abs(w), dt)
    assert np.all(got[0] == 0)  # the empty image gives exact zeros
    assert np.isnan(out[s["b"] :]).all()  # rows past the batch untouched


@settings(max_examples=80, deadline=None)
@given(shapes)
def test_sparse_weight_grad_is_the_dense_product(s):
    rng = np.random.default_rng(s["seed"])
    dt = np.dtype(s["dtype"])
    images = images_of(rng, s["n"], s["d"], s["density"])
    rows = rng.integers(0, s["n"], s["b"]).astype(np.int64)  # (b,)
    dz = rng.standard_normal((s["b"], s["h"])).astype(dt)  # (b, H)
    dw = np.full((s["d"], s["h"]), np.nan, dt)  # (D, H)
    sparse = CPU.compress(images)
    groups = CPU.group_by_pixel(sparse, rows, CPU.scale_table(dt))
    CPU.sparse_weight_grad(groups, dz, dw)
    x = to_inputs(images, s["dtype"])[rows]  # (b, D)
    want = x.T @ dz  # (D, H)
    k = np.count_nonzero(x, axis=0)[:, None]  # (D, 1) terms per pixel
    assert within_bound(dw, want, k, np.abs(x).T @ np.abs(dz), dt)
    unused = ~x.any(axis=0)  # pixels zero in the whole batch: exact zero rows
    assert np.all(dw[unused] == 0)


def test_the_short_last_batch_and_batch_1_reuse_the_buffers():
    rng = np.random.default_rng(3)
    images = images_of(rng, 50, 30, 0.2)
    sparse, scale = CPU.compress(images), CPU.scale_table(np.float32)
    w = rng.standard_normal((30, BLOCK)).astype(np.float32)  # (D, H)
    out = np.empty((16, BLOCK), np.float32)  # (B, H)
    x = to_inputs(images, "float32")  # (N, D)
    for rows in (np.arange(16), np.arange(16, 23), np.array([40])):
        got = CPU.sparse_forward(sparse, rows, scale, w, out)
        k = np.count_nonzero(x[rows], axis=1)[:, None]
        assert within_bound(got, x[rows] @ w, k, x[rows] @ np.abs(w), np.float32)


def test_augmented_batches_match_the_dense_products():
    (pixels, _), _ = load_pixels("mnist")
    pixels = np.array(pixels[:512])
    images = np.empty_like(pixels)
    EpochAugmenter(pixels, images, Augmentation(), entropy=9, kernels="fused").fill(3)
    rng = np.random.default_rng(2)
    rows = rng.permutation(512)[:200].astype(np.int64)
    for dt in (np.float32, np.float64):
        scale = CPU.scale_table(dt)
        w = rng.standard_normal((784, 128)).astype(dt)  # (D, H)
        dz = rng.standard_normal((200, 128)).astype(dt)  # (b, H)
        sparse = CPU.compress(images)
        out = CPU.sparse_forward(sparse, rows, scale, w, np.empty((200, 128), dt))
        groups = CPU.group_by_pixel(sparse, rows, scale)
        dw = CPU.sparse_weight_grad(groups, dz, np.empty((784, 128), dt))
        x = to_inputs(images, np.dtype(dt).name)[rows]  # (b, D)
        k_rows = np.count_nonzero(x, axis=1)[:, None]
        k_cols = np.count_nonzero(x, axis=0)[:, None]
        assert within_bound(out, x @ w, k_rows, x @ np.abs(w), dt)
        assert within_bound(dw, x.T @ dz, k_cols, x.T @ np.abs(dz), dt)


def test_threads_do_not_change_a_bit():
    (pixels, _), _ = load_pixels("mnist")
    rng = np.random.default_rng(0)
    rows = rng.permutation(2000)[:256].astype(np.int64)
    sparse, scale = CPU.compress(pixels[:2000]), CPU.scale_table(np.float32)
    w = rng.standard_normal((784, 128)).astype(np.float32)
    dz = rng.standard_normal((256, 128)).astype(np.float32)
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            out = CPU.sparse_forward(sparse, rows, scale, w, np.empty((256, 128)))
            groups = CPU.group_by_pixel(sparse, rows, scale)
            dw = CPU.sparse_weight_grad(groups, dz, np.empty((784, 128), np.float32))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        results.append((out.copy(), dw.copy()))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_bad_rows_and_shapes_are_refused():
    images = images_of(np.random.default_rng(0), 5, 6, 0.5)
    sparse, scale = CPU.compress(images), CPU.scale_table(np.float32)
    w = np.ones((6, 4), np.float32)
    with pytest.raises(IndexError, match="out of range"):
        CPU.sparse_forward(sparse, np.array([0, 5]), scale, w, np.empty((2, 4)))
    with pytest.raises(IndexError, match="out of range"):
        CPU.group_by_pixel(sparse, np.array([-1]), scale)
    with pytest.raises(ValueError, match="shapes do not match"):
        CPU.sparse_forward(sparse, np.array([0]), scale, np.ones((7, 4)), w)
    groups = CPU.group_by_pixel(sparse, np.array([0, 1]), scale)
    with pytest.raises(ValueError, match="shapes do not match"):
        CPU.sparse_weight_grad(groups, np.ones((3, 4), np.float32), w)
    with pytest.raises(ValueError, match="uint8"):
        CPU.compress(images.astype(np.float32))


@pytest.mark.slow  # compiles the sparse kernels afresh to read their assembly
def test_the_kernels_fuse_multiply_adds_in_vector_registers(tmp_path):
    # A cold cache, so that Numba compiles here and shows the assembly.
    code = (
        "import numpy as np, re\n"
        "from backprop.kernels.cpu import sparse as S\n"
        "im = np.zeros((3, 300), np.uint8); im[:, ::7] = 9\n"
        "sp, sc = S.compress(im), S.scale_table(np.float32)\n"
        "rows = np.arange(3)\n"
        "w = np.ones((300, S.BLOCK), np.float32)\n"
        "S.sparse_forward(sp, rows, sc, w, np.empty((3, S.BLOCK), np.float32))\n"
        "g = S.group_by_pixel(sp, rows, sc)\n"
        "S.sparse_weight_grad(g, np.ones((3, S.BLOCK), np.float32), w)\n"
        "for k in (S._sparse_forward, S._sparse_weight_grad):\n"
        "    asm = k.inspect_asm(k.signatures[0])\n"
        "    print(len(re.findall(r'vfmadd\\w+\\s+[^\\n]*%[yz]mm', asm)))\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    counts = [int(line) for line in done.stdout.split()]
    assert len(counts) == 2 and min(counts) > 0, counts


def mnist_twins(n=3000, dtype="float32", seed=0):
    (pixels, labels), _ = load_pixels("mnist")
    pixels, labels = np.array(pixels[:n]), labels[:n]
    model = MLP([784, 128, 10], seed=seed, dtype=dtype)
    return pixels, labels, model, MLP.from_params(model.params)


def max_rel(a, b):
    scale = np.maximum(np.abs(a), np.abs(b)).max()
    return float(np.abs(a - b).max() / scale) if scale else 0.0


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("rows", [1, 37, 256])
def test_the_sparse_step_matches_the_reference_step(dtype, tol, rows):
    pixels, labels, ref_model, fused_model = mnist_twins(dtype=dtype)
    ref_opt, fused_opt = Adam(), Adam()
    ref = ReferenceStep(ref_model, ref_opt, pixels, labels)
    fused = FusedStep(fused_model, fused_opt, pixels, labels, 256, CPU)
    batch = np.random.default_rng(1).permutation(len(pixels))[:rows]
    assert isinstance(fused.gather(batch)[0], SparseBatch)  # MNIST is sparse
    for _ in range(3):
        ref_loss, ref_correct, _ = ref(batch)
        fused_loss, fused_correct, _ = fused(batch)
        assert fused_loss == pytest.approx(float(ref_loss), rel=tol)
        assert fused_correct == int(ref_correct)
    for name in ref_model.params:
        assert max_rel(fused_model.params[name], ref_model.params[name]) <= tol, name


def test_sparse_and_dense_paths_agree_and_the_threshold_chooses():
    pixels, labels, model, twin = mnist_twins(n=1000, dtype="float64")
    sparse = FusedStep(model, Adam(), pixels, labels, 128, CPU, dense_above=1.0)
    dense = FusedStep(twin, Adam(), pixels, labels, 128, CPU, dense_above=0.0)
    batch = np.arange(100, 228)
    assert isinstance(sparse.gather(batch)[0], SparseBatch)
    assert isinstance(dense.gather(batch)[0], np.ndarray)
    for _ in range(2):
        (sparse_loss, sparse_correct, _), (dense_loss, dense_correct, _) = (
            sparse(batch),
            dense(batch),
        )
        assert sparse_loss == pytest.approx(dense_loss, rel=1e-12)
        assert sparse_correct == dense_correct
    for name in model.params:
        assert max_rel(model.params[name], twin.params[name]) <= 1e-12, name
    density = CPU.batch_density(CPU.compress(pixels), batch)  # MNIST: about 0.19
    below = FusedStep(model, Adam(), pixels, labels, 128, CPU, dense_above=density)
    above = FusedStep(model, Adam(), pixels, labels, 128, CPU, dense_above=density / 2)
    assert isinstance(below.gather(batch)[0], SparseBatch)
    assert isinstance(above.gather(batch)[0], np.ndarray)


def test_rewritten_images_are_compressed_again():
    pixels, labels, ref_model, fused_model = mnist_twins(n=600, dtype="float64")
    images = pixels.copy()
    # dense_above=1: the sparse path even for distorted images (about 45% non-zero)
    fused = FusedStep(fused_model, Adam(), images, labels, 100, CPU, dense_above=1)
    batch = np.arange(100)
    fused(batch)  # compresses the images as they are now
    aug = EpochAugmenter(pixels, images, Augmentation(), entropy=5, kernels="fused")
    aug.fill(1)  # writes distorted images into ``images`` and says so
    assert not np.array_equal(images, pixels)
    x_new = to_inputs(images, "float64")
    for name in ref_model.params:  # the weights after the first step
        ref_model.params[name][...] = fused_model.params[name]
    _, grads = ref_model.loss_and_grads(x_new[batch], labels[batch])
    x, y = fused.gather(batch)  # a fresh compression of the distorted images
    assert isinstance(x, SparseBatch)
    fused.forward(x)
    fused.loss(fused.outs[-1][:100], y)
    fused.backward(x)
    for name, g in grads.items():
        assert max_rel(fused.grads[name], g) <= 1e-12, name
    images[:] = pixels  # rewritten without a word: the step cannot know
    images_changed(images[:10])  # a view of them is enough to say it
    assert fused.sparse is None


def test_the_step_leaves_blas_threads_as_it_found_them():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads()
    pixels, labels, model, _ = mnist_twins(n=500)
    step = FusedStep(model, Adam(), pixels, labels, 100, CPU)
    step(np.arange(100))
    assert blas_threads() == before


def test_warm_up_compiles_the_sparse_kernels():
    warm_up(CPU, "float32")
    for kernel in (
        CPU.sparse._sparse_forward,
        CPU.sparse._group_by_pixel,
        CPU.sparse._sparse_weight_grad,
        CPU.sparse._fill_nonzero,
    ):
        assert kernel.signatures, kernel
