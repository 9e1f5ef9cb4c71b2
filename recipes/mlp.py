"""A multi-layer perceptron (flatten → 512 → 256 → classes) on small images. Default: digits, offline.

python recipes/mlp.py
python recipes/mlp.py --dataset fashion-mnist --data-root ../shared/data/fashion-mnist --epochs 10
"""

from dataclasses import dataclass

from ignite_cv.cli import run_recipe
from ignite_cv.config import TrainConfig
from ignite_cv.models.options import MLPOptions
from ignite_cv.utils.process_exit import end_process


@dataclass
class MLPRecipe(MLPOptions, TrainConfig):
    recipe: str = "mlp"
    model: str = "mlp"
    hidden_sizes: tuple[int, ...] = (512, 256)
    batch_norm: bool = True
    dropout: float = 0.0
    epochs: int = 10
    batch_size: int = 512
    optimizer: str = "adamw"
    lr: float = 6e-3
    weight_decay: float = 1e-4
    scheduler: str = "onecycle"


if __name__ == "__main__":
    run_recipe(MLPRecipe, __doc__)
    end_process()
