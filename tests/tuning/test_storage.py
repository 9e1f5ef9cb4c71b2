"""The study database: URLs that cannot be opened, a study that exists with another direction or metric."""

from __future__ import annotations

import optuna
import pytest

from ignite_cv.tuning.storage import default_storage_url, open_storage, open_study, shown_url
from ignite_cv.utils.errors import UserError


def test_default_url_and_masked_passwords(tmp_path):
    assert default_storage_url(tmp_path / "study") == f"sqlite:///{tmp_path / 'study' / 'study.db'}"
    assert (
        shown_url("postgresql://me:s3cr3t@db.example:5432/optuna")
        == "postgresql://me:***@db.example:5432/optuna"
    )
    assert shown_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "sqlite:////no/such/folder/study.db",
            "cannot open --storage sqlite:////no/such/folder/study.db (unable to open",
        ),
        ("redis://localhost:6379", "is not a database URL Optuna's RDB storage takes"),
        ("journal.log", "is not a database URL"),
        (
            "mysql+nosuchdriver://u:pw@localhost/db",
            "cannot open --storage mysql+nosuchdriver://u:***@localhost/db",
        ),
    ],
)
def test_unopenable_storage_is_a_one_line_error(url, message):
    with pytest.raises(UserError) as err:
        open_storage(url, 10, 30)
    assert message in str(err.value) and "\n" not in str(err.value) and "pw" not in str(err.value)


def test_an_existing_study_with_another_direction_or_metric_is_refused(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", 10, 30)
    study = open_study(storage, "s", "maximize", "accuracy")
    study.add_trial(optuna.trial.create_trial(value=0.5, params={}, distributions={}))
    again = open_study(storage, "s", "maximize", "accuracy")
    assert len(again.trials) == 1 and again.user_attrs["metric"] == "accuracy"
    with pytest.raises(UserError) as err:
        open_study(storage, "s", "minimize", "accuracy")
    assert str(err.value) == (
        "study 's' already exists in the storage and its direction is maximize, not minimize; "
        "pass --direction maximize to continue it, or another --study-name for a new study"
    )
    with pytest.raises(UserError, match="optimises 'accuracy', not 'loss'; pass --metric accuracy"):
        open_study(storage, "s", "maximize", "loss")


def test_heartbeats_are_on(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", 7, 21)
    assert (storage.heartbeat_interval, storage.grace_period) == (7, 21)
    assert storage.get_heartbeat_stale_trial_callback() is not None
