"""The study's database: Optuna's RDB storage (SQLite file, PostgreSQL, MySQL) with heartbeats, and
the study in it (created once, then loaded by every rerun and every worker).

Heartbeats are how a killed worker's trial is noticed: a running trial's worker writes a heartbeat
every ``--heartbeat`` seconds; a trial whose heartbeat is older than the grace period is marked
failed by the next worker that looks (:func:`optuna.storages.fail_stale_trials`) and
:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` queues it again with the same parameters.
Optuna's journal-file storage has no heartbeat, so it is not offered: SQLite serves one machine
(several workers included), a database server many.
"""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import StudyDirection

from ignite_cv.utils.errors import UserError

#: Seconds a SQLite writer waits for another worker's lock before it fails (trials write rarely).
SQLITE_LOCK_TIMEOUT_S = 60
#: Seconds a database server may take to accept a connection.
CONNECT_TIMEOUT_S = 10
#: Tries to open a database whose tables another worker may be creating at the same moment.
CREATE_ATTEMPTS = 5


def default_storage_url(study_folder: Path) -> str:
    return f"sqlite:///{study_folder.resolve() / 'study.db'}"


def shown_url(url: str) -> str:
    """``url`` with any password masked (for messages and files)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def open_storage(url: str, heartbeat_s: int, grace_s: int) -> RDBStorage:
    """The RDB storage at ``url`` with heartbeats; a one-line UserError when it cannot be opened."""
    if url.startswith("sqlite:"):
        engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
    elif url.startswith(("postgresql", "mysql")):
        engine_kwargs = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    else:
        raise UserError(
            f"--storage {shown_url(url)} is not a database URL Optuna's RDB storage takes",
            "use sqlite:///PATH.db, postgresql://USER:PASS@HOST/DB or mysql+pymysql://USER:PASS@HOST/DB",
        )
    try:
        return _rdb_storage(url, engine_kwargs, heartbeat_s, grace_s)
    except ImportError as err:
        raise UserError(
            f"--storage {shown_url(url)} needs a database driver that is not installed "
            f"({_cause(err.__cause__ or err)})",
            "pip install 'psycopg[binary]' for postgresql://, PyMySQL for mysql+pymysql://",
        ) from None
    except Exception as err:  # SQLAlchemy's errors: bad URL, unreachable server, unwritable file
        raise UserError(
            f"cannot open --storage {shown_url(url)} ({_cause(err)})",
            "check the URL, that the database server is up and reachable, and that the folder exists",
        ) from None


#: Errors of two workers creating one database's tables and version row at once (SQLite, PostgreSQL, MySQL).
_RACING = (
    "already exists",
    "database is locked",
    "UNIQUE constraint failed",
    "duplicate key",
    "Duplicate entry",
)


def _rdb_storage(url: str, engine_kwargs: dict, heartbeat_s: int, grace_s: int) -> RDBStorage:
    """``RDBStorage``, retried while another worker is creating the same database's tables: its
    ``create_all`` is not atomic across processes ("table studies already exists", seen about one
    time in three when two workers start on a new SQLite file at the same instant, or a duplicate
    alembic version row)."""
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats: "experimental" since 2.8
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_s,
                    grace_period=grace_s,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(),
                )
        except Exception as err:
            racing = any(sign in str(err) for sign in _RACING)
            if not racing or attempt == CREATE_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def open_study(
    storage: RDBStorage, name: str, direction: str, metric: str, sampler=None, pruner=None
) -> optuna.Study:
    """The study ``name`` in ``storage``: created if absent, else loaded; an existing study that
    optimises another direction or metric is refused (its trials would not compare)."""
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=direction,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    wanted = StudyDirection.MAXIMIZE if direction == "maximize" else StudyDirection.MINIMIZE
    if study.direction != wanted:
        existing = "maximize" if study.direction == StudyDirection.MAXIMIZE else "minimize"
        raise UserError(
            f"study {name!r} already exists in the storage and its direction is {existing}, not {direction}",
            f"pass --direction {existing} to continue it, or another --study-name for a new study",
        )
    known = study.user_attrs.get("metric")
    if known is None:
        study.set_user_attr("metric", metric)
    elif known != metric:
        raise UserError(
            f"study {name!r} already exists in the storage and optimises {known!r}, not {metric!r}",
            f"pass --metric {known} to continue it, or another --study-name for a new study",
        )
    return study


def _cause(err: BaseException) -> str:
    """The first line of the innermost message (SQLAlchemy appends links and SQL)."""
    text = str(getattr(err, "orig", None) or err).strip().splitlines()
    return text[0] if text else type(err).__name__
