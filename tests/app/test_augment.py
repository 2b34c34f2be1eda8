"""--augment: the scipy.ndimage reference, the fused kernel against it, and runs.

The reference (``backprop.app.augment.reference``) is checked against
scipy.ndimage calls written out here; the kernel
(``backprop.kernels.cpu.distort``) against the reference, step by step (all
other steps off) and all together; then determinism and exact resume of a
training run with ``--augment``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_mnist_subset
from scipy import ndimage

from backprop.app.augment import reference
from backprop.app.augment.epoch import blur_weights, distort_all, epoch_generator
from backprop.app.augment.settings import (
    BLUR_SIGMA,
    BLUR_TRUNCATE,
    CENTRE,
    ELASTIC_SIGMA,
    GRID,
    SIDE,
    Augmentation,
    draw,
    field_basis,
)
from backprop.app.commands import train
from backprop.app.runs import load_checkpoint
from backprop.data import load_pixels

pytest.importorskip(
    "numba", reason="the fused augment kernel needs Numba (the fast extra)"
)
from backprop.kernels import cpu  # noqa: E402

OFF = Augmentation(
    rotation=0,
    scale=0,
    aspect=0,
    shear=0,
    shift=0,
    elastic=0,
    thickness=0,
    blur=0,
    noise=0,
)
STAGES = {
    "thickness": {"thickness": 0.8},
    "geometry": {
        "rotation": 15.0,
        "scale": 0.15,
        "aspect": 0.2,
        "shear": 0.3,
        "shift": 2.5,
    },
    "elastic": {"elastic": 1.5},
    "blur": {"blur": 1.0},
    "noise": {"noise": 0.2},
}


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """500 MNIST training digits, uint8 (500, 784)."""
    (pixels, _), _ = load_pixels("mnist", None, {})
    return np.array(pixels[:500])


def kernel(pixels: np.ndarray, d, workers: int = 1) -> np.ndarray:
    out = np.empty_like(pixels)  # (n, 784)
    return cpu.distort(pixels, d, blur_weights(), CENTRE, out, workers=workers)


def test_field_basis_is_scipys_gaussian_of_the_grid_noise():
    z = np.random.default_rng(0).standard_normal((GRID, GRID))  # (G, G)
    basis = field_basis().astype(np.float64)  # (S, G)
    full = np.kron(z, np.ones((SIDE // GRID, SIDE // GRID)))  # (S, S)
    smooth = ndimage.gaussian_filter(full, ELASTIC_SIGMA, mode="constant")
    ours = basis @ z @ basis.T  # (S, S), scaled to unit std at the centre
    scale = (ours * smooth).sum() / (smooth * smooth).sum()
    assert scale > 1  # the normalisation makes the field larger, not zero
    np.testing.assert_allclose(ours, scale * smooth, atol=1e-5)


def test_field_has_unit_std_at_the_centre():
    d = draw(np.random.default_rng(1), 256, Augmentation(elastic=1.0).at_strength())
    centre = d.field[:, :, SIDE // 2, SIDE // 2]  # (m, 2)
    assert 0.85 < centre.std() < 1.15


def test_blur_weights_are_scipys():
    image = np.zeros((9, 9))
    image[4, 4] = 1.0
    blurred = ndimage.gaussian_filter1d(
        image, BLUR_SIGMA, axis=1, truncate=BLUR_TRUNCATE
    )
    np.testing.assert_allclose(blurred[4, 2:7], blur_weights())


def test_reference_warp_is_map_coordinates_image_by_image(digits):
    d = draw(np.random.default_rng(2), 8, Augmentation().at_strength())
    images = digits[:8].reshape(8, SIDE, SIDE).astype(np.float32) / 255
    field = d.field[d.field_index]  # (8, 2, S, S)
    batch = reference.warp(images, d.inverse, field)  # (8, S, S)
    where = reference.source_coordinates(d.inverse, field)  # (2, 8, S, S)
    for i in range(8):
        one = ndimage.map_coordinates(
            images[i], where[:, i], order=1, mode="grid-constant", prefilter=False
        )
        np.testing.assert_allclose(batch[i], one, atol=1e-6)


@pytest.mark.slow
def test_reference_identity_is_exact(digits):
    d = draw(np.random.default_rng(3), len(digits), OFF)
    np.testing.assert_array_equal(reference.distort(digits, d), digits)
    np.testing.assert_array_equal(kernel(digits, d), digits)


@pytest.mark.parametrize("stage", STAGES)
def test_kernel_matches_the_reference_step_by_step(digits, stage):
    aug = dataclasses.replace(OFF, **STAGES[stage])
    d = draw(np.random.default_rng(4), len(digits), aug.at_strength())
    want = reference.distort(digits, d).astype(int)  # (n, 784)
    got = kernel(digits, d).astype(int)
    assert np.abs(got - want).max() <= 1  # float rounding near a half
    assert (got != want).mean() < 1e-3
    assert (want != digits).mean() > 0.01  # the step did something


def test_kernel_matches_the_reference_with_everything_on(digits):
    d = draw(
        np.random.default_rng(5), len(digits), Augmentation(strength=1.5).at_strength()
    )
    want = reference.distort(digits, d).astype(int)
    got = kernel(digits, d).astype(int)
    assert np.abs(got - want).max() <= 1
    assert (got != want).mean() < 1e-3


def test_threads_do_not_change_the_result(digits):
    d = draw(np.random.default_rng(6), len(digits), Augmentation().at_strength())
    np.testing.assert_array_equal(kernel(digits, d, 1), kernel(digits, d, 3))


def test_fraction_keeps_the_other_images_exactly(digits):
    aug = Augmentation(fraction=0.5).at_strength()
    d = draw(np.random.default_rng(7), len(digits), aug)
    assert 0.35 < d.keep.mean() < 0.65
    for out in (kernel(digits, d), reference.distort(digits, d)):
        np.testing.assert_array_equal(out[d.keep], digits[d.keep])
        changed = (out[~d.keep] != digits[~d.keep]).any(axis=1)
        assert changed.mean() > 0.95


def test_each_epoch_draws_afresh_and_the_same_epoch_again(digits):
    aug = Augmentation()
    one = distort_all(digits, aug, epoch_generator(11, 1), "fused")
    again = distort_all(digits, aug, epoch_generator(11, 1), "fused")
    two = distort_all(digits, aug, epoch_generator(11, 2), "fused")
    np.testing.assert_array_equal(one, again)
    assert (one != two).any(axis=1).mean() > 0.95


def test_strength_scales_the_ranges():
    aug = Augmentation(strength=2.0).at_strength()
    assert aug.rotation == 2 * Augmentation().rotation
    assert aug.blur == min(1.0, 2 * Augmentation().blur)
    assert aug.fraction == Augmentation().fraction


def test_kernel_refuses_mismatched_shapes_and_indices(digits):
    d = draw(np.random.default_rng(8), 10, Augmentation().at_strength())
    with pytest.raises(ValueError, match="shapes"):
        kernel(digits[:9], d)
    bad = dataclasses.replace(d, field_index=d.field_index + 10**6)
    with pytest.raises(ValueError, match="field_index"):
        kernel(digits[:10], bad)


# --- training runs ------------------------------------------------------------


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory) -> Path:
    """A data folder of 1,000 MNIST training and 200 test digits (28x28)."""
    return write_mnist_subset(tmp_path_factory.mktemp("small-mnist"), 1000, 200)


def run(data: Path, out: Path, *extra: str) -> int:
    argv = ["--data-dir", str(data), "--out", str(out), "--quiet", "--augment"]
    return train.main(argv + ["--batch-size", "100", *extra])


@pytest.mark.slow
@pytest.mark.parametrize("kernels", ["fused", "reference"])
def test_augmented_resume_is_bit_identical(small_mnist, tmp_path, kernels):
    k = ["--kernels", kernels]
    assert run(small_mnist, tmp_path / "full", "--epochs", "3", *k) == 0
    assert run(small_mnist, tmp_path / "part", "--epochs", "1", *k) == 0
    resumed = tmp_path / "part" / "model.npz"
    assert train.main(["--resume", str(resumed), "--epochs", "3", "--quiet", *k]) == 0
    full, part = load_checkpoint(tmp_path / "full/model.npz"), load_checkpoint(resumed)
    assert full.config["augmentation"] == part.config["augmentation"]
    for name in full.params:
        np.testing.assert_array_equal(full.params[name], part.params[name])
    plain = tmp_path / "plain"
    train.main(
        [
            "--data-dir",
            str(small_mnist),
            "--out",
            str(plain),
            "--quiet",
            "--batch-size",
            "100",
            "--epochs",
            "3",
            *k,
        ]
    )
    other = load_checkpoint(plain / "model.npz")
    assert not np.array_equal(other.params["dense1.w"], full.params["dense1.w"])


def test_same_seed_same_augmented_run_other_seed_not(small_mnist, tmp_path):
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert run(small_mnist, tmp_path / name, "--epochs", "1", "--seed", seed) == 0
    a, b, c = (load_checkpoint(tmp_path / n / "model.npz") for n in "abc")
    assert a.config["augmentation"]["entropy"] == b.config["augmentation"]["entropy"]
    np.testing.assert_array_equal(a.params["dense1.w"], b.params["dense1.w"])
    assert a.config["augmentation"]["entropy"] != c.config["augmentation"]["entropy"]


def test_resume_refuses_other_augment_settings(small_mnist, tmp_path, capsys):
    assert run(small_mnist, tmp_path / "r", "--epochs", "1") == 0
    model = str(tmp_path / "r" / "model.npz")
    argv = ["--resume", model, "--epochs", "2", "--quiet", "--augment-strength", "2"]
    assert train.main(argv) == 1
    err = capsys.readouterr().err
    assert "used --augment-strength 1.0, not 2.0" in err and "Traceback" not in err


def test_augment_needs_28x28_images(synthetic_dir, tmp_path, capsys):
    argv = ["--data-dir", str(synthetic_dir), "--out", str(tmp_path / "r"), "--augment"]
    with pytest.raises(SystemExit) as exc:
        train.main(argv + ["--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--augment needs 28x28 images; these have 64 pixels" in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--augment-strength", "0"], "--augment-strength must be in (0, 4]"),
        (["--augment-strength", "nan"], "--augment-strength must be in (0, 4]"),
        (["--augment-fraction", "1.5"], "--augment-fraction must be in (0, 1]"),
        (["--no-augment", "--augment-strength", "2"], "need --augment"),
    ],
)
def test_bad_augment_flags_are_usage_errors(flags, message, tmp_path, capsys):
    augment = [] if "--no-augment" in flags else ["--augment"]
    flags = [f for f in flags if f != "--no-augment"]
    with pytest.raises(SystemExit) as exc:
        train.main([*augment, "--out", str(tmp_path / "r"), *flags])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_crossval_augments_every_fold(small_mnist, tmp_path, capsys):
    from backprop.app.commands import crossval

    base = ["--data-dir", str(small_mnist), "--folds", "2", "--epochs", "2", "--quiet"]
    assert crossval.main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert crossval.main([*base, "--augment", "--out", str(tmp_path / "aug")]) == 0
    plain = (tmp_path / "plain" / "crossval.json").read_text()
    augmented = (tmp_path / "aug" / "crossval.json").read_text()
    assert '"augment": true' in augmented and '"augment": false' in plain
    folds = [json.loads(t)["fold_results"] for t in (plain, augmented)]
    assert [f["val_loss"] for f in folds[0]] != [f["val_loss"] for f in folds[1]]


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.pop("augmentation"),
        lambda c: c["augmentation"].update(entropy=-1),
        lambda c: c["augmentation"]["settings"].pop("blur"),
        lambda c: c["augmentation"]["settings"].update(noise=-1.0),
    ],
    ids=["missing", "bad key", "setting missing", "negative setting"],
)
def test_resume_refuses_a_damaged_augmentation_record(
    small_mnist, tmp_path, capsys, edit
):
    from backprop.app.runs.checkpoint import save_checkpoint

    assert run(small_mnist, tmp_path / "r", "--epochs", "1") == 0
    path = tmp_path / "r" / "model.npz"
    ckpt = load_checkpoint(path)
    edit(ckpt.config)
    save_checkpoint(path, ckpt)
    assert train.main(["--resume", str(path), "--epochs", "2", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "--augment" in err


def test_a_checkpoint_from_before_augment_resumes(small_mnist, tmp_path):
    from backprop.app.runs.checkpoint import save_checkpoint

    argv = ["--data-dir", str(small_mnist), "--quiet", "--batch-size", "100"]
    assert train.main([*argv, "--out", str(tmp_path / "full"), "--epochs", "2"]) == 0
    assert train.main([*argv, "--out", str(tmp_path / "old"), "--epochs", "1"]) == 0
    path = tmp_path / "old" / "model.npz"
    ckpt = load_checkpoint(path)
    for key in ("augment", "augment_strength", "augment_fraction"):
        del ckpt.config[key]  # as a checkpoint written before --augment existed
    save_checkpoint(path, ckpt)
    assert train.main(["--resume", str(path), "--epochs", "2", "--quiet"]) == 0
    full, old = load_checkpoint(tmp_path / "full/model.npz"), load_checkpoint(path)
    np.testing.assert_array_equal(full.params["dense1.w"], old.params["dense1.w"])


def test_the_headers_say_the_images_are_distorted(small_mnist, tmp_path, capsys):
    from backprop.app.commands import crossval

    argv = ["--data-dir", str(small_mnist), "--epochs", "1", "--augment"]
    assert train.main([*argv, "--out", str(tmp_path / "r")]) == 0
    assert (
        "examples, distorted afresh each epoch; writing to" in capsys.readouterr().out
    )
    argv += ["--folds", "2", "--out", str(tmp_path / "cv")]
    assert crossval.main(argv) == 0
    out = capsys.readouterr().out
    assert "1 epoch per fold" in out and "distorted afresh each epoch" in out
