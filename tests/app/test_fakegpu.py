"""The CuPy stand-in itself (tests/fakegpu): as strict as CuPy, and counting.

If the stand-in let through what CuPy refuses, the GPU-path tests that use it
(``test_fakegpu_commands.py``, ``test_fakegpu_transfers.py``, and the ``gpu``
tests run with it on ``PYTHONPATH``) would pass code that fails on a GPU.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import tomllib
from fakegpu_runs import FAKEGPU, ROOT, gpu_env, standin
from scipy import ndimage

from backprop import device

pytestmark = pytest.mark.gpu


@pytest.fixture
def cp():
    with standin() as cupy:
        yield cupy


@pytest.fixture
def a(cp):
    array = cp.asarray(np.arange(6, dtype=np.float64).reshape(2, 3))  # (2, 3)
    cp.ledger.reset()
    return array


def test_it_is_a_device_array_type_of_its_own(cp, a):
    assert isinstance(a, cp.ndarray) and not isinstance(a, np.ndarray)
    assert device.xp_of(a) is cp and device.xp_of(np.zeros(2)) is np
    assert device.xp_of(np.zeros(2), a) is cp
    assert device.gpu_status() is None and device.resolve_device("auto") == "gpu"


@pytest.mark.parametrize(
    "convert",
    [
        np.asarray,
        np.array,
        lambda x: np.asarray(list(x)),  # the rows are device arrays too
        lambda x: ndimage.gaussian_filter(x, 1.0),
    ],
    ids=["asarray", "array", "rows", "scipy"],
)
def test_implicit_conversion_to_numpy_raises(a, convert):
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        convert(a)


@pytest.mark.parametrize(
    "mix",
    [
        lambda a: a + np.ones(3),
        lambda a: np.ones(3) * a,
        lambda a: a - np.array(1.0),  # a 0-d NumPy array is not a scalar to CuPy
        lambda a: np.maximum(a, np.ones(3)),
        lambda a: (a > 1) & np.ones((2, 3), bool),
    ],
)
def test_mixing_numpy_arrays_in_an_operation_raises(a, mix):
    with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
        mix(a)


def test_functions_refuse_host_arrays_and_unknown_names(cp, a):
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.concatenate([a, np.zeros((1, 3))])
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.where(a > 1, a, np.zeros(3))
    with pytest.raises(TypeError, match="no implementation found"):
        np.linalg.norm(a)  # CuPy has it elsewhere; the stand-in does not
    with pytest.raises(AttributeError, match="stand-in"):
        cp.fft  # noqa: B018


def test_scalars_mix_and_numpy_functions_dispatch_as_in_cupy(cp, a):
    f32 = cp.asarray(np.ones(3, np.float32))
    for result, dtype in [
        (f32 * 0.5, np.float32),  # a Python scalar is weak
        (f32 * np.float64(0.5), np.float64),  # a NumPy scalar is not (NumPy 2)
        (np.exp(a), np.float64),  # a ufunc of NumPy runs on the device
        (np.sum(a), np.float64),  # so does a function CuPy has
    ]:
        assert isinstance(result, cp.ndarray) and result.dtype == dtype
    assert a.sum().shape == ()  # reductions stay 0-d device arrays
    # comparisons take a 0-d NumPy array as a scalar (CuPy's __richcmp__)
    assert (a > np.array(2.0)).get().tolist() == [[False] * 3, [True] * 3]
    assert isinstance(np.array(2.0) < a, cp.ndarray)


def test_slices_take_scalars_not_host_arrays(cp, a):
    a[...] = np.float64(2.0)
    a[0] = 1  # a scalar fills
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray"):
        a[...] = np.ones((2, 3))
    a[np.array([0, 1])] = np.ones((2, 3))  # a fancy index copies it over, counted
    assert [e.how for e in cp.ledger.of("to_device")] == ["index", "setitem"]
    with pytest.raises(TypeError):
        range(a[0, 0])  # no __index__: a device scalar is not a Python int


def test_views_write_through(cp):
    flat = cp.zeros(6)
    view = flat[2:5].reshape(3)
    view += 1.0
    view[0] = 7.0
    assert flat.get().tolist() == [0, 0, 7, 1, 1, 0]


def test_every_read_and_copy_is_counted_with_its_site(cp, a):
    host = a.get()
    assert isinstance(host, np.ndarray) and host.tolist() == [[0, 1, 2], [3, 4, 5]]
    cp.asnumpy(a)
    float(a[0, 1]), int(a[0, 1]), bool(a[0, 1]), a[0, 1].item(), a.tolist()
    f"{a[0, 1]:.1f}"
    hows = [e.how for e in cp.ledger.of("to_host")]
    assert hows == [
        "get",
        "asnumpy",
        "float",
        "int",
        "bool",
        "item",
        "tolist",
        "format",
    ]
    sites = [e.site for e in cp.ledger.events]
    assert all(s.startswith("tests/app/test_fakegpu.py:") for s in sites)
    assert cp.ledger.to_device == 0
    again = cp.asarray(a)  # already there: no copy
    assert again is a and cp.ledger.to_device == 0
    device.to_device(np.ones(4), cp)
    assert cp.ledger.of("to_device")[-1].nbytes == 32
    assert device.to_numpy(a).tolist() == host.tolist()
    site = cp.ledger.of("to_host")[-1].site  # to_numpy's caller, not device.py
    assert site.endswith("test_every_read_and_copy_is_counted_with_its_site")


def test_device_queries_and_synchronisation(cp, monkeypatch):
    assert cp.cuda.runtime.getDeviceCount() == 1
    assert device.available_memory(cp) == 16 * 2**30
    monkeypatch.setenv("FAKEGPU_MEMORY", "12345")
    assert device.available_memory(cp) == 12345
    device.synchronize(cp)
    device.synchronize(np)  # a no-op on the CPU
    assert cp.ledger.syncs == 1 and cp.ledger.to_host == 0
    monkeypatch.setenv("FAKEGPU_DEVICES", "0")
    assert device.gpu_status().startswith("CuPy found no CUDA device")


def test_cupyx_ndimage_takes_device_images_and_equals_scipy(cp):
    from cupyx.scipy import ndimage as cndi

    images = np.random.default_rng(0).random((2, 5, 5))  # (2, 5, 5)
    cross = np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], bool)  # (1, 3, 3)
    on_device = cndi.grey_dilation(cp.asarray(images), footprint=cross)
    np.testing.assert_array_equal(
        on_device.get(), ndimage.grey_dilation(images, footprint=cross)
    )
    with pytest.raises(TypeError, match="Unsupported type"):
        cndi.gaussian_filter(images, 1.0)


def test_it_is_never_installed_with_the_package():
    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    found = find_packages(where=str(ROOT), include=include)
    assert "backprop" in found
    assert not [p for p in found if "cupy" in p or p.startswith("tests")]
    assert (FAKEGPU / "cupy" / "__init__.py").exists()  # what is left out


def test_pythonpath_activates_it_and_the_report_lists_the_events(tmp_path):
    report = tmp_path / "ledger.json"
    code = (
        "import cupy, numpy as np; from backprop.device import resolve_device;"
        "print(resolve_device('auto'), cupy.FAKE);"
        "float(cupy.asarray(np.ones(2)).sum())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=gpu_env(FAKEGPU_REPORT=str(report)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["gpu", "True"]
    events = json.loads(report.read_text())["events"]
    assert [(e["kind"], e["how"]) for e in events] == [
        ("to_device", "asarray"),
        ("to_host", "float"),
    ]
    assert not math.isnan(events[0]["nbytes"]) and events[0]["nbytes"] == 16
