"""Checks of lecture 8's exercise: mini-batches drawn without replacement."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from exercises.checks.core import Check, Wrong, array_of, dict_of, expect, kind

CASES = ((10, 3), (12, 4), (7, 10))


def batches_of(value: Any, what: str) -> list[np.ndarray]:
    """A returned list of batches as integer arrays."""
    if not isinstance(value, list | tuple):
        raise Wrong(f"{what} is {kind(value)}, expected a list of index arrays")
    batches = [array_of(b, f"a batch of {what}") for b in value]
    for b in batches:
        expect(b.ndim == 1, f"a batch of {what} has shape {b.shape}, expected (size,)")
        expect(
            b.dtype.kind in "iu" or bool(np.all(b == np.round(b))),
            f"a batch of {what} holds non-integer indices",
        )
    return [b.astype(np.int64) for b in batches]


def partition_run(mod: ModuleType) -> list[Any]:
    """The batches of three (n, batch size) cases."""
    return [mod.minibatch_indices(n, b, np.random.default_rng(0)) for n, b in CASES]


def partition_judge(results: Any) -> str:
    """Every index exactly once; full batches, then one smaller last batch."""
    if not (isinstance(results, list) and len(results) == len(CASES)):
        raise Wrong("the results are incomplete")
    for (n, b), value in zip(CASES, results):
        batches = batches_of(value, f"minibatch_indices({n}, {b})")
        sizes = [len(batch) for batch in batches]
        want = [b] * (n // b) + ([n % b] if n % b else [])
        expect(sizes == want, f"n={n}, batch {b}: sizes {sizes}, expected {want}")
        flat = np.sort(np.concatenate(batches))
        expect(
            np.array_equal(flat, np.arange(n)), f"n={n}: not a permutation of range(n)"
        )
    return "n = 10, 12, 7"


def seeded_run(mod: ModuleType) -> dict[str, Any]:
    """Batches for seeds 1, 1 and 2."""
    draw = lambda seed: mod.minibatch_indices(100, 32, np.random.default_rng(seed))  # noqa: E731
    return {"a": draw(1), "b": draw(1), "c": draw(2)}


def seeded_judge(value: Any) -> None:
    """Same seed, same batches; another seed, another order."""
    got = dict_of(value, "the results")
    a, b, c = (
        np.concatenate(batches_of(got.get(k), f"seed {s}") or [np.zeros(0)])
        for k, s in (("a", 1), ("b", 1), ("c", 2))
    )
    expect(len(a) == 100, f"{len(a)} indices, expected 100")
    expect(np.array_equal(a, b), "same seed, different batches")
    expect(not np.array_equal(a, c), "seed ignored")
    expect(not np.array_equal(a, np.arange(100)), "the order is not shuffled")


def engine_run(mod: ModuleType) -> Any:
    """The batches of 50 examples in batches of 16 for seed 5."""
    return mod.minibatch_indices(50, 16, np.random.default_rng(5))


def engine_judge(value: Any) -> None:
    """The batches are those backprop's train_epoch draws for the same seed.

    ``train_epoch`` draws one ``rng.permutation(n)`` per epoch and slices it.
    """
    mine = batches_of(value, "minibatch_indices(50, 16)")
    order = np.random.default_rng(5).permutation(50)  # (50,)
    engine = [order[i : i + 16] for i in range(0, 50, 16)]
    expect(
        len(engine) == len(mine)
        and all(np.array_equal(p, q) for p, q in zip(mine, engine)),
        "your batches differ from the engine's: draw one rng.permutation(n) "
        "and slice it",
    )


CHECKS = (
    Check("each index once; batch sizes", partition_run, partition_judge),
    Check("seeded and shuffled", seeded_run, seeded_judge),
    Check("the same batches as train_epoch", engine_run, engine_judge),
)
