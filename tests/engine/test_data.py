"""The IDX reader, checksums and dataset loading, including every corrupt variant."""

import gzip
import struct

import numpy as np
import pytest

from backprop import data
from backprop.data import (
    DataError,
    load_dataset,
    load_split,
    parse_idx,
    read_idx,
    write_idx,
)


def idx_bytes(array: np.ndarray, type_code: int = 8) -> bytes:
    header = bytes([0, 0, type_code, array.ndim])
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def test_parse_idx_reads_shape_and_values():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = parse_idx(idx_bytes(array))
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_write_then_read_roundtrip(tmp_path, suffix):
    array = np.random.default_rng(0).integers(0, 256, (5, 7), dtype=np.uint8)
    path = tmp_path / f"a-idx2-ubyte{suffix}"
    write_idx(path, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    np.testing.assert_array_equal(read_idx(path), array)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "bad magic"),
        (b"\x00\x00\x08\x00", "bad magic"),
        (b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00", "not unsigned bytes"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "truncated IDX header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00\x01", r"shape \(5,\)"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x00\x01", "but the file has"),
    ],
    ids=["short", "magic", "zero-dims", "type", "header", "truncated", "too-long"],
)
def test_parse_idx_rejects_corrupt_bytes(raw, message):
    with pytest.raises(DataError, match=message) as info:
        parse_idx(raw, "f")
    assert "\n" not in str(info.value)


def test_truncated_gzip_is_a_data_error(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 4), np.uint8)))[:-10])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(path)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "nope")


def test_synthetic_folder_loads(synthetic_dir):
    (x_train, y_train), (x_test, y_test) = load_dataset(data_dir=synthetic_dir)
    assert x_train.shape == (300, 64) and x_test.shape == (100, 64)
    assert x_train.dtype == np.float32 and 0 <= x_train.min() and x_train.max() <= 1
    assert y_train.dtype == np.int64 and set(np.unique(y_train)) <= set(range(10))


def replace(folder, stem, array):
    (folder / f"{stem}.gz").unlink()
    write_idx(folder / f"{stem}.gz", array)


def test_checksum_mismatch_is_detected(synthetic_dir):
    labels = read_idx(synthetic_dir / "t10k-labels-idx1-ubyte.gz").copy()
    labels[0] = (labels[0] + 1) % 10  # still valid IDX, still in range
    replace(synthetic_dir, "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset(data_dir=synthetic_dir)


def test_label_out_of_range_is_named(synthetic_dir):
    (synthetic_dir / "SHA256SUMS").unlink()
    labels = read_idx(synthetic_dir / "train-labels-idx1-ubyte.gz").copy()
    labels[7] = 12
    replace(synthetic_dir, "train-labels-idx1-ubyte", labels)
    with pytest.raises(DataError, match="label 12 at index 7 is out of range 0-9"):
        load_dataset(data_dir=synthetic_dir)


def test_count_mismatch_between_images_and_labels(synthetic_dir):
    (synthetic_dir / "SHA256SUMS").unlink()
    labels = read_idx(synthetic_dir / "train-labels-idx1-ubyte.gz")[:-1]
    replace(synthetic_dir, "train-labels-idx1-ubyte", labels)
    with pytest.raises(DataError, match="300 images but 299 labels"):
        load_dataset(data_dir=synthetic_dir)


def test_missing_file_in_folder_is_named(synthetic_dir):
    (synthetic_dir / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing t10k-images-idx3-ubyte"):
        load_dataset(data_dir=synthetic_dir)


def test_raw_files_are_accepted(synthetic_dir):
    for path in synthetic_dir.glob("*.gz"):
        path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
        path.unlink()
    (x_train, _), _ = load_dataset(data_dir=synthetic_dir)
    assert x_train.shape == (300, 64)


def test_bundled_mnist_verifies_and_has_paper_support():
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert x_train.dtype == np.float32
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    # the support column of the paper's classification report
    assert np.bincount(y_test).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert int((x_train.max(axis=0) == 0).sum()) == 67  # pixels never inked


def test_bundled_checksum_file_lists_the_four_files():
    sums = data.read_checksums(data.BUNDLED_MNIST / "SHA256SUMS")
    assert set(sums) == {stem for pair in data.SPLITS.values() for stem in pair}


def test_fashion_mnist_missing_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("cifar")


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        load_split(tmp_path / "nowhere", "train")
