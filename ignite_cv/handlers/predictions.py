"""Collect an evaluator's predictions (class scores, labels, uint8 images) for a report.

Each rank keeps its own shard on the host; :meth:`PredictionCollector.gathered` concatenates the
shards of all ranks (unpadded, so every sample appears exactly once) for rank 0's report.
"""

from __future__ import annotations

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events

from ignite_cv.metrics import gather_uneven


class PredictionCollector:
    def __init__(self, keep_images: bool = True) -> None:
        self.keep_images = keep_images
        self.scores: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.images: list[torch.Tensor] = []

    def attach(self, evaluator: Engine) -> None:
        evaluator.add_event_handler(Events.STARTED, lambda _: self.reset())
        evaluator.add_event_handler(Events.ITERATION_COMPLETED, self._collect)

    def reset(self) -> None:
        self.scores, self.labels, self.images = [], [], []

    def _collect(self, engine: Engine) -> None:
        self.scores.append(engine.state.output["scores"].detach().float().cpu())
        self.labels.append(engine.state.output["y"].detach().cpu())
        if self.keep_images:
            self.images.append(engine.state.batch[0].detach().cpu())

    def gathered(self, num_classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(scores (N, C), labels (N,), images (N, C, H, W) or None) over all ranks, on the CPU."""
        scores = torch.cat(self.scores) if self.scores else torch.zeros(0, num_classes)
        labels = torch.cat(self.labels) if self.labels else torch.zeros(0, dtype=torch.long)
        images = torch.cat(self.images) if self.images else None
        if idist.get_world_size() > 1:
            device = idist.device()
            scores = gather_uneven(scores.to(device)).cpu()
            labels = gather_uneven(labels.to(device)).cpu()
            if images is not None:
                images = gather_uneven(images.to(device)).cpu()
        return scores, labels, images
