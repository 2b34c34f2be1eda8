"""Lecture 12's graded exercise: planted slips get named, with their hint."""

from __future__ import annotations

import io
import types

import numpy as np

from exercises import grade
from exercises.checks_conv import CONV_BACKWARD


def planted(backward):
    """The solution module with ``conv2d_backward`` replaced."""
    module = types.ModuleType("planted_conv_backward")
    module.__dict__.update(vars(grade.load("conv_backward", solution=True)))
    module.conv2d_backward = backward
    return module


def graded(module) -> tuple[int, str]:
    out = io.StringIO()
    passed, _ = grade.grade(CONV_BACKWARD, module, out)
    return passed, out.getvalue()


SOLUTION = grade.load("conv_backward", solution=True).conv2d_backward


def test_the_exercise_is_registered_for_the_grader():
    assert grade.EXERCISES["conv_backward"] is CONV_BACKWARD
    assert CONV_BACKWARD.lecture == 12


def test_a_flipped_kernel_is_named_with_its_hint():
    def flipped(dout, cache):
        xpad, w, *rest = cache
        dx, _, _ = SOLUTION(dout, (xpad, w[::-1, ::-1], *rest))
        _, dw, db = SOLUTION(dout, cache)
        return dx, dw, db

    passed, text = graded(planted(flipped))
    assert passed == 2  # db and dw still right
    assert "FAIL  dx" in text and "hint: the kernel is flipped" in text
    assert "dx[0, " in text and "the engine's is" in text  # the first wrong entry


def test_a_padding_off_by_one_is_named_with_its_hint():
    def rounded_up(dout, cache):
        xpad, w, stride, top, left, x_shape = cache
        # the slip: ceil(pad_total / 2) on top, as if the extra row went first
        total = xpad.shape[1] - x_shape[1]  # pad_total of the rows
        wrong_top = (total + 1) // 2  # top is total // 2
        return SOLUTION(dout, (xpad, w, stride, wrong_top, left, x_shape))

    passed, text = graded(planted(rounded_up))
    assert "FAIL  dx" in text
    assert "the padding is off by one" in text and "+1 row(s)" in text


def test_a_flipped_kernel_gradient_gets_its_hint():
    def dw_flipped(dout, cache):
        dx, dw, db = SOLUTION(dout, cache)
        return dx, dw[::-1, ::-1], db

    passed, text = graded(planted(dw_flipped))
    assert "FAIL  dw" in text and "flipped in both directions" in text


def test_a_wrong_shape_is_one_line():
    def no_channels(dout, cache):
        dx, dw, db = SOLUTION(dout, cache)
        return dx, dw, np.zeros(1)

    _, text = graded(planted(no_channels))
    assert "db has shape (1,), expected (2,)" in text
