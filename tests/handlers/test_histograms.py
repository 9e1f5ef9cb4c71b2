"""WeightGradientHistograms on a bare Ignite Engine: every N epochs, the right norms, hooks only meanwhile."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events
from torch import nn

from ignite_cv.handlers.histograms import WeightGradientHistograms
from ignite_cv.utils.errors import UserError


class RecordingWriter:
    def __init__(self):
        self.histograms: list[tuple[str, object, int]] = []
        self.scalars: list[tuple[str, float, int]] = []

    def add_histogram(self, tag, values, step):
        self.histograms.append((tag, values, step))

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))


def _setup(frozen: bool = False):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    if frozen:
        model[0].requires_grad_(False)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    batches = [(torch.randn(5, 3), torch.randint(0, 2, (5,))) for _ in range(3)]
    expected: list[dict[str, float]] = []

    def step(engine, batch):
        x, y = batch
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        expected.append({n: float(p.grad.norm()) for n, p in model.named_parameters() if p.grad is not None})
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)  # as ignite_cv's step does: no gradient left afterwards
        return loss.detach()

    return model, Engine(step), batches, expected


def test_histograms_every_n_epochs_hold_each_backward_pass_s_gradient_norm():
    model, trainer, batches, expected = _setup()
    writer = RecordingWriter()
    handler = WeightGradientHistograms(model, writer, every=2)
    handler.attach(trainer)
    trainer.run(batches, max_epochs=4)
    steps = sorted({step for _, _, step in writer.histograms})
    assert steps == [2, 4]
    names = [n for n, _ in model.named_parameters()]
    tags = [tag for tag, _, step in writer.histograms if step == 2]
    assert tags == [f"grad_norm/{n}" for n in names] + [f"weights/{n}" for n in names]
    for epoch in (2, 4):
        logged = {tag: values for tag, values, step in writer.histograms if step == epoch}
        for name in names:
            norms = [row[name] for row in expected[(epoch - 1) * 3 : epoch * 3]]  # that epoch's 3 steps
            assert logged[f"grad_norm/{name}"].tolist() == pytest.approx(norms, rel=1e-6)
    final = {tag: values for tag, values, step in writer.histograms if step == 4}
    assert final["weights/2.bias"].tolist() == pytest.approx(model[2].bias.detach().tolist())
    assert writer.scalars == [("grad_norm_nonfinite", 0, 2), ("grad_norm_nonfinite", 0, 4)]
    assert all(not p._post_accumulate_grad_hooks for p in model.parameters())  # removed after each epoch


def test_hooks_exist_only_during_a_logged_epoch_and_frozen_parameters_have_no_gradient_histogram():
    model, trainer, batches, _ = _setup(frozen=True)
    writer = RecordingWriter()
    WeightGradientHistograms(model, writer, every=3, epoch_fn=lambda: trainer.state.epoch + 10).attach(
        trainer
    )
    hooked = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED,
        lambda e: hooked.append(
            sum(bool(getattr(p, "_post_accumulate_grad_hooks", None)) for p in model.parameters())
        ),
    )
    trainer.run(batches, max_epochs=3)
    assert hooked == [0, 0, 0, 2, 2, 2, 0, 0, 0]  # run epochs 11, 12, 13: only 12 is a multiple of 3
    tags = {tag for tag, _, _ in writer.histograms}
    assert "grad_norm/0.weight" not in tags and "weights/0.weight" in tags and "grad_norm/2.weight" in tags
    assert {step for _, _, step in writer.histograms} == {12}


def test_every_must_be_positive():
    with pytest.raises(UserError, match="--log-histograms must be >= 1"):
        WeightGradientHistograms(nn.Linear(1, 1), RecordingWriter(), every=0)


def test_an_error_in_training_still_propagates_and_releases_the_hooks(tmp_path):
    import pytest
    import torch
    from ignite.engine import Engine
    from torch.utils.tensorboard import SummaryWriter

    from ignite_cv.handlers.histograms import WeightGradientHistograms

    model = torch.nn.Linear(2, 1)

    def step(engine, batch):
        model(torch.ones(1, 2)).sum().backward()
        raise RuntimeError("boom in step")

    trainer = Engine(step)
    writer = SummaryWriter(str(tmp_path))
    WeightGradientHistograms(model, writer, every=1).attach(trainer)
    with pytest.raises(RuntimeError, match="boom in step"):
        trainer.run([0], max_epochs=1)
    writer.close()
    assert all(not p._backward_hooks for p in model.parameters())
