"""Pruning options: the ``--prune-after`` family is the pruning options under a prefix, checked early."""

from __future__ import annotations

import pytest

from ignite_cv.config import TrainConfig, parse_config
from ignite_cv.prune.options import PruneOptions, check_prune_after
from ignite_cv.utils.errors import UserError


def test_prune_after_and_profile_options_are_config_flags():
    config = parse_config(
        TrainConfig, ["--prune-after", "0.4", "--prune-importance", "bn-scale", "--profile"]
    )
    assert config.prune_after == 0.4 and config.prune_importance == "bn-scale" and config.profile
    check_prune_after(config)
    config.prune_after = 1.0
    with pytest.raises(UserError, match=r"--prune-after 1.0 is outside \(0, 1\)"):
        check_prune_after(config)
    config.prune_after, config.nproc_per_node = 0.5, 2
    with pytest.raises(UserError, match="one process"):
        check_prune_after(config)


def test_the_prefixed_fields_keep_the_pruning_options_defaults_and_help():
    config = TrainConfig()
    options = PruneOptions.from_config(config)
    assert (options.importance, options.global_pruning, options.iterative_steps) == ("magnitude", False, 1)
    assert (options.finetune_epochs, options.finetune_lr) == (3, 0.0)
    assert options.finetune_peak_lr(0.5) == 0.05
    parsed = parse_config(TrainConfig, ["--prune-global", "--prune-lr", "0.01", "--prune-after", "0.3"])
    options = PruneOptions.from_config(parsed)
    assert (options.ratio, options.global_pruning, options.finetune_peak_lr(0.5)) == (0.3, True, 0.01)
