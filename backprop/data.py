"""Datasets: an IDX reader, checksums, the bundled MNIST, and Fashion-MNIST.

The four MNIST files ship inside the package (``backprop/datasets/mnist``,
gzip) with the SHA-256 of their decompressed bytes, so training needs no
network. Every load checks the checksums and the IDX structure, and any problem
is a ``DataError`` with a one-line message.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import re
import struct
import zlib
from pathlib import Path

import numpy as np

from backprop.device import available_memory
from backprop.errors import DataError

BUNDLED_MNIST = Path(__file__).parent / "datasets" / "mnist"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DATASETS = ("mnist", "fashion-mnist")
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# SHA-256 of the decompressed files of Debian's dataset-fashion-mnist.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": (
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
    ),
    "train-labels-idx1-ubyte": (
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
    ),
    "t10k-images-idx3-ubyte": (
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
    ),
    "t10k-labels-idx1-ubyte": (
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
    ),
}
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}
NUM_CLASSES = 10
_UBYTE = 0x08  # the IDX type code of unsigned bytes
CHECKSUMS_FILE = "SHA256SUMS"
# One line of sha256sum's output: the digest, a space, " " or "*", the name.
_CHECKSUM_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")


def class_names_for(dataset: str, num_classes: int) -> list[str]:
    """The class names of a dataset (``mnist``, ``fashion-mnist``), or the indices.

    Args:
        dataset: the dataset named in the run's config.
        num_classes: the model's number of outputs.
    """
    names = CLASS_NAMES.get(dataset)
    if names is None or len(names) != num_classes:
        return [str(k) for k in range(num_classes)]
    return list(names)


def read_bytes(path: str | Path) -> bytes:
    """The decompressed bytes of a raw or gzip IDX file (gzip told by its magic).

    The IDX header is read first, then the bytes it announces: a small gzip
    that would inflate to gigabytes is never inflated in full, and a header
    announcing more than the free memory is refused before reading on. Bytes
    that do not start like an IDX file are returned for ``parse_idx`` to judge.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if gzipped else raw
            head = stream.read(4)
            if len(head) < 4 or head[:3] != bytes([0, 0, _UBYTE]) or not head[3]:
                return head
            dims = stream.read(4 * head[3])
            if len(dims) < 4 * head[3]:
                return head + dims
            shape = struct.unpack(f">{head[3]}I", dims)
            size, free = math.prod(shape), available_memory()
            if free is not None and size > free:
                raise DataError(
                    f"{path}: IDX header announces shape {shape}, {size:,} bytes, "
                    f"more than the {free:,} bytes of free memory"
                )
            data = head + dims + stream.read(size + 1)  # one more: too long?
            if len(data) > 4 + len(dims) + size:
                raise DataError(f"{path}: longer than its IDX header's shape {shape}")
            return data
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes (unsigned-byte type) into an array.

    The format: two zero bytes, a type code (0x08 for unsigned bytes), the
    number of dimensions, one big-endian int32 per dimension, then the data.

    Args:
        data: the file's decompressed bytes.
        name: the file name used in error messages.

    Returns:
        uint8 array of the stored shape, e.g. (60000, 28, 28) or (60000,).
    """
    if len(data) < 4:
        raise DataError(f"{name}: too short to be an IDX file ({len(data)} bytes)")
    zero1, zero2, type_code, ndim = data[:4]
    if zero1 or zero2 or ndim == 0:
        raise DataError(f"{name}: bad magic number 0x{data[:4].hex()}, not an IDX file")
    if type_code != _UBYTE:
        raise DataError(
            f"{name}: IDX type 0x{type_code:02x} is not unsigned bytes (0x08)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + math.prod(shape)  # a Python int: no overflow
    if len(data) != expected:
        raise DataError(
            f"{name}: IDX header says shape {shape} ({expected} bytes) "
            f"but the file has {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(path: str | Path) -> np.ndarray:
    """Read a raw or gzip IDX file of unsigned bytes; see ``parse_idx``."""
    return parse_idx(read_bytes(path), str(path))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzip when ``path`` ends in .gz).

    The inverse of ``read_idx``; tests and users make small datasets with it.
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UBYTE, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    data = header + array.tobytes()
    Path(path).write_bytes(gzip.compress(data) if str(path).endswith(".gz") else data)


def find_idx_file(folder: Path, stem: str) -> Path:
    """The path of ``stem`` in ``folder``, raw or ``.gz``."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder}: missing {stem} (or {stem}.gz)")


def read_checksums(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum``-style file strictly: ``<64 hex digits>  <name>`` lines.

    Returns:
        file name -> lower-case hex digest.

    Raises:
        DataError: unreadable, not UTF-8, over 1 MiB, a malformed line or a
            name listed twice.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(1 << 20)
            if f.read(1):
                raise DataError(f"{path}: over 1 MiB, too large for a checksum file")
        text = raw.decode("utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text, so not a checksum file") from None
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _CHECKSUM_LINE.fullmatch(line.strip())
        if match is None:
            raise DataError(
                f"{path}, line {number}: expected '<64 hex digits>  <file name>' "
                f"as sha256sum writes it, got {line.strip()[:60]!r}"
            )
        name = match[2].strip().removeprefix("./")
        if name in sums:
            raise DataError(f"{path}, line {number}: {name} is listed twice")
        sums[name] = match[1].lower()
    return sums


def verify_checksum(path: Path, stem: str, digest: str, sums: dict[str, str]) -> None:
    """Check the SHA-256 of a file's decompressed bytes against ``sums[stem]``.

    Raises:
        DataError: no entry, an entry holding the hash of the compressed file,
            or another hash (the file is damaged or was replaced).
    """
    sums_file = path.parent / CHECKSUMS_FILE
    expected = sums.get(stem)
    if expected == digest:
        return
    if expected is None:
        listed = f" (it lists {path.name}, the compressed file)" * (path.name in sums)
        raise DataError(
            f"{sums_file}: no entry for {stem}{listed}; list the SHA-256 of the "
            f"decompressed bytes (gunzip -c {path.name} | sha256sum), or remove "
            f"{CHECKSUMS_FILE} to skip the check"
        )
    if path.name != stem and expected == hashlib.sha256(path.read_bytes()).hexdigest():
        raise DataError(
            f"{sums_file}: the entry for {stem} is the SHA-256 of the compressed "
            f"{path.name}; it must be that of the decompressed bytes "
            f"(gunzip -c {path.name} | sha256sum)"
        )
    raise DataError(f"{path}: SHA-256 checksum mismatch (file damaged or replaced)")


def check_pair(
    images: np.ndarray, labels: np.ndarray, split: str, num_classes: int
) -> None:
    """Check that an image file and its label file agree and labels are in range."""
    if images.ndim != 3:
        raise DataError(
            f"{split} images: expected 3 dimensions (N, rows, cols), got {images.ndim}"
        )
    if labels.ndim != 1:
        raise DataError(f"{split} labels: expected 1 dimension (N,), got {labels.ndim}")
    if len(images) != len(labels):
        raise DataError(f"{split}: {len(images)} images but {len(labels)} labels")
    if len(labels) and labels.max() >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(
            f"{split} labels: label {labels[bad]} at index {bad} "
            f"is out of range 0-{num_classes - 1}"
        )


def load_split(
    folder: str | Path,
    split: str,
    checksums: dict[str, str] | None = None,
    digests: dict[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read one split's images and labels from a folder of IDX files.

    Args:
        folder: holds the four IDX files (raw or gzip).
        split: ``"train"`` or ``"test"``.
        checksums: file stem -> SHA-256 of the decompressed bytes; checked when given.
        digests: filled, when given, like ``checksums`` from the bytes read.

    Returns:
        images: uint8, shape (N, rows, cols), N >= 1.
        labels: uint8, shape (N,).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: data folder not found")
    arrays, digests = [], {} if digests is None else digests
    for stem in SPLITS[split]:
        path = find_idx_file(folder, stem)
        data = read_bytes(path)
        digests[stem] = hashlib.sha256(data).hexdigest()
        if checksums is not None:
            verify_checksum(path, stem, digests[stem], checksums)
        arrays.append(parse_idx(data, str(path)))
    images, labels = arrays
    check_pair(images, labels, f"{folder}: {split}", NUM_CLASSES)
    if images.size == 0:
        raise DataError(
            f"{find_idx_file(folder, SPLITS[split][0])}: the {split} split is "
            f"empty (images of shape {images.shape})"
        )
    return images, labels


def dataset_folder(
    dataset: str = "mnist", data_dir: str | Path | None = None
) -> tuple[Path, dict | None]:
    """Where a dataset's files are, and the checksums to verify them against.

    Args:
        dataset: ``"mnist"`` or ``"fashion-mnist"``; ignored when ``data_dir`` is given.
        data_dir: any folder with the four IDX files; verified against a
            ``SHA256SUMS`` file in it when there is one.

    Returns:
        ``(folder, checksums or None)``.
    """
    if data_dir is not None:
        folder = Path(data_dir)
        sums_file = folder / CHECKSUMS_FILE
        return folder, read_checksums(sums_file) if sums_file.is_file() else None
    if dataset == "mnist":
        return BUNDLED_MNIST, read_checksums(BUNDLED_MNIST / CHECKSUMS_FILE)
    if dataset == "fashion-mnist":
        if not FASHION_MNIST_DIR.is_dir():
            raise DataError(
                f"Fashion-MNIST not found in {FASHION_MNIST_DIR}; install it with "
                "'apt-get install dataset-fashion-mnist' or pass --data-dir"
            )
        return FASHION_MNIST_DIR, FASHION_MNIST_SHA256
    raise DataError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")


def load_pixels(
    dataset: str = "mnist",
    data_dir: str | Path | None = None,
    digests: dict[str, str] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load and verify a dataset as flat uint8 pixels and integer labels.

    Args:
        dataset: ``"mnist"`` (bundled) or ``"fashion-mnist"``.
        data_dir: a folder of the four IDX files to use instead.
        digests: when given, filled with the SHA-256 of each of the four
            files' decompressed bytes, by file stem.

    Returns:
        ``(pixels_train, y_train), (pixels_test, y_test)``: pixels uint8 of
        shape (N, rows * cols), y int64 of shape (N,).
    """
    folder, checksums = dataset_folder(dataset, data_dir)
    result = []
    for split in ("train", "test"):
        images, labels = load_split(folder, split, checksums, digests)
        pixels = images.reshape(len(images), -1)  # (N, D), uint8
        result.append((pixels, labels.astype(np.int64)))
    train, test = result
    if train[0].shape[1] != test[0].shape[1]:
        raise DataError(f"{folder}: train and test images differ in size")
    return train, test


def to_inputs(pixels: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """Pixels 0-255 as the network's inputs: ``pixels / 255`` in ``dtype``, (N, D)."""
    return pixels.astype(dtype) / np.dtype(dtype).type(255)  # (N, D) in [0, 1]


def load_dataset(
    dataset: str = "mnist",
    data_dir: str | Path | None = None,
    dtype: str = "float32",
    digests: dict[str, str] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load, verify and prepare a dataset: flat images in [0, 1], integer labels.

    Args:
        dataset: ``"mnist"`` (bundled) or ``"fashion-mnist"``.
        data_dir: a folder of the four IDX files to use instead.
        dtype: dtype of the images.
        digests: filled as ``load_pixels`` fills it.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: x of shape (N, rows * cols)
        scaled by 1/255, y int64 of shape (N,).
    """
    (px_train, y_train), (px_test, y_test) = load_pixels(dataset, data_dir, digests)
    return (to_inputs(px_train, dtype), y_train), (to_inputs(px_test, dtype), y_test)


def load_mnist(
    dtype: str = "float32",
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The bundled MNIST: ``(x_train, y_train), (x_test, y_test)``.

    x is (60000, 784) and (10000, 784), scaled to [0, 1]; y is int64 (N,).
    """
    return load_dataset("mnist", dtype=dtype)
