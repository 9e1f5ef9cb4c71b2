"""Frozen-feature baselines: a trained network's pooled features, fed to classic scikit-learn classifiers.

* :mod:`~ignite_cv.features.extract`: the backbone's pooled features of a split (the input of the
  model's head), and their safetensors file.
* :mod:`~ignite_cv.features.classifiers`: logistic regression, an RBF SVM and gradient boosting, each
  chosen by a stratified cross-validated grid search, with optional class rebalancing.
* :mod:`~ignite_cv.features.workflow`: ``tools/features.py``: export, fit on train + val, report on test.
"""
