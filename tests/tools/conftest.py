"""Fixtures shared by the tool tests: a TinyVGG trained on digits in-process, and digit PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.recipe_utils import load_recipe


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> dict:
    """A tiny TinyVGG trained on digits for 2 epochs in this process (seconds); its summary."""
    out = tmp_path_factory.mktemp("digits-runs")
    recipe = load_recipe("tinyvgg")
    argv = ["--epochs", "2", "--hidden-units", "4", "--output-dir", str(out), "--workers", "0"]
    return recipe.run_recipe(recipe.TinyVGGRecipe, argv=argv)


@pytest.fixture(scope="session")
def digit_files(tmp_path_factory) -> tuple[Path, list[int]]:
    """40 digits as 8×8 grey PNGs (scaled as the digits source does) in a folder with a sub-folder,
    and their labels in sorted path order."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("digit-files") / "digits"
    (root / "more").mkdir(parents=True)
    digits = load_digits()
    images = np.rint(digits.images[:40] * (255.0 / 16.0)).astype(np.uint8)
    named = []
    for i, (image, label) in enumerate(zip(images, digits.target[:40])):
        relative = f"more/{i:03d}.png" if i % 3 == 0 else f"{i:03d}.png"
        Image.fromarray(image).save(root / relative)
        named.append((f"{root}/{relative}", int(label)))
    return root, [label for _, label in sorted(named)]
