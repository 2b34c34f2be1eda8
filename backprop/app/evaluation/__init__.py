"""What ``evaluate`` and ``crossval`` compute and draw.

``metrics`` (confusion matrix, per-class report), ``outputs`` (the files
``evaluate`` writes), ``plots`` and ``pages`` (the pictures), ``folds``
(stratified k-fold cross-validation through the one trainer).
"""
