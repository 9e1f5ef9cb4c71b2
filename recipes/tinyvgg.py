"""TinyVGG (two VGG conv blocks) on small images. Default: scikit-learn's digits, offline, in seconds.

python recipes/tinyvgg.py
python recipes/tinyvgg.py --dataset fashion-mnist --data-root ../shared/data/fashion-mnist --epochs 10
"""

from dataclasses import dataclass

from ignite_cv.cli import run_recipe
from ignite_cv.config import TrainConfig
from ignite_cv.models.options import TinyVGGOptions
from ignite_cv.utils.process_exit import end_process


@dataclass
class TinyVGGRecipe(TinyVGGOptions, TrainConfig):
    recipe: str = "tinyvgg"
    model: str = "tinyvgg"
    hidden_units: int = 32
    dropout: float = 0.0
    channels_last: bool = True
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 4e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    scheduler: str = "onecycle"


if __name__ == "__main__":
    run_recipe(TinyVGGRecipe, __doc__)
    end_process()
