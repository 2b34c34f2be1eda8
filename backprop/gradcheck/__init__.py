"""Gradient checking: compare a backward pass with central differences.

* ``numerical``: central differences, the relative error, the step and
  tolerance for each dtype (what lecture 5 derives).
* ``checker``: the check itself, with a noise floor and exact detection of
  ReLU kinks, for any function, a layer or a whole ``MLP``.
* ``report``: what a check found, and the class-room table.

``python -m backprop.gradcheck`` checks the MLP's backward pass and prints the
table (``backprop.app.commands.gradcheck``).
"""

from backprop.gradcheck.checker import (
    NOISE_FACTOR,
    check_gradient,
    check_layer,
    check_model,
    model_loss,
    noise_floor,
)
from backprop.gradcheck.numerical import (
    POLICIES,
    Policy,
    numerical_gradient,
    numerical_gradient_array,
    policy_for,
    relative_error,
    sample_indices,
)
from backprop.gradcheck.report import GradCheckReport, compare, format_table

__all__ = [
    "NOISE_FACTOR",
    "POLICIES",
    "GradCheckReport",
    "Policy",
    "check_gradient",
    "check_layer",
    "check_model",
    "compare",
    "format_table",
    "model_loss",
    "noise_floor",
    "numerical_gradient",
    "numerical_gradient_array",
    "policy_for",
    "relative_error",
    "sample_indices",
]
