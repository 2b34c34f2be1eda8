"""The paper's experiment, trained for real on the bundled MNIST."""

import json

import pytest

from backprop.app.commands import train


@pytest.mark.slow
def test_both_kernel_modes_reach_the_paper_accuracy_and_agree(tmp_path):
    pytest.importorskip("numba", reason="the fused kernels need Numba")
    final = {}
    for kernels in ("fused", "reference"):
        out = tmp_path / kernels
        argv = ["--device", "cpu", "--kernels", kernels, "--out", str(out), "--quiet"]
        assert train.main(argv) == 0
        history = json.loads((out / "history.json").read_text())
        assert len(history) == 20
        assert history[-1]["train_loss"] < history[0]["train_loss"]
        final[kernels] = history[-1]["test_accuracy"]
    assert min(final.values()) >= 0.974, final
    assert abs(final["fused"] - final["reference"]) <= 0.001, final
