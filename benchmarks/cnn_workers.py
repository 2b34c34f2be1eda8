"""The CNN rows of ``compare.py``: LeNet-5 in the engine, PyTorch and Keras.

``workers.py`` runs these when ``compare.py --models cnn`` (or ``mlp,cnn``)
asks for them; each is one process, as the MLP rows are. Every row trains
``backprop.cnn.CNN``'s default network (``LENET5``: 5x5 convolutions to 6
and 16 maps, each followed by 2x2 max-pooling, then dense 120, 84, 10; the
``--hidden`` flag is the MLP's and does not change it) from the same initial
weights (drawn by the engine from ``--seed``), batch size, learning rate and
Adam settings:

* ``engine-cnn``: ``backprop.loop.train_epoch`` with the step training takes
  (``--kernels auto``): ``backprop.kernels.cnn_step.FusedCNNStep``, each
  convolution's ReLU and max-pooling fused into one Numba pass (the
  reference step where Numba is missing);
* ``engine-cnn-reference``: the same with the lectures' reference step,
  ``CNN.loss_and_grads`` then ``Adam.step``.
* ``pytorch-cnn``: ``benchmarks/cnn_epoch.py``'s twin (``nn.Conv2d``,
  ``max_pool2d``, ``nn.Linear``) and ``torch.optim.Adam``, in the same batch
  order as the engine.
* ``keras-cnn``: ``tf_reference.keras_cnn.keras_cnn``'s model, trained by
  ``model.fit`` (it shuffles by itself).
"""

from __future__ import annotations

import math
import time

import numpy as np

from backprop.cnn import CNN
from backprop.data import NUM_CLASSES, load_pixels
from backprop.kernels import make_step, resolve_kernels
from backprop.loop import loss_and_accuracy, train_epoch
from backprop.optim import Adam

CNN_ROWS = ("engine-cnn", "engine-cnn-reference", "pytorch-cnn", "keras-cnn")
LR = 1e-3


def initial_cnn(seed: int) -> tuple[CNN, np.random.Generator]:
    """LeNet-5's initial weights, then the generator that draws the batches."""
    rng = np.random.default_rng(seed)
    return CNN(rng=rng, dtype="float32", device="cpu"), rng


def run_engine_cnn(args, data, timed_epochs, kernels: str = "auto") -> dict:
    """The engine's CNN: ``train_epoch`` with the ``kernels`` step, on NumPy."""
    _, (xt, yt) = data
    model, rng = initial_cnn(args.seed)
    (pixels, y), _ = load_pixels("mnist", args.data_dir)
    x, y = pixels[: args.train_limit], y[: args.train_limit]  # (N, D) uint8, (N,)
    opt = Adam(lr=LR)
    kernels = resolve_kernels(kernels, np, announce=False)
    step = make_step(kernels, model, opt, x, y, args.batch_size)  # compiles here

    def run_epoch() -> None:
        train_epoch(model, opt, x, y, args.batch_size, rng, step=step)

    seconds = timed_epochs(run_epoch, args.warmup, args.epochs)
    return {
        "epoch_seconds": seconds,
        "test_accuracy": loss_and_accuracy(model, xt, yt)[1],
        "sizes": model.sizes,
        "kernels": kernels,
    }


def run_pytorch_cnn(args, data, timed_epochs) -> dict:
    """The same network in PyTorch (``cnn_epoch.torch_twin``), the same batches."""
    import torch
    from cnn_epoch import torch_twin

    (x, y), (xt, yt) = data
    model, rng = initial_cnn(args.seed)
    twin = torch_twin(model)
    opt = torch.optim.Adam(twin.parameters(), lr=LR, eps=1e-7)
    x, y = torch.from_numpy(x), torch.from_numpy(y)

    def run_epoch() -> None:
        order = torch.from_numpy(rng.permutation(len(x)))  # (N,)
        for i in range(math.ceil(len(x) / args.batch_size)):
            batch = order[i * args.batch_size : (i + 1) * args.batch_size]
            loss = torch.nn.functional.cross_entropy(twin(x[batch]), y[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    seconds = timed_epochs(run_epoch, args.warmup, args.epochs)
    with torch.no_grad():
        predicted = twin(torch.from_numpy(xt)).argmax(1).numpy()
    return {
        "epoch_seconds": seconds,
        "test_accuracy": float((predicted == yt).mean()),
        "torch_threads": torch.get_num_threads(),
        "sizes": model.sizes,
    }


def run_keras_cnn(args, data) -> dict:
    """The same network in Keras (``keras_cnn``), trained by ``model.fit``."""
    import keras

    from tf_reference.keras_cnn import keras_cnn

    (x, y), (xt, yt) = data
    engine_model, _ = initial_cnn(args.seed)
    shape = engine_model.input_shape
    model = keras_cnn(engine_model.params, engine_model.layers, shape)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LR),
        loss="categorical_crossentropy",
    )
    y_onehot = np.eye(NUM_CLASSES, dtype=np.float32)[y]  # (N, C)
    starts: list[float] = []
    ends: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: starts.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()),
    )
    model.fit(
        x,
        y_onehot,
        batch_size=args.batch_size,
        epochs=args.warmup + args.epochs,
        shuffle=True,
        verbose=0,
        callbacks=[timer],
    )
    seconds = [end - start for start, end in zip(starts, ends, strict=True)]
    probs = model.predict(xt, batch_size=1024, verbose=0)  # (N, C)
    return {
        "epoch_seconds": seconds[args.warmup :],
        "test_accuracy": float((probs.argmax(axis=1) == yt).mean()),
        "sizes": engine_model.sizes,
    }


def run_cnn(name: str, args, data, timed_epochs) -> dict:
    """Train and time the CNN row ``name`` (one of ``CNN_ROWS``)."""
    if name == "engine-cnn":
        return run_engine_cnn(args, data, timed_epochs)
    if name == "engine-cnn-reference":
        return run_engine_cnn(args, data, timed_epochs, "reference")
    if name == "pytorch-cnn":
        return run_pytorch_cnn(args, data, timed_epochs)
    return run_keras_cnn(args, data)
