"""Hyper-parameter search with Optuna: each trial is a full ignite_cv run, in a study that lives in a
relational database (SQLite by default; PostgreSQL or MySQL for many machines).

``space`` (the ``--space`` language, checked against the config dataclass), ``options`` (the tuner's
flags), ``pruning`` (Optuna's Ignite pruning handler as a phase hook), ``storage`` (the study's
database), ``study`` (the loop that runs trials up to a target count, with several workers),
``results`` (trials.csv, best_config.json, figures) and ``refit`` (the best configuration on
train+val). Optuna is an optional extra (``pip install -e '.[tune]'``): only ``space`` and ``options``
import without it.
"""
