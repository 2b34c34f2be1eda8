"""The explorer's numbers: one drawn digit through the model, forward and back.

Everything the page shows is computed here, with the engine's own functions
and no web framework, so each number can be checked against the engine:

* ``forward``: the class probabilities (``MLP.predict_proba``) and the hidden
  activations ``h_l = relu(h_{l-1} W_l + b_l)`` of one example (of a CNN, its
  first convolution's feature maps and kernels instead: ``feature_maps``);
* ``precise``: ``1 - p`` and ``-log p`` in float64, which still read where a
  sure float32 model's ``p`` is exactly 1.0;
* ``backward``: for one example and its true class ``y``, the gradients of
  the loss ``L = -log p_y`` along the way down: ``dL/dlogits = p - onehot(y)``
  (C,), ``dL/dh_l`` for every hidden layer (H_l,) (both from
  ``MLP.backward``), and ``dL/dW1`` (D, H1),
  of which the columns of the most responsible hidden units are returned
  (``dL/dW1[:, j] = x * dL/dz1_j``, so they are the units with the largest
  ``|dL/dz1_j|``, ``z1`` the pre-activation); of a CNN, ``dL/dlogits`` and
  every kernel of its first convolution beside its gradient;
* ``step``: one step of Adam (lr 0.001, the engine's default mode) on that one
  example, applied to a copy of the loaded model; the Adam and the copy live
  until ``reset``.

A ``Session`` holds the loaded model (never changed), the stepping copy and
its Adam, behind a lock, since the web server calls it from several threads.
Shapes: D = 784 inputs, H_l units of hidden layer l, C classes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backprop.app.explorer import feature_maps
from backprop.app.photos.prepare import RECIPES, SIDE
from backprop.app.runs import load_model
from backprop.cnn import CNN
from backprop.data import class_names_for
from backprop.errors import ConfigError, DataError
from backprop.layers import relu_backward
from backprop.losses import softmax, softmax_cross_entropy
from backprop.model import MLP
from backprop.optim import Adam

LR = 1e-3  # the paper's learning rate, for the explorer's steps
TOP_UNITS = 8  # hidden units whose dL/dW1 column the page draws


def check_pixels(pixels: Any, size: int = SIDE * SIDE) -> np.ndarray:
    """A list of ``size`` numbers in [0, 1] (from JSON) as an input vector.

    Raises:
        DataError: not a flat list of ``size`` finite numbers in [0, 1].
    """
    if not isinstance(pixels, list) or len(pixels) != size:
        got = f"{len(pixels)} values" if isinstance(pixels, list) else "no list"
        raise DataError(f"'pixels' must be a list of {size} numbers, got {got}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pixels):
        raise DataError("'pixels' must hold numbers only")
    try:
        x = np.asarray(pixels, dtype=np.float64)  # (D,)
    except OverflowError:  # an integer of hundreds of digits
        raise DataError("'pixels' must be finite numbers in [0, 1]") from None
    if not (np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
        raise DataError("'pixels' must be finite numbers in [0, 1]")
    return x


def check_label(label: Any, num_classes: int) -> int:
    """A class index from JSON.

    Raises:
        DataError: not an integer in [0, num_classes).
    """
    if isinstance(label, bool) or not isinstance(label, int):
        raise DataError(f"'label' must be an integer class, got {label!r}")
    if not 0 <= label < num_classes:
        raise DataError(f"'label' must be in 0..{num_classes - 1}, got {label}")
    return label


def forward(model: MLP | CNN, x: np.ndarray) -> dict[str, Any]:
    """One example forward: probabilities, prediction and hidden activations.

    Args:
        model: the model.
        x: one input, (D,).

    Returns:
        ``probabilities`` (C,), ``prediction`` (the most probable class),
        ``logits`` (C,), ``hidden``: one list (H_l,) per hidden layer, each
        ``relu(h_{l-1} W_l + b_l)`` (a CNN: ``maps`` (F, OH*OW) and
        ``kernels`` (F, KH*KW) of its first convolution instead), and two
        lists (C,) that read where the model is sure (``precise``):
        ``losses``, the loss ``-log p_c`` had the label been c, and
        ``complement``, ``1 - p_c``.
    """
    logits, caches = model.forward(x.reshape(1, -1).astype(model.dtype))  # (1, C)
    probs = softmax(logits)[0]  # (C,)
    if isinstance(model, CNN):
        view = feature_maps.view(model, caches)  # maps and kernels
    else:
        hidden = [relu_out[0] for _, relu_out in caches if relu_out is not None]
        view = {"hidden": [h.tolist() for h in hidden]}
    return {
        "probabilities": probs.tolist(),
        "prediction": int(probs.argmax()),
        "logits": logits[0].tolist(),
        **view,
        **precise(logits[0]),
    }


def precise(logits: np.ndarray) -> dict[str, list[float]]:
    """``-log p`` and ``1 - p`` of every class, in float64 from the logits.

    In float32 a sure model's ``p`` of its class rounds to exactly 1.0 (and
    its loss to 0.0) once the other classes share less than 6e-8; a step
    then seems to change nothing. The logits still differ, so in float64
    ``1 - p = sum of the others' p`` (computed as ``-expm1(log p)``) reads
    3e-9 where float32 says 0, and shows a step move it.

    Args:
        logits: one example's logits, (C,).

    Returns:
        ``losses``: ``-log p_c`` (C,); ``complement``: ``1 - p_c`` (C,).
    """
    z = np.asarray(logits, dtype=np.float64)  # (C,)
    top = int(z.argmax())
    e = np.exp(z - z[top])  # (C,), e[top] = 1
    others = np.delete(e, top).sum()  # the other classes, without the top's 1
    log_p = z - z[top] - np.log1p(others)  # (C,) log-softmax
    return {"losses": (-log_p).tolist(), "complement": (-np.expm1(log_p)).tolist()}


def backward(model: MLP | CNN, x: np.ndarray, label: int) -> dict[str, Any]:
    """One example backward, keeping the gradient at every layer.

    ``MLP.backward(..., return_hidden=True)``: the engine's own backward pass
    (so the parameter gradients are ``model.loss_and_grads``'s), which also
    hands back ``dL/dh`` of each hidden layer on its way down.

    Args:
        model: the model.
        x: one input, (D,).
        label: its true class.

    Returns:
        ``loss``, ``grad_logits`` (C,), ``grad_hidden``: one list (H_l,) per
        hidden layer, ``grads``: every parameter's gradient (arrays, named
        like ``model.params``) and ``grad_pre1``: dL/dz1 (H1,), the gradient
        at the first layer's pre-activation. A CNN: ``loss``,
        ``grad_logits`` and ``grads`` alone (``CNN.backward``).
    """
    xb = x.reshape(1, -1).astype(model.dtype)  # (1, D)
    logits, caches = model.forward(xb)  # (1, C)
    loss, dlogits = softmax_cross_entropy(logits, np.array([label]))  # (), (1, C)
    if isinstance(model, CNN):  # no hidden units: the kernels' gradients
        grads = model.backward(dlogits, caches)
        return {"loss": float(loss), "grad_logits": dlogits[0].tolist(), "grads": grads}
    grads, dhidden = model.backward(dlogits, caches, return_hidden=True)
    if dhidden:  # dL/dz1 = dL/dh1 where the ReLU passed, else 0
        grad_pre1 = relu_backward(dhidden[0], caches[0][1])[0]  # (H1,)
    else:  # no hidden layer: the first layer's output is the logits
        grad_pre1 = dlogits[0]  # (C,)
    return {
        "loss": float(loss),
        "grad_logits": dlogits[0].tolist(),
        "grad_hidden": [g[0].tolist() for g in dhidden],
        "grads": grads,
        "grad_pre1": grad_pre1,
    }


def responsible_units(grad_pre1: np.ndarray, count: int = TOP_UNITS) -> list[int]:
    """The first-layer units with the largest ``|dL/dz1_j|``, largest first.

    ``dL/dW1[:, j] = x * dL/dz1_j``, so these are the columns of dL/dW1 with
    the largest norms. Units whose gradient is 0 (an inactive ReLU) are left
    out.
    """
    order = np.argsort(-np.abs(grad_pre1), kind="stable")[:count]
    return [int(j) for j in order if grad_pre1[j] != 0]


class Session:
    """A loaded model, the copy the page steps on, and that copy's Adam.

    Args:
        model: the loaded model (an MLP or a CNN); it is copied, never changed.
        class_names: one name per class.
        recipe: how images are prepared (``backprop.app.photos.prepare.RECIPES``).
        history: the run's per-epoch records (``history.json``).
        source: the model's name for the page: its run folder's name, not a
            path (``/api/model`` shows it to whoever asks).

    Raises:
        ConfigError: the model does not take 28x28 images (a CNN: or has no
            convolution).
    """

    def __init__(
        self,
        model: MLP | CNN,
        class_names: Sequence[str],
        *,
        recipe: str = "mnist",
        history: list[dict] | None = None,
        source: str = "",
    ) -> None:
        if model.sizes[0] != SIDE * SIDE:
            raise ConfigError(
                f"the explorer draws {SIDE}x{SIDE} digits; this model takes "
                f"{model.sizes[0]} inputs"
            )
        self.conv = feature_maps.conv_info(model) if isinstance(model, CNN) else None
        self.loaded = model
        self.class_names = list(class_names)
        self.recipe = recipe if recipe in RECIPES else "mnist"
        self.history = list(history or [])
        self.source = source
        self.lock = threading.Lock()
        self.reset()

    @classmethod
    def from_run(cls, path: str | Path) -> Session:
        """A session on a run folder's (or a model.npz's) model, on the CPU.

        Raises:
            CheckpointError: the model cannot be loaded.
            ConfigError: it does not take 28x28 images.
        """
        model, ckpt, _ = load_model(path, device="cpu")
        dataset = ckpt.config.get("dataset", "mnist")
        where = Path(path).resolve()
        return cls(
            model,
            class_names_for(dataset, model.sizes[-1]),
            recipe=dataset,
            history=ckpt.history,
            source=where.parent.name if where.is_file() else where.name,
        )

    def reset(self) -> dict[str, Any]:
        """Throw away the steps: a fresh copy of the loaded model, a fresh Adam."""
        with self.lock:
            if isinstance(self.loaded, CNN):
                self.model = feature_maps.copy_of(self.loaded)
            else:
                self.model = MLP.from_params(self.loaded.params)  # a copy
            self.opt = Adam(lr=LR)  # the engine's default mode, Keras's
        return {"steps": 0}

    @property
    def steps(self) -> int:
        """Adam steps taken since the last reset."""
        return self.opt.t

    def info(self) -> dict[str, Any]:
        """What the page shows about the model; ``conv`` is a CNN's alone."""
        return {
            "model": "mlp" if self.conv is None else "cnn",
            **({} if self.conv is None else {"conv": self.conv}),
            "sizes": self.loaded.sizes,
            "dtype": self.loaded.dtype,
            "class_names": self.class_names,
            "recipe": self.recipe,
            "source": self.source,
            "lr": LR,
            "adam": self.opt.mode,
            "steps": self.steps,
            "epochs": len(self.history),
        }

    def predict(self, x: np.ndarray) -> dict[str, Any]:
        """``forward`` on the stepping copy, with the input it saw (D,)."""
        with self.lock:
            return {
                "prepared": np.asarray(x, np.float64).tolist(),
                **forward(self.model, x),
                "steps": self.steps,
            }

    def backward(self, x: np.ndarray, label: int) -> dict[str, Any]:
        """``backward`` on the stepping copy, with the most responsible units.

        Returns:
            ``label``, ``loss``, ``probabilities``, ``losses`` and
            ``complement`` (``precise``), ``grad_logits``,
            ``grad_hidden``, ``units`` (for each responsible unit j: ``unit``,
            ``grad_weights`` = dL/dW1[:, j] (D,) and ``weights`` = W1[:, j]
            (D,)) and ``steps``. A CNN: no ``grad_hidden``, and ``units``
            are its first kernels (``feature_maps.kernel_units``).
        """
        label = check_label(label, self.loaded.sizes[-1])
        with self.lock:
            result = backward(self.model, x, label)
            grads = result.pop("grads")
            if isinstance(self.model, CNN):
                result["units"] = feature_maps.kernel_units(self.model, grads)
            else:
                w1, dw1 = self.model.params["dense1.w"], grads["dense1.w"]  # (D, H1)
                result["units"] = [
                    {
                        "unit": j,
                        "grad_weights": dw1[:, j].tolist(),
                        "weights": w1[:, j].tolist(),
                    }
                    for j in responsible_units(result.pop("grad_pre1"))
                ]
            seen = forward(self.model, x)
            return {
                "label": label,
                **{k: seen[k] for k in ("probabilities", "losses", "complement")},
                **result,
            }

    def step(self, x: np.ndarray, label: int) -> dict[str, Any]:
        """One Adam step on the stepping copy, for this example and class.

        Returns:
            ``loss_before``, ``probabilities_before``, ``losses_before`` and
            ``complement_before`` (C,), then what ``predict`` returns after
            the step, and ``loss`` after it.
        """
        label = check_label(label, self.loaded.sizes[-1])
        xb = x.reshape(1, -1).astype(self.loaded.dtype)  # (1, D)
        with self.lock:
            before = forward(self.model, x)
            loss, grads = self.model.loss_and_grads(xb, np.array([label]))
            self.opt.step(self.model.params, grads)
            after = forward(self.model, x)
            loss_after, _ = self.model.loss_and_grads(xb, np.array([label]))
        return {
            "label": label,
            "loss_before": float(loss),
            "probabilities_before": before["probabilities"],
            "losses_before": before["losses"],
            "complement_before": before["complement"],
            "loss": float(loss_after),
            "prepared": np.asarray(x, np.float64).tolist(),
            **after,
            "steps": self.steps,
        }
