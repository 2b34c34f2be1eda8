"""The application around the engine: everything a user runs.

The engine (``backprop/`` outside this folder) is what the lectures teach:
layers, losses, the model, Adam, the training loop, the fused kernels, the
gradient checker. This package uses it and is never imported by it:

* ``commands/``: ``train``, ``evaluate``, ``crossval``, ``predict``,
  ``gradcheck``, ``explore``: thin ``main(argv=None)`` functions over the rest
  (``cli`` dispatches ``backprop NAME``);
* ``config``, ``trainer``, ``records``: a run's settings, the one trainer that
  builds and fits it, its history records;
* ``runs/``: run folders, checkpoints, locks and the checks before writing;
* ``photos/``: image files and photos of pages turned into 28x28 inputs;
* ``augment/``: ``--augment``'s distortions;
* ``evaluation/``: reports, pictures, metrics and cross-validation;
* ``explorer/``: the local page that shows backprop on a drawn digit;
* ``memory``, ``finite``: the guards before and during a run.
"""
