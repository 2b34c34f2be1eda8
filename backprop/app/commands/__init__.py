"""The commands: each a thin ``main(argv=None)`` over the library.

``python -m backprop.<name>`` and ``backprop <name>`` both reach
``backprop.app.commands.<name>.main``. No command imports another; what they
share is in ``common``.
"""

COMMANDS = {
    "train": "train an MLP on MNIST (the paper's experiment by default)",
    "evaluate": "report, curves, confusion matrix and galleries of a trained model",
    "crossval": "stratified k-fold cross-validation of a training configuration",
    "predict": "recognise digits in image files",
    "export": "write a trained model as an ONNX file",
    "gradcheck": "check the backward pass against central differences",
    "explore": "a local page: draw a digit, watch the forward and backward pass",
}
