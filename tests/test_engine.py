import torch
from ignite.engine import Events
from torch import nn

from ignite_cv.engine import StepOptions, create_evaluator, create_trainer
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.task import ClassificationTask


class _Scale(nn.Module):
    def forward(self, x):
        return x * 2 - 1


class _AddNoise(nn.Module):
    """An 'augmentation' that visibly changes its input."""

    def forward(self, x):
        return x + torch.rand_like(x)


def _separable(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    images = torch.randint(0, 100, (n, 1, 4, 4), generator=g, dtype=torch.uint8)
    images[labels == 1] += 150
    return [(images[i : i + 32], labels[i : i + 32]) for i in range(0, n, 32)]


def _model(outputs=1):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, outputs))


def test_trainer_learns_and_returns_detached_outputs():
    model, task = _model(1), ClassificationTask(2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    trainer = create_trainer(
        model, optimizer, task, BatchPipeline(_Scale()), torch.device("cpu"), StepOptions()
    )
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(e.state.output["loss"]))
    trainer.run(_separable(), max_epochs=5)
    assert not losses[-1].requires_grad
    assert torch.stack(losses[-8:]).mean() < 0.5 * torch.stack(losses[:8]).mean()
    assert trainer.state.output["scores"].shape == (32, 2)  # one logit → two class scores


def test_accumulation_steps_the_optimizer_every_k_batches():
    model, task = _model(), ClassificationTask(2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = []
    optimizer.register_step_post_hook(lambda *_: steps.append(1))
    trainer = create_trainer(
        model, optimizer, task, BatchPipeline(_Scale()), torch.device("cpu"), StepOptions(accumulate_steps=4)
    )
    trainer.run(_separable(), max_epochs=1)  # 8 batches
    assert len(steps) == 2


def test_gradient_clipping_bounds_the_update():
    model, task = _model(), ClassificationTask(2)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    trainer = create_trainer(
        model, optimizer, task, BatchPipeline(_Scale()), torch.device("cpu"), StepOptions(grad_clip=1e-3)
    )
    trainer.run(_separable()[:1], max_epochs=1)
    update = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)])
    assert 0 < update.norm() <= 1e-3 + 1e-7


def test_evaluator_never_augments_and_is_deterministic():
    model, task = _model(), ClassificationTask(2)
    pipeline = BatchPipeline(_Scale(), augmentation=_AddNoise())
    evaluator = create_evaluator(model, task, pipeline, torch.device("cpu"), StepOptions())
    batch = _separable()[:1]
    evaluator.run(batch)
    first = evaluator.state.output["logits"].clone()
    evaluator.run(batch)
    assert torch.equal(first, evaluator.state.output["logits"])
    expected = model(_Scale()(batch[0][0].float() / 255))
    assert torch.allclose(first, expected)


def test_training_step_applies_augmentation():
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(x.clone())
            return x

    model, task = _model(), ClassificationTask(2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    pipeline = BatchPipeline(Spy(), augmentation=_AddNoise())
    trainer = create_trainer(model, optimizer, task, pipeline, torch.device("cpu"), StepOptions())
    batch = _separable()[:1]
    trainer.run(batch, max_epochs=1)
    assert not torch.allclose(seen[0], batch[0][0].float() / 255)


def test_bf16_autocast_on_cpu_keeps_float32_outputs():
    model, task = _model(3), ClassificationTask(3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    trainer = create_trainer(
        model,
        optimizer,
        task,
        BatchPipeline(_Scale()),
        torch.device("cpu"),
        StepOptions(amp="bf16", channels_last=True),
    )
    data = [(x, y % 3) for x, y in _separable()]
    trainer.run(data, max_epochs=1)
    assert trainer.state.output["logits"].dtype == torch.float32
    assert torch.isfinite(trainer.state.output["loss"])
