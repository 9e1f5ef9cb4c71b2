"""The output folder of ``tools/explain.py``: per-image pictures, a grid, the raw maps and ``index.csv`` last.

Layout::

    DIR/original/NNNN_STEM.png   the image as the model saw it (its input size, before normalization)
    DIR/heatmap/NNNN_STEM.png    the map at the same size, coloured
    DIR/overlay/NNNN_STEM.png    the overlay, enlarged to >= 224 px, titled "CLASS p=0.97"
    DIR/grid.png                 the first images and their overlays in one picture
    DIR/maps.safetensors         "maps": float32 (N, H, W) in [0, 1], row i = index.csv's row i
    DIR/skipped.txt              inputs that could not be read, one "NAME: reason" a line (if any)
    DIR/index.csv                one row per image; written last

Every file is written atomically (:mod:`ignite_cv.utils.atomic`). ``index.csv`` comes last, so a folder
without it is visibly unfinished (an interrupted run), never a complete-looking partial one. The folder
must not exist or be empty: results of two runs are never mixed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from ignite_cv.image_grid import write_png
from ignite_cv.utils.atomic import atomic_path, write_text_atomic
from ignite_cv.utils.errors import UserError

INDEX_FILE = "index.csv"
MAPS_FILE = "maps.safetensors"
GRID_FILE = "grid.png"
SKIPPED_FILE = "skipped.txt"
INDEX_COLUMNS = (
    "image",
    "predicted_class",
    "probability",
    "method",
    "target_layer",
    "explained_class",
    "explained_probability",
    "true_class",
    "file",
)


def check_output_dir(path: str | Path) -> Path:
    """``path`` if it can receive a new explanation: absent, or an empty folder.

    Raises:
        UserError: it is a file, or a folder with something in it.
    """
    path = Path(path).expanduser()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UserError(
            f"--output {path} already exists and is not an empty folder",
            "pass a new folder (results of two runs are never mixed)",
        )
    return path


class ExplanationFolder:
    """Writes one explanation folder (see the module docstring). Create it only once inputs are valid."""

    def __init__(self, path: str | Path) -> None:
        self.path = check_output_dir(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def image_files(
        self, stem: str, original: np.ndarray, heat: np.ndarray, titled_overlay: np.ndarray
    ) -> None:
        for kind, picture in (("original", original), ("heatmap", heat), ("overlay", titled_overlay)):
            write_png(self.path / kind / f"{stem}.png", picture)

    def maps(self, maps: torch.Tensor, metadata: dict[str, str]) -> None:
        with atomic_path(self.path / MAPS_FILE) as tmp:
            save_file({"maps": maps.float().contiguous()}, str(tmp), metadata=metadata)

    def skipped(self, lines: Sequence[str]) -> None:
        if lines:
            write_text_atomic(self.path / SKIPPED_FILE, "".join(f"{line}\n" for line in lines))

    def index(self, rows: Sequence[dict[str, object]]) -> None:
        """``index.csv``: call it last."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=INDEX_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(self.path / INDEX_FILE, buffer.getvalue())


def read_maps(path: str | Path) -> tuple[torch.Tensor, dict[str, str]]:
    """``maps.safetensors`` → (maps ``(N, H, W)``, metadata with ``images`` decoded from JSON)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
        maps = handle.get_tensor("maps")
    if "images" in metadata:
        metadata["images"] = json.loads(metadata["images"])
    return maps, metadata
