"""Smoke runs of benchmarks/compare.py and benchmarks/sweep.py on tiny work.

They check that the scripts run and write what they promise; they assert no
timing (a benchmark is never a test with a time limit).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_file_as_module

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
ROW_KEYS = {
    "name",
    "device",
    "s_per_epoch_median",
    "s_per_epoch_min",
    "s_per_epoch_max",
    "samples_per_s",
    "ratio_to_engine",
    "test_accuracy",
    "peak_rss_mib",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_script(script, *args, timeout=300):
    # The environment is passed as it is: the BLAS variables are never changed.
    return subprocess.run(
        [sys.executable, str(BENCH / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def load_script(name):
    # The scripts import each other as siblings, as they do when run from here.
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return load_file_as_module(BENCH / f"{name}.py", name)


def compare(out, synthetic_dir, only):
    proc = run_script(
        "compare.py",
        "--epochs", 1, "--rounds", 1, "--warmup", 0,
        "--blas-env", "given",
        "--data-dir", synthetic_dir,
        "--batch-size", 64, "--hidden", 16,
        "--only", only,
        "--out", out,
        "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "results.json").read_text())


def check_outputs(out, result, keys):
    rows = {row["key"]: row for row in result["rows"]}
    assert set(rows) == set(keys)
    for row in rows.values():
        assert ROW_KEYS <= set(row), row
        assert 0 < row["s_per_epoch_min"] <= row["s_per_epoch_median"]
        assert row["s_per_epoch_median"] <= row["s_per_epoch_max"]
        assert row["peak_rss_mib"] > 0
        assert row["sizes"] == [64, 16, 10]  # the synthetic 8x8 images
    machine = result["machine"]
    assert machine["cores"] >= 1 and machine["cpu"]
    table = (out / "results.md").read_text()
    for row in rows.values():
        assert row["name"] in table
    assert (out / "results.png").read_bytes()[:8] == PNG_MAGIC
    return rows


def test_compare_engine_rows(tmp_path, synthetic_dir):
    keys = ["engine-fused", "engine-reference", "matmul-bound"]
    result = compare(tmp_path, synthetic_dir, ",".join([*keys, "engine-cupy"]))
    rows = check_outputs(tmp_path, result, keys)
    assert rows["engine-fused"]["ratio_to_engine"] == 1.0
    # the same seed, data and batch order: both engine paths learn the same model
    fast, reference = rows["engine-fused"], rows["engine-reference"]
    assert fast["test_accuracy"] == reference["test_accuracy"]
    assert 0.0 <= fast["test_accuracy"] <= 1.0
    assert rows["matmul-bound"]["gflop_per_epoch"] > 0
    if "engine-cupy" in result["skipped"]:
        assert result["machine"]["gpu"] is None
    assert result["settings"]["batch_size"] == 64


@pytest.mark.slow
@pytest.mark.tf
def test_compare_runs_tensorflow_in_its_own_process(tmp_path, synthetic_dir):
    pytest.importorskip("tensorflow")
    keys = ["engine-fused", "tf-function"]
    result = compare(tmp_path, synthetic_dir, ",".join(keys))
    rows = check_outputs(tmp_path, result, keys)
    assert "tensorflow" in rows["tf-function"]["versions"]
    assert "tensorflow" not in rows["engine-fused"]["versions"]
    assert rows["tf-function"]["ratio_to_engine"] > 0


FRAMEWORKS = [
    pytest.param("tf-eager", "tensorflow", marks=pytest.mark.tf),
    pytest.param("tf-function", "tensorflow", marks=pytest.mark.tf),
    pytest.param("keras-fit", "tensorflow", marks=pytest.mark.tf),
    pytest.param("pytorch", "torch"),
]


@pytest.mark.slow
@pytest.mark.parametrize("implementation,library", FRAMEWORKS)
def test_framework_worker_trains_and_reports(
    implementation, library, synthetic_dir, tmp_path
):
    # In a process of its own, as the benchmark runs it: TensorFlow and PyTorch
    # in one process can crash it.
    pytest.importorskip(library)
    out = tmp_path / "row.json"
    proc = run_script(
        "workers.py", implementation, "--json-out", out, "--epochs", 2,
        "--warmup", 1, "--data-dir", synthetic_dir, "--batch-size", 64,
        "--hidden", 16,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["implementation"] == implementation
    assert len(result["epoch_seconds"]) == 2
    assert all(s > 0 for s in result["epoch_seconds"])
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert result["sizes"] == [64, 16, 10] and result["train_examples"] == 300
    assert library in result["versions"]


def test_compare_rejects_unknown_implementation(tmp_path):
    proc = run_script("compare.py", "--only", "engine-fused,jax", "--out", tmp_path)
    assert proc.returncode == 2
    assert "unknown jax" in proc.stderr
    assert not (tmp_path / "results.json").exists()


def test_sweep_writes_tables_and_plot(tmp_path, synthetic_dir):
    proc = run_script(
        "sweep.py",
        "--rounds", 1,
        "--batch-sizes", "16,64",
        "--widths", "8,32",
        "--data-dir", synthetic_dir,
        "--out", tmp_path,
        "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "sweep.json").read_text())
    points = [(r["sweep"], r["batch_size"], r["hidden"]) for r in result["rows"]]
    assert points == [
        ("batch size", 16, 128),
        ("batch size", 64, 128),
        ("width", 256, 8),
        ("width", 256, 32),
    ]
    for row in result["rows"]:
        assert row["s_per_epoch_median"] > 0 and row["samples_per_s"] > 0
        assert row["gflop_per_epoch"] > 0 and row["matmul_s_per_epoch"] > 0
    assert result["rows"][0]["steps_per_epoch"] == 300 // 16 + 1
    assert "## batch size" in (tmp_path / "sweep.md").read_text()
    assert (tmp_path / "sweep.png").read_bytes()[:8] == PNG_MAGIC


def test_numpy_rows_run_again_without_blas_variables_only_when_set():
    compare = load_script("compare")
    names = ["engine-fused", "tf-eager", "matmul-bound"]
    plain = {"PATH": "/usr/bin"}
    assert [key for key, _, _ in compare.plan_runs(names, "auto", plain)] == names
    tuned = {**plain, "OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512"}
    runs = compare.plan_runs(names, "auto", tuned)
    assert [key for key, _, _ in runs] == [
        *names,
        "engine-fused+blas-unset",
        "matmul-bound+blas-unset",
    ]
    assert runs[0][2] == tuned
    assert runs[-1][2] == plain  # both variables removed, nothing else
    assert len(compare.plan_runs(names, "given", tuned)) == 3


def test_matmul_shapes_count_the_papers_flops():
    matmul_shapes = load_script("workers").matmul_shapes
    shapes = matmul_shapes([784, 128, 10], 256)
    flops = sum(2 * a[0] * a[1] * b[1] for _, a, b in shapes)
    # forward and weight gradient of both layers, input gradient of the second
    assert len(shapes) == 5
    assert flops == 2 * 256 * (2 * 784 * 128 + 3 * 128 * 10)


def test_profile_step_accounts_for_every_phase(tmp_path, synthetic_dir):
    proc = run_script(
        "profile_step.py",
        "--epochs", 1,
        "--batch-size", 32,
        "--hidden", 16,
        "--data-dir", synthetic_dir,
        "--out", tmp_path,
        "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "profile.json").read_text())
    assert list(result["modes"]) == ["reference", "fused"]
    phases = ["gather", "forward", "loss", "backward", "adam"]
    for mode_rows in result["modes"].values():
        rows = {row["phase"]: row for row in mode_rows}
        assert list(rows)[:5] == phases
        step = rows["step (the five phases)"]["us_per_step_mean"]
        assert sum(rows[p]["us_per_step_mean"] for p in phases) == pytest.approx(step)
        assert sum(rows[p]["share_of_step"] for p in phases) == pytest.approx(1.0)
    assert result["steps_timed"] == 300 // 32 and result["sizes"] == [64, 16, 10]
    text = (tmp_path / "profile.md").read_text()
    assert "## reference" in text and "## fused" in text and "| adam |" in text


@pytest.mark.slow
def test_first_run_times_cold_and_warm_cache(tmp_path, synthetic_dir):
    pytest.importorskip("numba", reason="the fused kernels need Numba")
    proc = run_script(
        "first_run.py",
        "--repeats", 1,
        "--data-dir", synthetic_dir,
        "--hidden", 8,
        "--out", tmp_path,
        "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "first_run.json").read_text())
    assert list(result["cases"]) == [
        "fused, cold cache",
        "fused, warm cache",
        "reference",
    ]
    for row in result["cases"].values():
        assert row["wall_s"] > row["epoch_s"] > 0
    assert "| fused, cold cache |" in (tmp_path / "first_run.md").read_text()


def test_augment_cost_times_every_row(tmp_path):
    pytest.importorskip("numba", reason="the fused kernels need Numba")
    proc = run_script(
        "augment_cost.py",
        "--rounds", 1,
        "--train-limit", 600,
        "--reference-images", 100,
        "--out", tmp_path,
        "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "augment.json").read_text())
    rows = {row["row"]: row for row in result["rows"]}
    assert rows["train epoch"]["ratio_to_train_epoch"] == 1.0
    assert "distort (fused, 1 thread)" in rows
    assert "distort (reference, scipy.ndimage)" in rows
    assert "train epoch with --augment" in rows
    assert all(row["seconds"] > 0 for row in rows.values())
    assert result["images"] == 600
    assert "| train epoch with --augment |" in (tmp_path / "augment.md").read_text()


def test_compare_bound_rows_count_the_skipped_zeros(tmp_path, synthetic_dir):
    keys = ["matmul-bound", "sparse-bound", "adam-bound"]
    result = compare(tmp_path, synthetic_dir, ",".join(keys))
    rows = check_outputs(tmp_path, result, keys)
    sparse, dense = rows["sparse-bound"], rows["matmul-bound"]
    assert 0 < sparse["nonzero_share"] <= 1
    assert 0 < sparse["gflop_per_epoch"] <= dense["gflop_per_epoch"]
    assert sparse["products"][0]["gflop_per_s"] > 0
    assert rows["adam-bound"]["gbyte_per_epoch"] > 0
    assert rows["adam-bound"]["gbyte_per_s"] > 0
    table = (tmp_path / "results.md").read_text()
    assert "GB per epoch at" in table and "are non-zero) at" in table


def test_quick_is_one_warm_round_of_the_quick_rows(tmp_path, synthetic_dir):
    proc = run_script(
        "compare.py", "--quick", "--data-dir", synthetic_dir,
        "--batch-size", 64, "--hidden", 16, "--only", "engine-fused,adam-bound",
        "--out", tmp_path, "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "results.json").read_text())
    s = result["settings"]
    assert (s["epochs"], s["rounds"], s["warmup"]) == (1, 1, 1)
    quick = load_script("compare").QUICK_ROWS
    assert {"engine-fused", "engine-reference", "matmul-bound"} <= set(quick)
    assert "tf-eager" not in quick  # minutes of eager TensorFlow


def test_results_go_elsewhere_than_the_committed_ones_by_default(tmp_path):
    compare = load_script("compare")
    parser = compare.build_parser()
    assert parser.parse_args([]).out == ROOT / "runs" / "benchmarks"
    committed = BENCH / "results" / "results.json"
    before = committed.stat().st_mtime_ns if committed.exists() else None
    proc = run_script(
        "compare.py", "--only", "matmul-bound", "--out", BENCH / "results"
    )
    assert proc.returncode == 2
    assert "--overwrite" in proc.stderr and len(proc.stderr.splitlines()) == 1
    after = committed.stat().st_mtime_ns if committed.exists() else None
    assert before == after
    # --overwrite lets the same check pass (on a stand-in committed folder)
    compare.COMMITTED = tmp_path
    (tmp_path / "results.json").write_text("{}")
    args = parser.parse_args(["--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        compare.check_settings(parser, args, ("results.json",))
    args = parser.parse_args(["--out", str(tmp_path), "--overwrite"])
    compare.check_settings(parser, args, ("results.json",))  # no exit


@pytest.mark.parametrize(
    "script,flags,message",
    [
        ("compare.py", ["--batch-size", "0"], "--batch-size must be >= 1"),
        ("compare.py", ["--hidden", "-3"], "--hidden must be >= 1"),
        ("compare.py", ["--data-dir", "no/such/dir"], "no such folder"),
        ("compare.py", ["--out", "benchmarks/compare.py"], "is a file"),
        ("sweep.py", ["--batch-size", "0"], "--batch-size must be >= 1"),
        ("profile_step.py", ["--batch-size", "0"], "--batch-size must be >= 1"),
        ("profile_step.py", ["--kernels", "fast"], "unknown --kernels fast"),
    ],
)
def test_bad_flags_get_one_line_before_anything_runs(script, flags, message):
    proc = run_script(script, *flags, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_profile_step_shows_the_sparse_step_and_both_thread_layouts(tmp_path):
    pytest.importorskip("numba", reason="the fused kernels need Numba")
    proc = run_script(
        "profile_step.py", "--epochs", 1, "--train-limit", 1000,
        "--batch-size", 100, "--kernels", "fused,fused-numba1",
        "--out", tmp_path, "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "profile.json").read_text())
    assert list(result["modes"]) == ["fused", "fused-numba1"]
    for mode_rows in result["modes"].values():
        rows = {row["phase"]: row for row in mode_rows}
        products = rows["of forward + backward: the matrix products"]
        assert products["us_per_step_mean"] > 0


def test_profile_step_densities_time_sparse_against_dense(tmp_path):
    pytest.importorskip("numba", reason="the fused kernels need Numba")
    proc = run_script(
        "profile_step.py", "--densities", "0.1,0.9", "--batch-size", 32,
        "--out", tmp_path, "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "crossover.json").read_text())
    assert [r["density"] for r in result["rows"]] == [0.1, 0.9]
    assert all(r["sparse_us"] > 0 and r["dense_us"] > 0 for r in result["rows"])
    assert "| 10% |" in (tmp_path / "crossover.md").read_text()


@pytest.mark.slow
def test_compare_cnn_rows_train_lenet5_beside_pytorch(tmp_path):
    pytest.importorskip("torch")
    proc = run_script(
        "compare.py",
        "--models", "cnn", "--only", "engine-cnn,engine-cnn-reference,pytorch-cnn",
        "--epochs", 1, "--rounds", 1, "--warmup", 0, "--blas-env", "given",
        "--train-limit", 64, "--test-limit", 32, "--batch-size", 32,
        "--out", tmp_path, "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "results.json").read_text())
    rows = {row["key"]: row for row in result["rows"]}
    assert set(rows) == {"engine-cnn", "engine-cnn-reference", "pytorch-cnn"}
    for row in rows.values():
        assert row["sizes"] == [784, 120, 84, 10]  # LeNet-5's, not the MLP's
        assert row["train_examples"] == 64 and 0.0 <= row["test_accuracy"] <= 1.0
    assert rows["engine-cnn"]["ratio_to_engine"] == 1.0  # CNN rows: to the CNN
    table = (tmp_path / "results.md").read_text()
    assert "CNN (LeNet-5): engine, NumPy, reference step" in table


def test_compare_models_flag_selects_and_refuses(tmp_path):
    compare_module = load_script("compare")
    assert not set(compare_module.MODELS["mlp"]) & set(compare_module.CNN_ROWS)
    proc = run_script("compare.py", "--models", "mlp,rnn", "--out", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("--models mlp,rnn: choose from mlp, cnn")
