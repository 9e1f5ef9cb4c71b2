"""A trained model ready to predict: the checkpoint's model, preprocessing, normalization and decision.

:class:`Predictor` runs the same pieces as evaluation, in the same order: inputs decoded to uint8 in
DataLoader workers (:mod:`ignite_cv.inference.dataset`, pinned on CUDA) → the device → the batch
pipeline without augmentation (uint8 → [0, 1] → the card's normalization) → the model → class
probabilities (:meth:`ignite_cv.task.ClassificationTask.probabilities`) → the decision rule
(:mod:`ignite_cv.inference.decision`). The same image in the same batch composition gives the same
bits whichever way it came in (file, CLI, PIL image, array, web upload); different batch sizes may
differ in the last bits on some backends (kernels are chosen per shape).

Extension points:

* **Ensembles**: :func:`ignite_cv.inference.loading.load_predictor` hands a ``.json`` MODEL (an
  ensemble manifest) to ``ignite_cv.ensemble.load_ensemble(path, device=..., amp=..., max_pixels=...)``,
  which returns a subclass of :class:`Predictor` overriding :meth:`Predictor.probabilities` and
  :meth:`Predictor.info`; everything else (inputs, loader, CSV, app) is shared. (The loader lives in
  its own module: the ensemble's predictor subclasses this one, so this module cannot import it.)
* **Class activation maps**: see :mod:`ignite_cv.inference.cam`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ignite_cv.inference.dataset import build_input_loader
from ignite_cv.inference.decision import DecisionRule
from ignite_cv.inference.inputs import InputImage, LeftOut, collect_inputs
from ignite_cv.inference.model_info import ModelInfo, model_info, read_json, run_folder_of
from ignite_cv.inference.preprocess import Preprocessing
from ignite_cv.inference.progress import Progress
from ignite_cv.inference.results import Prediction, PredictionSet, build_predictions
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import count_params

#: ``(uint8 images (N, C, H, W), probabilities (N, C), sources)`` after each batch.
BatchHook = Callable[[torch.Tensor, torch.Tensor, list[str]], None]

_AMP = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_BATCH_SIZE = 64


class Predictor:
    """``predict(inputs)`` → :class:`~ignite_cv.inference.results.PredictionSet`.

    Args:
        model: the trained model (its device is ``device``; it is put in eval mode).
        card: its :class:`~ignite_cv.weights.ModelCard`.
        device: where the model runs.
        checkpoint: the file it came from (for :meth:`info` and the run folder), if any.
        amp: ``none``, ``bf16`` or ``fp16`` autocast for the forward pass.
        max_pixels: refuse images with more pixels (None: Pillow's decompression-bomb guard alone).
    """

    def __init__(
        self,
        model: nn.Module,
        card: Any,
        device: torch.device | str = "cpu",
        checkpoint: str | Path | None = None,
        amp: str = "none",
        max_pixels: int | None = None,
    ) -> None:
        from ignite_cv.pipeline.batch_pipeline import BatchPipeline
        from ignite_cv.pipeline.normalize import build_normalizer
        from ignite_cv.task import ClassificationTask

        if amp not in _AMP:
            raise UserError(f"unknown amp {amp!r}", f"choose one of: {', '.join(_AMP)}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.card = card
        self.checkpoint = str(checkpoint) if checkpoint else None
        self.amp = amp
        self.task = ClassificationTask(card.num_classes)
        if self.task.num_outputs != card.num_outputs:
            raise UserError(
                f"the checkpoint has {card.num_outputs} outputs for {card.num_classes} classes",
                "use a checkpoint written by ignite_cv",
            )
        self.pipeline = BatchPipeline(build_normalizer(card.normalization)).to(self.device)
        run = run_folder_of(checkpoint) if checkpoint else None
        self.run_config = read_json(run / "config.json") if run else None
        self.preprocessing = Preprocessing.from_card(card, self.run_config, max_pixels)
        self.rule = DecisionRule.from_card(card)
        self.class_names = [str(n) for n in card.class_names]

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str = "auto", amp: str = "none", max_pixels: int | None = None
    ) -> Predictor:
        """Rebuild the model of an ignite_cv ``.safetensors`` checkpoint (nothing is unpickled).

        Raises:
            UserError: the file does not exist, is not safetensors (a pickle, say), or has no
                ignite_cv metadata.
        """
        from ignite_cv.utils.devices import resolve_device
        from ignite_cv.weights import load_model

        torch_device = resolve_device(device)
        model, card = load_model(path, torch_device)  # replays a pruning history (weights.build_from_card)
        return cls(model, card, torch_device, path, amp, max_pixels)

    # -- the forward pass --------------------------------------------------------------------------

    @torch.inference_mode()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """float32 ``(N, C)`` probabilities (on the device) of uint8 ``(N, C, H, W)`` model-sized images."""
        x = self.pipeline(images.to(self.device, non_blocking=True))
        dtype = _AMP[self.amp]
        autocast = (
            torch.autocast(self.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        )
        with autocast:
            logits = self.model(x)
        return self.task.probabilities(logits.float())

    # -- predicting on inputs ----------------------------------------------------------------------

    def predict(
        self,
        inputs: Any,
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int = 0,
        strict: bool = False,
        progress: bool = False,
        on_batch: BatchHook | None = None,
    ) -> PredictionSet:
        """Predict on paths (files, folders, zips), PIL images, or uint8 arrays / tensors.

        Unreadable images and non-image files in folders are left out and listed in
        ``result.skipped``; with ``strict`` the first unreadable image (in input order) raises.
        ``progress``: a bar on a terminal, plain lines otherwise (:mod:`ignite_cv.inference.progress`).
        ``on_batch(images, probabilities, sources)`` is called after each batch with its readable
        model-sized uint8 images (CPU), their float32 probabilities and sources (e.g. to write CAMs).

        Raises:
            UserError: see :func:`~ignite_cv.inference.inputs.collect_inputs`; an unreadable image
                with ``strict``; no readable image at all.
        """
        if batch_size < 1 or workers < 0:
            raise UserError(
                f"batch size {batch_size} or workers {workers} is out of range",
                "pass batch size >= 1, workers >= 0",
            )
        collected = collect_inputs(inputs)
        if not collected.images:
            first = collected.left_out[0]
            raise UserError(f"no images to predict on ({first.source}: {first.reason})", _READABLE_FIX)
        return self.predict_images(
            collected.images, batch_size, workers, strict, progress, on_batch, collected.left_out
        )

    def predict_file(self, path: str | Path, source: str | None = None) -> Prediction:
        """One file, whatever its name (never expanded as a folder or zip). Raises UserError if unreadable."""
        image = InputImage(source=source or str(path), ref=str(path))
        return self.predict_images([image])[0]  # nothing readable raises: one line with the reason

    def predict_images(
        self,
        images: list[InputImage],
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int = 0,
        strict: bool = False,
        progress: bool = False,
        on_batch: BatchHook | None = None,
        left_out: list[LeftOut] | None = None,
    ) -> PredictionSet:
        """:meth:`predict` on collected images (``left_out``: files already left out, for the result)."""
        loader = build_input_loader(images, self.preprocessing, batch_size, workers, self.device)
        chunks: list[torch.Tensor] = []
        kept: list[int] = []
        unreadable: list[LeftOut] = []
        done = 0
        bar = Progress(len(images)) if progress else None
        for batch, indices, reasons in loader:
            bad = [j for j, reason in enumerate(reasons) if reason]
            for j in bad:
                source = images[int(indices[j])].source
                if strict:
                    raise UserError(f"cannot read image {source}: {reasons[j]}", _STRICT_FIX)
                unreadable.append(LeftOut(source, reasons[j]))
            if bad:
                keep = torch.tensor([j for j, reason in enumerate(reasons) if not reason], dtype=torch.int64)
                batch, indices = batch.index_select(0, keep), indices.index_select(0, keep)
            if len(batch):
                chunks.append(self.probabilities(batch))
                kept += indices.tolist()
                if on_batch is not None:
                    on_batch(batch, chunks[-1], [images[int(i)].source for i in indices])
            done += len(reasons)
            if bar is not None:
                bar.update(done)
        if bar is not None:
            bar.close()
        if not kept:
            raise _nothing_readable(unreadable)
        probabilities = torch.cat(chunks).cpu()
        return build_predictions(
            [images[i].source for i in kept],
            kept,
            probabilities,
            self.class_names,
            self.rule,
            [*(left_out or []), *unreadable],
        )

    def info(self) -> ModelInfo:
        """The model card for people (architecture, classes, input, decision, run data and metrics)."""
        params, _ = count_params(self.model)
        return model_info(
            self.checkpoint or "",
            self.card,
            params,
            self.preprocessing.describe(),
            self.rule.describe(),
        )


_STRICT_FIX = "repair or remove the file, or predict without strict (--strict) to skip unreadable images"
_READABLE_FIX = "pass image files Pillow can decode (JPEG, PNG, BMP, GIF, WebP, TIFF)"


def _nothing_readable(unreadable: list[LeftOut]) -> UserError:
    first = unreadable[0]
    if "too many pixels" in first.reason:
        fix = "downscale it below the limit: Pillow refuses such images as possible decompression bombs"
    else:
        fix = _READABLE_FIX
    if len(unreadable) == 1:
        return UserError(f"cannot read image {first.source}: {first.reason}", fix)
    return UserError(
        f"none of the {len(unreadable)} images could be read (first: {first.source}: {first.reason})", fix
    )
