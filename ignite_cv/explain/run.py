"""Explain a saved checkpoint on images: the whole of ``tools/explain.py`` below its argument parsing.

Everything is checked before anything is written: the checkpoint (a foreign, truncated or pickled file is
a one-line :class:`~ignite_cv.utils.errors.UserError`), the method, the target layer, the feature-map
layers, the class to explain, and the output folder (absent or empty). The folder is created when the
first batch of images has decoded; images are decoded, moved to the model's device, explained and
written batch by batch; ``index.csv`` is written last (:mod:`ignite_cv.explain.outputs`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ignite_cv.data.folder import UnreadableImage
from ignite_cv.explain.cam import check_method, compute_cams
from ignite_cv.explain.feature_maps import check_feature_layers, feature_maps, feature_maps_picture
from ignite_cv.explain.inputs import ImageInputs, ImageItem, collect_dataset, collect_files, short_name
from ignite_cv.explain.layers import LayerInfo, auto_layer, list_layers, resolve_target_layer
from ignite_cv.explain.outputs import GRID_FILE, ExplanationFolder, check_output_dir
from ignite_cv.explain.preprocess import CardInput
from ignite_cv.explain.progress import ImageProgress
from ignite_cv.explain.render import cam_grid_picture, enlarged_overlay, heat_map, titled, to_hwc
from ignite_cv.image_grid import write_png
from ignite_cv.utils.errors import UserError
from ignite_cv.weights import load_model

#: The grid shows at most this many images (all of them are in the per-image folders).
GRID_IMAGES = 32
CLASS_CHOICES = ("predicted", "true")


@dataclass
class ExplainOptions:
    """What to explain and how. ``class_choice``: ``predicted``, ``true`` or a class name."""

    method: str = "gradcam"
    class_choice: str = "predicted"
    target_layer: str = "auto"
    batch_size: int = 32
    device: str = "auto"
    feature_layers: list[str] = field(default_factory=list)
    grid_images: int = GRID_IMAGES


@dataclass
class DatasetInput:
    """A split of a data set as the input: ``options`` has :class:`ignite_cv.data.options.DataOptions`'
    attributes; ``limit`` 0 = the whole split."""

    options: Any
    split: str = "test"
    limit: int = 0
    seed: int = 0


def describe_layers(model, card) -> str:
    """``--list-layers``: every candidate with its map's shape, the ``auto`` choice marked."""
    layers = list_layers(model, (card.in_channels, *card.image_size))
    chosen = auto_layer(model, layers).name if layers else None
    lines = [f"layers of {card.arch} with a feature map at {card.image_size[0]}×{card.image_size[1]} px:"]
    lines += [f"  {layer.describe()}" + ("   <- auto" if layer.name == chosen else "") for layer in layers]
    return "\n".join(lines)


def _class_targets(choice: str, items: list[ImageItem], class_names: list[str]) -> list[int] | None:
    """Per-item class indices to explain (None: the predicted classes)."""
    if choice == "predicted":
        return None
    if choice == "true":
        missing = [item.name for item in items if item.label is None]
        if missing:
            raise UserError(
                f"--class true needs each image's true class, and {len(missing)} images have none "
                f"(e.g. {missing[0]})",
                "put the images in folders named after their classes, use --dataset or --class predicted",
            )
        return [int(item.label) for item in items]
    if choice in class_names:
        return [class_names.index(choice)] * len(items)
    raise UserError(
        f"--class {choice!r} is not one of the checkpoint's classes",
        f"choose predicted, true or one of: {', '.join(class_names)}",
    )


def explain_checkpoint(
    checkpoint: str | Path,
    output: str | Path,
    options: ExplainOptions,
    paths: list[str] | None = None,
    dataset: DatasetInput | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Explain the images of ``paths`` (files, folders, zips) or ``dataset`` with ``checkpoint``'s model
    into the new folder ``output``; returns a summary (also printed through ``say``).

    Raises:
        UserError: any bad input (see the module docstring); nothing is written then.
    """
    from ignite_cv.utils.devices import resolve_device

    check_method(options.method)
    if options.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {options.batch_size}", "pass e.g. 32")
    if (paths is None) == (dataset is None):
        raise UserError("pass images (files, folders, zips) or --dataset, not both", "choose one")
    check_output_dir(output)
    device = resolve_device(options.device)
    model, card = load_model(checkpoint, device)
    prepare = CardInput(card, device)
    layer = resolve_target_layer(model, options.target_layer, prepare.input_shape)
    check_feature_layers(model, options.feature_layers)
    class_names = list(card.class_names)
    if options.class_choice not in CLASS_CHOICES and options.class_choice not in class_names:
        _class_targets(options.class_choice, [], class_names)  # raises the one-line error
    inputs = (
        collect_files(paths, class_names)
        if paths is not None
        else collect_dataset(dataset.options, card, dataset.split, dataset.limit, dataset.seed)
    )
    if not inputs.items:
        reasons = f" ({inputs.skipped[0]})" if inputs.skipped else ""
        raise UserError(f"no images to explain{reasons}", "pass image files, folders of images or zips")
    targets = _class_targets(options.class_choice, inputs.items, class_names)
    return _explain(model, card, prepare, layer, inputs, targets, Path(output), options, checkpoint, say)


def _decode_batch(prepare: CardInput, inputs: ImageInputs, positions: range, skipped: list[str]):
    images, kept = [], []
    for position in positions:
        item = inputs.items[position]
        if item.row is not None:
            images.append(inputs.tensor[item.row])
            kept.append(position)
            continue
        try:
            images.append(prepare.decode(item.ref))
            kept.append(position)
        except UnreadableImage as err:
            skipped.append(f"{item.name}: {err}")
    return (torch.stack(images) if images else None), kept


def _explain(
    model,
    card,
    prepare: CardInput,
    layer: LayerInfo,
    inputs: ImageInputs,
    targets: list[int] | None,
    output: Path,
    options: ExplainOptions,
    checkpoint,
    say,
) -> dict[str, Any]:
    names = list(card.class_names)
    skipped = list(inputs.skipped)
    folder: ExplanationFolder | None = None
    rows: list[dict[str, Any]] = []
    maps: list[torch.Tensor] = []
    grid_images: list[torch.Tensor] = []
    grid_maps: list[torch.Tensor] = []
    grid_titles: list[str] = []
    progress = ImageProgress(len(inputs.items))
    cam_seconds = 0.0
    start = time.perf_counter()
    for first in range(0, len(inputs.items), options.batch_size):
        positions = range(first, min(first + options.batch_size, len(inputs.items)))
        images, kept = _decode_batch(prepare, inputs, positions, skipped)
        if images is None:
            progress.update(positions.stop)
            continue
        if folder is None:
            folder = ExplanationFolder(output)
        batch_targets = None if targets is None else [targets[p] for p in kept]
        x = prepare(images)
        tick = time.perf_counter()
        result = compute_cams(model, x, layer.name, options.method, batch_targets)
        cam_maps = result.maps.cpu()
        cam_seconds += time.perf_counter() - tick
        probs = result.probabilities.cpu()
        predicted, explained = result.predicted.cpu().tolist(), result.explained.cpu().tolist()
        activations = feature_maps(model, x, options.feature_layers) if options.feature_layers else {}
        for i, position in enumerate(kept):
            item = inputs.items[position]
            stem = f"{len(rows):04d}_{short_name(item)}"
            p_pred, p_expl = float(probs[i, predicted[i]]), float(probs[i, explained[i]])
            title = f"{names[explained[i]]} p={p_expl:.2f}"
            if explained[i] != predicted[i]:
                title += f" (predicted {names[predicted[i]]} {p_pred:.2f})"
            original = images[i]
            overlay = titled(enlarged_overlay(original, cam_maps[i]), title)
            folder.image_files(stem, to_hwc(original), heat_map(cam_maps[i]), overlay)
            for name, value in activations.items():
                picture = feature_maps_picture(value[i], name)
                write_png(folder.path / "feature_maps" / f"{stem}_{name}.png", picture)
            rows.append(
                {
                    "image": item.name,
                    "predicted_class": names[predicted[i]],
                    "probability": f"{p_pred:.6f}",
                    "method": options.method,
                    "target_layer": layer.name,
                    "explained_class": names[explained[i]],
                    "explained_probability": f"{p_expl:.6f}",
                    "true_class": "" if item.label is None else names[item.label],
                    "file": stem,
                }
            )
            maps.append(cam_maps[i])
            if len(grid_images) < options.grid_images:
                grid_images.append(original)
                grid_maps.append(cam_maps[i])
                true = "" if item.label is None else f" / true {names[item.label]}"
                grid_titles.append(f"{title}{true}")
        progress.update(positions.stop)
    progress.close()
    if folder is None:
        raise UserError(
            f"none of the {len(inputs.items)} inputs is a readable image ({skipped[-1] if skipped else ''})",
            "pass image files (PNG, JPEG, ...), folders of images or zips",
        )
    write_png(
        folder.path / GRID_FILE,
        cam_grid_picture(torch.stack(grid_images), torch.stack(grid_maps), grid_titles),
    )
    folder.maps(
        torch.stack(maps),
        {
            "method": options.method,
            "target_layer": layer.name,
            "checkpoint": str(checkpoint),
            "images": json.dumps([row["image"] for row in rows]),
        },
    )
    folder.skipped(skipped)
    folder.index(rows)  # last: the folder is complete
    total = time.perf_counter() - start
    summary = {
        "output_dir": str(folder.path),
        "images": len(rows),
        "skipped": len(skipped),
        "method": options.method,
        "target_layer": layer.name,
        "map_size": [layer.height, layer.width],
        "cam_seconds": round(cam_seconds, 3),
        "seconds": round(total, 3),
        "cam_seconds_per_image": round(cam_seconds / len(rows), 5),
    }
    say(
        f"explained {len(rows)} images with {options.method} at {layer.describe()} in {total:.1f} s "
        f"({cam_seconds / len(rows):.4f} s/image for the maps): {folder.path}"
        + (f"; skipped {len(skipped)} unreadable inputs (listed in skipped.txt)" if skipped else "")
    )
    for line in skipped[:5]:
        say(f"  skipped {line}")
    return summary
