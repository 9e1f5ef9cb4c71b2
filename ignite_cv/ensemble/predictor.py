"""Predicting with an ensemble manifest: every member's probabilities, averaged with the manifest's weights.

:class:`EnsemblePredictor` is a :class:`~ignite_cv.inference.predictor.Predictor` (inputs, loader,
CSV, app are shared) whose :meth:`~EnsemblePredictor.probabilities` asks each member (itself a
``Predictor`` of its checkpoint: its model, normalization, amp) and returns ``Σ wᵢ·pᵢ / Σ wᵢ``.

Input: images are decoded once, with the preprocessing of the member with the most pixels (grey
only if every member is grey). A member with that same input sees exactly what it would see alone; a
member trained at another size or with other channels gets the decoded batch converted on the device
(RGB to grey with the luma weights the data sources use; antialiased bilinear resize), which is close
to but not bit-identical with decoding the file at its own size. Members must agree on centre crop.
For evaluation on a data set, where each member reads the split with its own preprocessing, see
:mod:`ignite_cv.ensemble.evaluate`. Decision: the members' stored two-class threshold when they all
store the same one, else the default rule.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ignite_cv.data.sources import convert_channels
from ignite_cv.ensemble.manifest import check_same_classes, normalized, read_manifest
from ignite_cv.inference.decision import POSITIVE_CLASS_KEY, THRESHOLD_KEY, DecisionRule
from ignite_cv.inference.model_info import ModelInfo
from ignite_cv.inference.predictor import Predictor
from ignite_cv.inference.preprocess import Preprocessing
from ignite_cv.task import ClassificationTask
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import count_params
from ignite_cv.weights import ModelCard


class EnsemblePredictor(Predictor):
    """The weighted mean of ``members``' probabilities (same class names; see the module docstring)."""

    def __init__(self, members: list[Predictor], weights: list[float], manifest: str | Path = "") -> None:
        if not members:
            raise UserError("an ensemble needs at least one checkpoint", "pass checkpoint files")
        self.members = members
        self.weights = normalized(weights)
        self.manifest = str(manifest)
        self.class_names = check_same_classes([(Path(m.checkpoint or "?"), m.card) for m in members])
        self.device = members[0].device
        self.amp = members[0].amp
        self.checkpoint = self.manifest or None
        self.run_config = None
        self.preprocessing = _shared_preprocessing([m.preprocessing for m in members])
        first = members[0].card
        self.card = ModelCard(
            arch="ensemble(" + ", ".join(m.card.arch for m in members) + ")",
            arch_args={},
            class_names=list(self.class_names),
            in_channels=self.preprocessing.channels,
            image_size=list(self.preprocessing.size),
            num_outputs=first.num_outputs,
            normalization={},
            extra=_shared_decision([m.card for m in members]),
        )
        self.task = ClassificationTask(len(self.class_names))
        self.rule = DecisionRule.from_card(self.card)
        self.model = nn.ModuleList([m.model for m in members])  # for parameter counts
        self.pipeline = None

    @torch.inference_mode()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """float32 ``(N, C)``: the weighted mean of the members' probabilities of uint8 images."""
        images = images.to(self.device, non_blocking=True)
        total = None
        for member, weight in zip(self.members, self.weights):
            p = member.probabilities(_adapt(images, member.preprocessing)) * weight
            total = p if total is None else total + p
        return total

    def info(self) -> ModelInfo:
        params, _ = count_params(self.model)
        members = ", ".join(
            f"{Path(m.checkpoint).name if m.checkpoint else m.card.arch} ×{w:.3g}"
            for m, w in zip(self.members, self.weights)
        )
        return ModelInfo(
            checkpoint=self.manifest,
            arch=f"ensemble of {len(self.members)}: {members}",
            class_names=list(self.class_names),
            input=self.preprocessing.describe(),
            params=params,
            decision=self.rule.describe(),
        )


def load_ensemble(
    path: str | Path, device: str = "auto", amp: str = "none", max_pixels: int | None = None
) -> EnsemblePredictor:
    """The predictor of the manifest at ``path`` (every member's SHA-256 checked first)."""
    manifest = read_manifest(path)
    members = [Predictor.from_checkpoint(c, device, amp, max_pixels) for c in manifest.checkpoints]
    names = [str(n) for n in members[0].card.class_names]
    if names != manifest.class_names:
        raise UserError(
            f"{path} says the classes are {manifest.class_names} but its checkpoints have {names}",
            "rebuild the manifest with tools/ensemble.py",
        )
    return EnsemblePredictor(members, manifest.weights, path)


def _shared_preprocessing(preps: list[Preprocessing]) -> Preprocessing:
    """One decode for all members: the largest input, RGB if any member is RGB."""
    crops = {p.center_crop for p in preps}
    if len(crops) > 1:
        raise UserError(
            "the ensemble's checkpoints disagree on centre crop, so one decoded image cannot serve them all",
            "ensemble models trained with the same --center-crop setting",
        )
    widest = max(preps, key=lambda p: p.size[0] * p.size[1])
    channels = 3 if any(p.channels == 3 for p in preps) else 1
    return Preprocessing(channels, widest.size, widest.center_crop, widest.max_pixels)


def _shared_decision(cards: list[ModelCard]) -> dict:
    """The members' stored threshold and positive class, if every member stores the same ones."""
    keys = (THRESHOLD_KEY, POSITIVE_CLASS_KEY)
    stored = [{k: c.extra[k] for k in keys if k in (c.extra or {})} for c in cards]
    return stored[0] if all(s == stored[0] for s in stored) else {}


def _adapt(images: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """uint8 images in a member's channels and size (unchanged when they already are)."""
    if images.shape[1] != prep.channels:
        images = convert_channels(images, prep.channels)
    if tuple(images.shape[-2:]) != tuple(prep.size):
        resized = F.interpolate(images.float(), size=prep.size, mode="bilinear", antialias=True)
        images = resized.round_().clamp_(0, 255).to(torch.uint8)
    return images
