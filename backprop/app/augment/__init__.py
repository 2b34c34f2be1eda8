"""``--augment``: random distortions of the training digits, fresh every epoch.

* ``settings``: what the distortions are and how strong (``Augmentation``),
  and the random draws of a batch (``draw``);
* ``reference``: the distortions written with scipy.ndimage, over a batch;
* ``epoch``: a distorted copy of the training set before every epoch.

The fast version is ``backprop.kernels.cpu.distort``, tested against
``reference``. Importing this package imports scipy only when distorting.
"""

from backprop.app.augment.epoch import (
    EpochAugmenter,
    augmentation_record,
    distort_all,
    draw_entropy,
)
from backprop.app.augment.settings import Augmentation

__all__ = [
    "Augmentation",
    "EpochAugmenter",
    "augmentation_record",
    "distort_all",
    "draw_entropy",
]
