"""The one error of converting between the engine and TensorFlow or Keras."""

from __future__ import annotations

from backprop.errors import BackpropError


class ConversionError(BackpropError):
    """Engine parameters and a TensorFlow or Keras model do not fit each other."""
