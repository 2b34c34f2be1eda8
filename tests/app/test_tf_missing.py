"""Without TensorFlow, or with one too old, ``tf_reference`` fails in one line.

These run in subprocesses that hide or fake TensorFlow, so they need no
TensorFlow installed (and import none: they are quick).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HIDE_TF = "import sys; sys.modules['tensorflow'] = None; "
RUN_TRAIN = (
    "import runpy, sys; sys.argv = ['tf_reference.train']; "
    "runpy.run_module('tf_reference.train', run_name='__main__', alter_sys=True)"
)


def python(code: str, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    paths = [str(ROOT)] + ([str(extra_path)] if extra_path else [])
    if extra_path:
        paths.reverse()  # the fake packages first
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def fake_packages(tmp_path: Path, tensorflow: str, keras: str) -> Path:
    for name, version in (("tensorflow", tensorflow), ("keras", keras)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"__version__ = {version!r}\n")
    return tmp_path


def test_importing_the_package_has_no_side_effects():
    before = "import sys; hook = sys.excepthook; "
    code = before + (
        "import tf_reference; "
        "assert sys.excepthook is hook; "
        "assert 'tensorflow' not in sys.modules; print('clean')"
    )
    result = python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "clean\n"


@pytest.mark.parametrize("module", ["tf_reference.train", "tf_reference.convert"])
def test_missing_tensorflow_is_one_line(module):
    run = RUN_TRAIN.replace("tf_reference.train", module)
    result = python(HIDE_TF + run)
    assert result.returncode == 1
    assert (
        result.stderr == "error: TensorFlow is not installed; pip install -e '.[tf]'\n"
    )


def test_missing_tensorflow_is_an_import_error():
    code = (
        HIDE_TF
        + "from backprop.errors import BackpropError\n"
        + "try:\n    import tf_reference.paper_model\n"
        + "except ImportError as exc:\n"
        + "    assert isinstance(exc, BackpropError)\n    print('caught:', exc)\n"
    )
    result = python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("caught: TensorFlow is not installed")


def test_too_old_tensorflow_is_one_line(tmp_path):
    result = python(RUN_TRAIN, fake_packages(tmp_path, "2.12.0", "2.12.0"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: TensorFlow 2.12.0 is too old; need >= 2.16")


def test_too_old_keras_is_one_line(tmp_path):
    result = python(RUN_TRAIN, fake_packages(tmp_path, "2.17.0", "2.17.0"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: Keras 2.17.0 is too old; need Keras 3")
