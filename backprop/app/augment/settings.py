"""What ``--augment`` does to a training digit, and how strongly.

Each training image is distorted afresh every epoch, with its own random
amounts, in this order:

1. **stroke thickness**: blended towards its grey dilation (thicker) or
   erosion (thinner) with a 3x3 cross, by an amount in [-thickness, thickness];
2. **geometry**: rotation, scaling (and a change of aspect ratio), shear and
   translation about the centre,
   plus an elastic distortion (Simard, Steinkraus and Platt, 2003: a random
   displacement field smoothed by a Gaussian); every output pixel is
   interpolated bilinearly from where the map sends it in the input;
3. **blur**: blended towards a Gaussian blur (sigma ``BLUR_SIGMA``) by an
   amount in [0, blur];
4. **noise**: uniform noise in [-a, a] added to every pixel, a in [0, noise];
   then the result is clipped to [0, 1] and rounded back to 0-255 pixels, so
   training reads augmented digits exactly as it reads MNIST's.

``strength`` scales every range at once (0 is no change); the defaults are
the ones ``docs/augmentation.md`` chose by measurement.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from backprop.errors import ConfigError

SIDE = 28  # images are SIDE x SIDE
CENTRE = (SIDE - 1) / 2  # rotations and scalings turn about the middle
GRID = 7  # the elastic noise is drawn on a GRID x GRID grid (one value per 4x4)
BANK = 256  # elastic fields and noise images drawn per batch, each image picks one
PARTIAL = 0.5  # thickness, blur and noise each touch this share of the images
ELASTIC_SIGMA = 4.0  # Simard et al.'s smoothing, in pixels
BLUR_SIGMA = 1.0  # the blur that ``blur`` blends towards, in pixels
BLUR_TRUNCATE = 2.0  # ... cut off at 2 sigma: a 5-tap filter


@dataclass(frozen=True)
class Augmentation:
    """The largest amount of each distortion, at ``strength`` 1.

    The defaults were chosen on the ``tune`` set of ``ood/`` (20-epoch runs,
    seeds 0 and 1; docs/lectures/11-augmentation.md): these ranges, on every
    image, read it best; larger ranges (twice or three times these, on all
    of the images or on half of them) read it no better. ``aspect`` is off.

    Attributes:
        strength: multiplies every range below (0 switches all off).
        fraction: the share of the images distorted each epoch; the others
            are left as they are. Of the distorted ones, thickness, blur and
            noise each touch a random ``PARTIAL`` (half); all get the geometry.
        rotation: degrees; each image turns by U(-r, r).
        scale: relative; each image scales by exp(U(-log(1+s), log(1+s))).
        aspect: relative; on top, its height and width scale by exp(+a/2) and
            exp(-a/2), a ~ U(-log(1+r), log(1+r)) (narrower or wider digits).
        shear: each image shears by U(-k, k) (columns move k pixels per row).
        shift: pixels; each image moves by U(-t, t) along each axis.
        elastic: pixels; the displacement field's standard deviation at the
            centre.
        thickness: largest blend towards dilation (> 0) or erosion (< 0).
        blur: largest blend towards the blurred image.
        noise: largest noise amplitude, in units of the full range [0, 1].
    """

    strength: float = 1.0
    fraction: float = 1.0
    rotation: float = 6.0
    scale: float = 0.06
    aspect: float = 0.0
    shear: float = 0.125
    shift: float = 1.0
    elastic: float = 0.5
    thickness: float = 0.35
    blur: float = 0.3
    noise: float = 0.04

    def validate(self) -> None:
        """Raise ConfigError unless every value is finite and in range."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(
                    f"augmentation {field.name} must be a finite number >= 0, "
                    f"got {value}"
                )
        if self.fraction > 1:
            raise ConfigError(
                f"augmentation fraction must be <= 1, got {self.fraction}"
            )

    def at_strength(self) -> Augmentation:
        """Every range multiplied by ``strength`` (blends capped at 1)."""
        s = self.strength
        return Augmentation(
            strength=1.0,
            fraction=self.fraction,
            rotation=self.rotation * s,
            scale=self.scale * s,
            aspect=self.aspect * s,
            shear=self.shear * s,
            shift=self.shift * s,
            elastic=self.elastic * s,
            thickness=min(self.thickness * s, 1.0),
            blur=min(self.blur * s, 1.0),
            noise=self.noise * s,
        )


@dataclass(frozen=True)
class Draws:
    """The random amounts of one batch of n images, drawn on the host.

    The affine maps, thicknesses, blurs and noise amplitudes are each image's
    own. The elastic fields and the noise images are drawn as a bank of
    ``BANK`` per batch, and each image picks one at random: with every image's
    own affine map on top this still gives each a different distortion, for a
    tenth of the random numbers and arithmetic.

    Attributes:
        keep: the images left as they are, (n,) bool.
        inverse: each output pixel's source position is ``inverse @ (row -
            CENTRE, col - CENTRE, 1) + CENTRE``, (n, 2, 3) float64.
        field: elastic displacements in pixels, rows then columns,
            (m, 2, SIDE, SIDE) float32.
        field_index: the field of each image, (n,) int64 in [0, m).
        thickness: blend towards dilation (> 0) or erosion (< 0), (n,) float32.
        blur: blend towards the blurred image, (n,) float32.
        noise_amplitude: (n,) float32.
        noise: uniform bytes, (m, SIDE, SIDE) uint8; an image's pixel noise is
            ``amplitude * (byte - 127.5) / 127.5``.
        noise_index: the noise image of each image, (n,) int64 in [0, m).
    """

    keep: np.ndarray
    inverse: np.ndarray
    field: np.ndarray
    field_index: np.ndarray
    thickness: np.ndarray
    blur: np.ndarray
    noise_amplitude: np.ndarray
    noise: np.ndarray
    noise_index: np.ndarray


def field_basis() -> np.ndarray:
    """The (SIDE, GRID) matrix B with ``field = B @ z @ B.T`` for grid noise z.

    B is the Gaussian smoothing of ``scipy.ndimage.gaussian_filter1d``
    (sigma ``ELASTIC_SIGMA``, zeros beyond the edge) applied to the grid noise
    repeated to full size, so ``B @ z @ B.T`` equals
    ``gaussian_filter(np.kron(z, np.ones((4, 4))), ELASTIC_SIGMA,
    mode="constant")`` (``tests/app/test_augment.py``), done as two small matrix
    products. It is scaled so the field has standard deviation 1 at the
    centre when z is standard normal.
    """
    from scipy.ndimage import gaussian_filter1d

    smooth = gaussian_filter1d(np.eye(SIDE), ELASTIC_SIGMA, axis=0, mode="constant")
    repeat = np.kron(np.eye(GRID), np.ones((SIDE // GRID, 1)))  # (SIDE, GRID)
    basis = smooth @ repeat  # (SIDE, GRID)
    centre_std = float(np.sum(basis[SIDE // 2] ** 2))  # 1-D variance, squared in 2-D
    return (basis / math.sqrt(centre_std)).astype(np.float32)  # (SIDE, GRID)


def draw(rng: np.random.Generator, n: int, aug: Augmentation) -> Draws:
    """Draw the random amounts for n images from the run's generator.

    Args:
        rng: the run's generator (its state is in every checkpoint).
        n: the number of images.
        aug: the settings, already ``at_strength()``.

    Returns:
        the batch's ``Draws``; the same generator state gives the same draws.
    """
    angle = np.deg2rad(rng.uniform(-aug.rotation, aug.rotation, n))  # (n,)
    log_scale = math.log1p(aug.scale)
    scale = np.exp(rng.uniform(-log_scale, log_scale, n))  # (n,)
    log_aspect = math.log1p(aug.aspect)
    aspect = np.exp(rng.uniform(-log_aspect, log_aspect, n) / 2)  # (n,)
    shear = rng.uniform(-aug.shear, aug.shear, n)  # (n,)
    shift = rng.uniform(-aug.shift, aug.shift, (n, 2))  # (n, 2)
    keep = rng.random(n) >= aug.fraction  # (n,)
    partial = rng.random((3, n)) < PARTIAL  # (3, n): thickness, blur, noise
    thickness = rng.uniform(-aug.thickness, aug.thickness, n) * partial[0]  # (n,)
    blur = rng.uniform(0.0, aug.blur, n) * partial[1]  # (n,)
    amplitude = rng.uniform(0.0, aug.noise, n) * partial[2]  # (n,)
    m = min(n, BANK)
    grid = rng.standard_normal((m, 2, GRID, GRID), dtype=np.float32)  # (m, 2, G, G)
    field_index = rng.integers(0, m, n)  # (n,)
    noise = rng.integers(0, 256, (m, SIDE, SIDE), dtype=np.uint8)  # (m, S, S)
    noise_index = rng.integers(0, m, n)  # (n,)

    # Output (row, col) reads the input at R(angle) @ [[1, shear], [0, 1]] @
    # diag(1 / rows' scale, 1 / columns' scale) @ (row, col), about the
    # centre, shifted.
    cos, sin = np.cos(angle), np.sin(angle)  # (n,)
    rows, cols = scale * aspect, scale / aspect  # (n,) each
    inverse = np.empty((n, 2, 3))  # (n, 2, 3)
    inverse[:, 0, 0] = cos / rows
    inverse[:, 0, 1] = (cos * shear - sin) / cols
    inverse[:, 1, 0] = sin / rows
    inverse[:, 1, 1] = (sin * shear + cos) / cols
    inverse[:, :, 2] = shift
    basis = field_basis()  # (S, G)
    field = basis @ grid @ basis.T * np.float32(aug.elastic)  # (m, 2, S, S)
    f32 = np.float32
    return Draws(
        keep=keep,
        inverse=inverse,
        field=field,
        field_index=field_index,
        thickness=thickness.astype(f32),
        blur=blur.astype(f32),
        noise_amplitude=amplitude.astype(f32),
        noise=noise,
        noise_index=noise_index,
    )
