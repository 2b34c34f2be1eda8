"""The paper's experiment, trained for real on the bundled MNIST."""

import json

import pytest

from backprop.commands import train


@pytest.mark.slow
def test_default_configuration_reaches_paper_accuracy(tmp_path):
    out = tmp_path / "paper"
    assert train.main(["--device", "cpu", "--out", str(out), "--quiet"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 20
    assert history[-1]["test_accuracy"] >= 0.97
    assert history[-1]["train_loss"] < history[0]["train_loss"]
