from dataclasses import dataclass

import pytest
import torch

from ignite_cv.config import TrainConfig
from ignite_cv.models import build_model
from ignite_cv.models.options import OPTIMIZERS, TransferOptions
from ignite_cv.phases import describe_plan, fusable, make_optimizer, plan_phases, trained_parameters
from ignite_cv.utils.errors import UserError


@dataclass
class _Transfer(TransferOptions, TrainConfig):
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


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizers_use_the_fused_kernel_and_follow_the_default_update_rule(name):
    torch.manual_seed(0)
    fused_model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    default_model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    default_model.load_state_dict(fused_model.state_dict())
    fused = make_optimizer(name, fused_model.parameters(), 0.05, 0.01, 0.9)
    defaults = {k: v for k, v in fused.defaults.items() if k != "decoupled_weight_decay"}
    default = type(fused)(default_model.parameters(), **{**defaults, "fused": None, "foreach": False})
    assert fused.defaults["fused"] is True
    for _ in range(5):
        x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
        for model, optimizer in ((fused_model, fused), (default_model, default)):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    for a, b in zip(fused_model.parameters(), default_model.parameters()):
        assert not torch.equal(a, torch.zeros_like(a))
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_parameters_off_cpu_and_cuda_fall_back_to_the_default_kernel():
    assert fusable([torch.zeros(2, requires_grad=True)])
    meta = torch.zeros(2, device="meta", requires_grad=True)
    assert not fusable([torch.zeros(2, requires_grad=True), meta])
    optimizer = make_optimizer("adamw", [meta], 1e-3, 0.0, 0.9)
    assert not optimizer.defaults["fused"]


def test_an_unknown_optimizer_and_no_trainable_parameter_are_user_errors():
    with pytest.raises(UserError, match="unknown --optimizer 'lion'"):
        make_optimizer("lion", [torch.zeros(2, requires_grad=True)], 1e-3, 0.0, 0.9)
    with pytest.raises(UserError, match="no trainable parameters"):
        make_optimizer("sgd", [torch.zeros(2)], 1e-3, 0.0, 0.9)


def test_each_phase_reads_its_own_flags():
    config = _Transfer(
        mode="finetune",
        unfreeze="1",
        head_optimizer="adamw",
        head_lr=3e-3,
        head_weight_decay=0.0,
        head_scheduler="plateau",
        head_patience=5,
        optimizer="adam",
        lr=1e-5,
        weight_decay=1e-2,
        scheduler="cosine",
        patience=7,
        plateau_monitor="loss",
        plateau_patience=2,
        plateau_factor=0.5,
    )
    warmup, finetune = plan_phases(config, _model())
    own = lambda p: (p.optimizer, p.lr, p.weight_decay, p.scheduler, p.patience)  # noqa: E731
    assert own(warmup) == ("adamw", 3e-3, 0.0, "plateau", 5)
    assert own(finetune) == ("adam", 1e-5, 1e-2, "cosine", 7)
    for phase in (warmup, finetune):
        assert (phase.plateau_metric, phase.plateau_patience, phase.plateau_factor) == ("loss", 2, 0.5)
    assert describe_plan([warmup, finetune]) == (
        "plan: warmup 3 epochs (adamw lr 0.003 wd 0, plateau, early stopping patience 5) → "
        "finetune 7 epochs (adam lr 1e-05 wd 0.01, cosine, early stopping patience 7)"
    )


def test_the_head_warmup_keeps_a_constant_lr_by_default():
    """Bug 4 of issue 13: the warm-up took the run's cosine schedule and annealed the head's LR to ~0
    inside a one-epoch warm-up; the head phase now has its own schedule, constant unless asked."""
    warmup, finetune = plan_phases(_Transfer(mode="finetune", scheduler="cosine"), _model())
    assert (warmup.scheduler, finetune.scheduler) == ("none", "cosine")
    (extract,) = plan_phases(_Transfer(mode="extract", scheduler="cosine"), _model())
    assert extract.scheduler == "none"


def test_finetune_epochs_set_the_second_phase_and_must_add_up():
    warmup, finetune = plan_phases(
        _Transfer(mode="finetune", epochs=12, warmup_epochs=3, finetune_epochs=9), _model()
    )
    assert (warmup.epochs, finetune.epochs) == (3, 9)
    with pytest.raises(UserError, match="--epochs 10 is not --warmup-epochs 3 \\+ --finetune-epochs 9"):
        plan_phases(_Transfer(mode="finetune", epochs=10, warmup_epochs=3, finetune_epochs=9), _model())


def test_the_run_trained_the_union_of_what_its_phases_trained():
    model = _model()
    head = sum(p.numel() for p in model.head.parameters())
    layer4 = sum(p.numel() for p in model.layer4.parameters())
    total = sum(p.numel() for p in model.parameters())
    phases = plan_phases(_Transfer(mode="finetune", unfreeze="1"), model)
    assert trained_parameters(phases, model) == head + layer4
    assert all(p.requires_grad for p in model.parameters())  # the flags are put back as they were
    # a plan whose last phase trains less than an earlier one still counts the earlier one
    assert trained_parameters(list(reversed(phases)), model) == head + layer4
    assert trained_parameters(plan_phases(_Transfer(mode="extract"), model), model) == head
    assert trained_parameters(plan_phases(_Transfer(mode="scratch"), model), model) == total
