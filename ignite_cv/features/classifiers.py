"""Classic classifiers on frozen features, each tuned by a stratified, cross-validated grid search.

* ``logreg``: standardized features → L2 ``LogisticRegression``, ``C`` in 0.01 … 10;
* ``svm``: standardized features → RBF ``SVC`` with Platt-calibrated probabilities, ``C`` in 0.1 … 10;
* ``gboost``: ``HistGradientBoostingClassifier``, 100 trees of depth 3 (no scaling), learning rate
  0.05 or 0.2.

The search is scikit-learn's ``GridSearchCV`` over ``StratifiedKFold(cv_folds, shuffle=True,
random_state=seed)``, scored by ROC-AUC for two classes and accuracy otherwise (the metrics a run
monitors by default), refit on all the given samples. Rebalancing (``--rebalance``):

* ``balanced``: class weights inversely proportional to class frequencies (``class_weight``);
* ``smote``: SMOTE oversampling of the minority classes *inside* each training fold (an
  imbalanced-learn pipeline, the ``[imbalance]`` extra), so no synthetic sample reaches a validation
  fold. SMOTE interpolates between neighbours, which is meaningful on feature vectors, not on pixels.
"""

from __future__ import annotations

import numpy as np

from ignite_cv.utils.errors import UserError

CLASSIFIERS = ("logreg", "svm", "gboost")
REBALANCE = ("none", "balanced", "smote")


def _estimator(name: str, balanced: bool, seed: int):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    weight = "balanced" if balanced else None
    if name == "logreg":
        return LogisticRegression(max_iter=5000, class_weight=weight), {"C": [0.01, 0.1, 1.0, 10.0]}
    if name == "svm":  # Platt probabilities, as SVC(probability=True) gave (deprecated in scikit-learn 1.9)
        svc = SVC(kernel="rbf", class_weight=weight, random_state=seed)
        calibrated = CalibratedClassifierCV(svc, method="sigmoid", ensemble=False)
        return calibrated, {"estimator__C": [0.1, 1.0, 10.0]}
    if name == "gboost":
        boost = HistGradientBoostingClassifier(
            max_iter=100, max_depth=3, early_stopping=False, class_weight=weight, random_state=seed
        )
        return boost, {"learning_rate": [0.05, 0.2]}
    raise UserError(f"unknown classifier {name!r}", f"choose one of: {', '.join(CLASSIFIERS)}")


def make_search(name: str, num_classes: int, rebalance: str = "none", cv_folds: int = 5, seed: int = 0):
    """The unfitted ``GridSearchCV`` of classifier ``name`` (see the module docstring)."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    if rebalance not in REBALANCE:
        raise UserError(f"unknown --rebalance {rebalance!r}", f"choose one of: {', '.join(REBALANCE)}")
    estimator, grid = _estimator(name, rebalance == "balanced", seed)
    steps = [] if name == "gboost" else [("scale", StandardScaler())]
    if rebalance == "smote":
        try:
            from imblearn.over_sampling import SMOTE
            from imblearn.pipeline import Pipeline
        except ImportError:
            raise UserError(
                "--rebalance smote needs imbalanced-learn",
                "pip install 'ignite_cv[imbalance]', or use balanced",
            ) from None
        steps.append(("smote", SMOTE(random_state=seed)))
    else:
        from sklearn.pipeline import Pipeline
    pipeline = Pipeline([*steps, ("classifier", estimator)])
    scoring = "roc_auc" if num_classes == 2 else "accuracy"
    return GridSearchCV(
        pipeline,
        {f"classifier__{key}": values for key, values in grid.items()},
        scoring=scoring,
        cv=StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed),
        refit=True,
        n_jobs=1,
    )


def check_cv_folds(cv_folds: int, labels: np.ndarray, rebalance: str) -> None:
    """A one-line UserError unless every class has at least ``cv_folds`` samples (and SMOTE's
    neighbours, which need two samples of a class in each training fold)."""
    counts = np.bincount(labels)
    smallest = int(counts[counts > 0].min())
    if cv_folds < 2 or cv_folds > smallest:
        raise UserError(
            f"--cv-folds {cv_folds} needs 2 <= K <= {smallest} (the smallest class's train+val samples)",
            f"pass --cv-folds {max(2, min(5, smallest))}",
        )


def fit_classifier(
    name: str,
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    rebalance: str = "none",
    cv_folds: int = 5,
    seed: int = 0,
) -> dict:
    """Fit classifier ``name`` on ``features`` (N, D); returns the fitted search's summary and model:
    ``{"model", "scoring", "cv_mean", "cv_std", "best_params"}`` (the CV score of the chosen setting)."""
    search = make_search(name, num_classes, rebalance, cv_folds, seed)
    search.fit(features, labels)
    best = search.best_index_
    return {
        "model": search.best_estimator_,
        "scoring": search.scoring,
        "cv_mean": float(search.cv_results_["mean_test_score"][best]),
        "cv_std": float(search.cv_results_["std_test_score"][best]),
        "best_params": {
            k.removeprefix("classifier__").removeprefix("estimator__"): v
            for k, v in search.best_params_.items()
        },
    }


def class_probabilities(model, features: np.ndarray, num_classes: int) -> np.ndarray:
    """``(N, num_classes)`` probabilities (columns for classes the model never saw are 0)."""
    probs = model.predict_proba(features)
    out = np.zeros((len(features), num_classes), dtype=np.float64)
    out[:, model.classes_.astype(int)] = probs
    return out
