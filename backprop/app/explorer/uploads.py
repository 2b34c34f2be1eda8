"""The explorer's image uploads: a file's bytes as the 784 inputs, safely.

``prepare`` reads an image file (the pad's PNG, an upload) exactly as
``backprop.predict`` prepares a file (``backprop.app.photos.prepare``), after
checking from its header that it has at most ``MAX_PIXELS`` pixels, so an image
that would take gigabytes once decoded is refused before any pixel is.
"""

from __future__ import annotations

import io
import threading
import warnings

import numpy as np

from backprop.app.photos.prepare import decode_image, prepare_image
from backprop.errors import DataError

MAX_PIXELS = 4096 * 4096  # an upload's width x height: a 12 Mpx phone photo fits
PEEKING = threading.Lock()  # one header read at a time (see declared_size)


def declared_size(data: bytes) -> tuple[int, int] | None:
    """The width and height an image file's header declares, decoding nothing.

    Pillow's ``Image.open`` reads the header alone (a PNG's IHDR, a JPEG's
    SOF, ...); the pixels are decoded by ``load``. ``None`` when Pillow cannot
    read the header (``decode_image`` then says what is wrong).
    """
    from PIL import Image

    try:
        # Pillow warns of a large image on opening it; the warning filters are
        # global, so threads that change them take turns
        with PEEKING, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                return img.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def prepare(
    data: bytes, recipe: str = "mnist", max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """An image file's bytes as the model's input, as ``predict`` prepares it.

    The header's width x height is checked first, so an image that would take
    gigabytes once decoded (a 3 MB PNG can declare 13,300 x 13,300 pixels) is
    refused before any pixel is decoded.

    Args:
        data: a PNG, JPEG, ... file's bytes.
        recipe: ``"mnist"`` or ``"fashion-mnist"`` (``backprop.app.photos.prepare``).
        max_pixels: the most pixels (width x height) decoded.

    Returns:
        the prepared input, (784,) float32 in [0, 1].

    Raises:
        DataError: not an image, damaged, blank, or over ``max_pixels``.
    """
    size = declared_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise DataError(
            f"the image: {size[0]}x{size[1]} pixels is over the explorer's limit "
            f"of {max_pixels:,} pixels; shrink it first"
        )
    img = decode_image(data, "the image")
    try:
        return prepare_image(img, recipe).reshape(-1)  # (784,)
    except DataError as exc:
        raise DataError(f"the image: {exc}") from None
