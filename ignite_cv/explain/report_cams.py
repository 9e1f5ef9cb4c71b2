"""CAMs in a training run's report: where the model looked on its worst mistakes and on some right answers.

Called once at the end of a run, after the test report, with the test split's uint8 images, labels and
probabilities (what :func:`ignite_cv.report.write_test_report` gets). Two grids of image/overlay pairs:

* ``cams_wrong.png``: the ``count`` most confidently wrong test images (highest probability of the
  predicted class first), each explained for its predicted class;
* ``cams_correct.png``: a seeded random sample of ``count`` correctly classified images.

Both also go to TensorBoard (``test/cams_wrong``, ``test/cams_correct``) when a writer is given. The model is
left as it was (modes, ``requires_grad``, gradients, hooks: :func:`~ignite_cv.explain.cam.compute_cams`), so
it may be a frozen-backbone model still wrapped in DDP. A model without a spatial layer (the MLP) or a
missing torchcam is not an error here: the result says why nothing was drawn, and the caller prints it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ignite_cv.explain.cam import check_method, compute_cams
from ignite_cv.explain.layers import resolve_target_layer
from ignite_cv.explain.preprocess import CardInput
from ignite_cv.explain.render import cam_grid_picture
from ignite_cv.handlers.tensorboard import log_png
from ignite_cv.image_grid import write_png
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap

WRONG_FILE = "cams_wrong.png"
CORRECT_FILE = "cams_correct.png"
#: Images explained per forward/backward pass.
BATCH = 16


def check_explain_options(method: str, count: int) -> None:
    """Validate ``--explain-method``/``--explain-images`` before training (``none`` turns CAMs off)."""
    if method != "none":
        check_method(method)
    if count < 0:
        raise UserError(f"--explain-images must be >= 0, got {count}", "pass e.g. 8, or 0 for none")


def select_images(
    labels: np.ndarray, probs: np.ndarray, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(most confidently wrong indices, seeded random correct indices), at most ``count`` each."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probs[wrong, predicted[wrong]]
    wrong = wrong[np.argsort(-confidence, kind="stable")][:count]
    correct = np.flatnonzero(predicted == labels)
    order = torch.randperm(len(correct), generator=torch.Generator().manual_seed(seed)).numpy()
    return wrong, np.sort(correct[order[:count]])


def write_report_cams(
    model: nn.Module,
    card: Any,
    images: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    probs: torch.Tensor | np.ndarray,
    out_dir: str | Path,
    method: str = "gradcam",
    count: int = 8,
    seed: int = 0,
    tb_writer: Any = None,
    global_step: int = 0,
    target_layer: str = "auto",
) -> dict[str, Any]:
    """Write the CAM grids of the module docstring into ``out_dir`` (and TensorBoard); returns a summary.

    ``images``: uint8 ``(N, C, H, W)`` at the card's size (before normalization); ``labels``: ``(N,)``;
    ``probs``: ``(N, C)`` class probabilities (``[1 - p, p]`` for one logit). The model runs on its own
    device. Returns ``{"method", "target_layer", "wrong": [indices], "correct": [indices], "files": [...]}``,
    or ``{"skipped": reason}`` when nothing was drawn (``method`` ``none``, ``count`` 0, no spatial layer,
    torchcam missing).
    """
    if method == "none" or count <= 0:
        return {"skipped": "CAMs are off (--explain none or --explain-images 0)"}
    check_method(method)
    labels_np = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).astype(np.int64)
    probs_np = np.asarray(probs.cpu() if isinstance(probs, torch.Tensor) else probs, dtype=np.float64)
    pixels = torch.as_tensor(images)
    if len(pixels) != len(labels_np) or len(probs_np) != len(labels_np):
        raise ValueError(
            f"{len(pixels)} images, {len(labels_np)} labels and {len(probs_np)} probability rows"
        )
    param = next(unwrap(model).parameters())
    prepare = CardInput(card, param.device)
    try:
        layer = resolve_target_layer(model, target_layer, prepare.input_shape)
        wrong, correct = select_images(labels_np, probs_np, count, seed)
        names = list(card.class_names)
        out = Path(out_dir)
        files = []
        for file, indices, right, tag in (
            (WRONG_FILE, wrong, False, "test/cams_wrong"),
            (CORRECT_FILE, correct, True, "test/cams_correct"),
        ):
            if len(indices) == 0:
                continue
            chosen = pixels[torch.as_tensor(indices)]
            maps = torch.cat(
                [
                    compute_cams(model, prepare(chosen[i : i + BATCH]), layer.name, method).maps.cpu()
                    for i in range(0, len(chosen), BATCH)
                ]
            )
            titles = [
                f"{names[int(probs_np[i].argmax())]} p={probs_np[i].max():.2f} / true {names[labels_np[i]]}"
                for i in indices
            ]
            picture = cam_grid_picture(chosen, maps, titles, [right] * len(titles))
            write_png(out / file, picture)
            files.append(file)
            if tb_writer is not None:
                log_png(tb_writer, tag, out / file, global_step)
    except UserError as err:
        return {"skipped": str(err)}
    return {
        "method": method,
        "target_layer": layer.name,
        "wrong": wrong.tolist(),
        "correct": correct.tolist(),
        "files": files,
    }
