from dataclasses import dataclass

import pytest

from ignite_cv.config import TrainConfig
from ignite_cv.errors import UserError
from ignite_cv.models import build_model
from ignite_cv.phases import plan_phases


@dataclass
class _Transfer(TrainConfig):
    model: str = "resnet18"
    epochs: int = 10
    warmup_epochs: int = 3
    optimizer: str = "sgd"
    lr: float = 1e-4
    head_optimizer: str = "adam"
    head_lr: float = 1e-3


def _model():
    return build_model("resnet18", 3, (32, 32), 2)


def test_finetune_plans_a_head_warmup_then_unfreezing_within_the_epoch_budget():
    model = _model()
    warmup, finetune = plan_phases(_Transfer(mode="finetune", unfreeze="2"), model)
    assert (warmup.name, warmup.epochs, warmup.optimizer, warmup.lr) == ("warmup", 3, "adam", 1e-3)
    assert (finetune.name, finetune.epochs, finetune.optimizer, finetune.lr) == ("finetune", 7, "sgd", 1e-4)
    assert warmup.prepare(model)["num_unfrozen_blocks"] == 0
    assert all(not p.requires_grad for n, p in model.named_parameters() if not n.startswith("head"))
    assert finetune.prepare(model)["unfrozen_blocks"] == ["layer3", "layer4"]
    assert model.layer3[0].conv1.weight.requires_grad and not model.layer2[0].conv1.weight.requires_grad


def test_extract_is_one_head_phase_and_scratch_one_full_phase():
    (extract,) = plan_phases(_Transfer(mode="extract"), _model())
    assert (extract.name, extract.epochs, extract.optimizer) == ("extract", 10, "adam")
    (scratch,) = plan_phases(_Transfer(mode="scratch"), _model())
    assert (scratch.name, scratch.optimizer, scratch.prepare) == ("train", "sgd", None)


def test_a_warmup_that_eats_the_budget_is_refused():
    with pytest.raises(UserError, match="--warmup-epochs 10 leaves no epochs"):
        plan_phases(_Transfer(mode="finetune", warmup_epochs=10), _model())
