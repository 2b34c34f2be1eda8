"""The settings of a training run, as the commands' flags name them.

``TrainConfig`` holds what every training command shares (``backprop train``,
``backprop crossval`` and ``tf_reference.train``); ``EngineConfig`` adds the
engine's own. ``backprop.app.trainer`` builds a run from an ``EngineConfig``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from backprop.errors import ConfigError
from backprop.model import DTYPES

C = TypeVar("C", bound="TrainConfig")
MODELS = ("mlp", "cnn")  # --model: the paper's dense network, or LeNet-5
CNN_HIDDEN = (120, 84)  # LeNet-5's dense widths, --hidden's default with --model cnn
CNN_EMA = 0.999  # --ema's default with --model cnn, chosen on ood/sets/tune


@dataclass(frozen=True)
class TrainConfig:
    """Settings every training command shares; the defaults are the paper's.

    ``EngineConfig`` and ``tf_reference.train``'s config extend it,
    so one experiment is named by the same flags in both.
    """

    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    hidden: tuple[int, ...] = (128,)
    seed: int = 0
    dtype: str = "float32"
    dataset: str = "mnist"
    data_dir: str | None = None

    def validate(self) -> None:
        """Raise ConfigError naming the first value out of range."""
        if self.epochs < 1:
            raise ConfigError(f"--epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"--lr must be a finite number > 0, got {self.lr}")
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"--hidden needs positive widths, got {self.hidden}")
        if self.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {self.seed}")

    @classmethod
    def from_namespace(cls: type[C], args: argparse.Namespace) -> C:
        """The config named by parsed flags (flags that are not fields are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in vars(args).items() if k in names})


@dataclass(frozen=True)
class EngineConfig(TrainConfig):
    """A run of the engine: the shared settings plus the engine's own.

    With ``model="cnn"`` the network is ``backprop.cnn.CNN``: LeNet-5's
    convolutions and pooling, then dense layers of the ``hidden`` widths.
    """

    model: str = "mlp"
    device: str = "auto"
    init: str = "paper"
    adam: str = "keras"
    kernels: str = "auto"
    augment: bool = False
    augment_strength: float = 1.0
    augment_fraction: float = 1.0
    lr_decay: float = 1.0
    ema: float = 0.0

    def validate(self) -> None:
        """Raise ConfigError naming the first value out of range."""
        super().validate()
        if self.model not in MODELS:
            raise ConfigError(
                f"unknown --model {self.model!r}; choose one of {', '.join(MODELS)}"
            )
        d = self.lr_decay
        if not (math.isfinite(d) and 0 < d <= 1):
            raise ConfigError(f"--lr-decay must be in (0, 1], got {d}")
        if not (math.isfinite(self.ema) and 0 <= self.ema < 1):
            raise ConfigError(f"--ema must be in [0, 1), got {self.ema}")
        self.check_last_rate()
        s = self.augment_strength
        if not (math.isfinite(s) and 0 < s <= 4):
            raise ConfigError(f"--augment-strength must be in (0, 4], got {s}")
        f = self.augment_fraction
        if not (math.isfinite(f) and 0 < f <= 1):
            raise ConfigError(f"--augment-fraction must be in (0, 1], got {f}")
        if not self.augment and (s, f) != (1.0, 1.0):
            raise ConfigError(
                "--augment-strength and --augment-fraction need --augment"
            )

    def lr_at(self, epoch: int) -> float:
        """Epoch ``epoch``'s learning rate (from 1): ``lr * lr_decay ** (epoch-1)``."""
        return self.lr * self.lr_decay ** (epoch - 1)

    def check_last_rate(self) -> None:
        """Refuse a rate that decays below the smallest normal number of ``dtype``.

        There Adam's steps round to nothing and the epochs would train without
        moving the weights (``--lr-decay 1e-320``, or 0.5 over 2,000 epochs).
        """
        if self.dtype not in DTYPES:
            return
        last, tiny = self.lr_at(self.epochs), float(np.finfo(self.dtype).tiny)
        if last >= tiny:
            return
        rate = f"--lr {self.lr}"
        if self.lr_decay != 1:
            rate += (
                f" decayed by {self.lr_decay} over {self.epochs} epochs comes to "
                f"{last:.3g}, which"
            )
        raise ConfigError(
            f"{rate} is below the smallest {self.dtype} number ({tiny:.3g}): "
            "the weights would stop moving"
        )
