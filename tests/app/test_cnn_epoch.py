"""A smoke run of benchmarks/cnn_epoch.py: it runs and writes what it promises.

No timing is asserted; the script's numbers are measurements, not tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the benchmark compares with PyTorch (bench extra)")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cnn_epoch_runs_all_three_and_writes_its_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cnn_epoch.py"),
         "--rounds", "2", "--max-steps", "2", "--batch-size", "16",
         "--train-size", "64", "--threads", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "cnn_epoch.json").read_text())
    assert result["steps_per_epoch"] == 2 and len(result["rounds"]) == 2
    losses = result["rounds"][0]["mean_loss"]
    # the same weights and batches: the first steps' losses agree closely,
    # and the two engine steps' exactly
    assert losses["reference"] == pytest.approx(losses["pytorch"], rel=1e-3)
    assert losses["fused"] == losses["reference"]
    table = (tmp_path / "cnn_epoch.md").read_text()
    assert table.startswith("Machine: ") and "| fused / PyTorch |" in table
    assert result["machine"]["torch_threads"] == 1
    assert result["machine"]["blas_threads"] in (1, None)
    assert "Median ratios: reference / PyTorch " in proc.stdout
