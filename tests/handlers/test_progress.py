import io

from ignite.engine import Engine, Events

from ignite_cv.handlers.progress import ProgressReporter


def test_non_terminal_output_is_one_plain_line_per_epoch():
    stream = io.StringIO()
    trainer = Engine(lambda e, b: {"loss": 0.5})
    evaluator = Engine(lambda e, b: None)
    evaluator.add_event_handler(Events.COMPLETED, lambda e: e.state.metrics.update(accuracy=0.9, loss=0.3))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(loss=0.5))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: evaluator.run([0]))
    reporter = ProgressReporter(
        3, lambda: trainer.state.epoch, log_every=1, lr_fn=lambda: 0.01, stream=stream
    )
    assert reporter.use_bars is False  # StringIO is not a terminal
    reporter.attach(trainer, evaluator)
    trainer.run(range(20), max_epochs=3)
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("epoch 1/3") and "val: loss 0.3000 accuracy 0.9000" in lines[0]
    assert "lr 0.01" in lines[2]
