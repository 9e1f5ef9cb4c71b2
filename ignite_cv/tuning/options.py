"""The tuner's own options (``tools/tune.py``); the recipe's options are the fixed flags of every trial."""

from __future__ import annotations

from dataclasses import dataclass

from ignite_cv.utils.options import option

PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("auto", "maximize", "minimize")
#: Config fields the tuner sets for every trial (not searchable).
TUNER_FIELDS = ("output_dir", "run_name", "resume", "monitor", "monitor_mode", "recipe")


@dataclass
class TuneOptions:
    trials: int = option(
        16,
        "the study's target number of finished (complete or pruned) trials, over all workers and runs; "
        "rerunning with the same or a larger number continues the study up to it",
        minimum=1,
    )
    metric: str = option(
        "",
        "validation metric to optimise (default: the recipe's --monitor); each trial monitors it, so "
        "its best checkpoint, early stopping and the trial's value agree",
    )
    direction: str = option(
        "auto", "maximize or minimize --metric (auto: minimize loss, maximize the others)", choices=DIRECTIONS
    )
    pruner: str = option(
        "median",
        "stop unpromising trials at an epoch's validation: median (below the median of earlier trials at "
        "that epoch), hyperband, or none",
        choices=PRUNERS,
    )
    pruner_startup_trials: int = option(
        4, "median pruner: trials that finish unpruned before pruning starts", minimum=0
    )
    pruner_warmup_epochs: int = option(
        1, "median pruner: the first epochs of a trial, whose validation never prunes it", minimum=0
    )
    study_name: str = option(
        "",
        "the study's name in the storage (default: <recipe>-tune); its folder is <output-dir>/<study-name>",
    )
    storage: str = option(
        "",
        "Optuna RDB storage URL shared by the workers (default: sqlite:///<study folder>/study.db); "
        "postgresql://USER:PASS@HOST/DB or mysql+pymysql://USER:PASS@HOST/DB for many machines",
    )
    heartbeat: int = option(
        10,
        "seconds between a running trial's heartbeats; a trial silent for 3x this long (its worker was "
        "killed) is marked failed and run again",
        minimum=1,
    )
    sampler_seed: int = option(
        -1, "seed of the TPE sampler (-1 = random; give each worker its own when you set it)", minimum=-1
    )
    refit: bool = option(
        False, "after the search, retrain the best configuration on train+val and report on test"
    )
    threads: int = option(0, "CPU threads for torch (0 = torch's default)", minimum=0)

    @property
    def grace_period(self) -> int:
        """Seconds without a heartbeat after which a running trial counts as dead."""
        return 3 * self.heartbeat
