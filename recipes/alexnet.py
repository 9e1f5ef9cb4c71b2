"""AlexNet: a small-input variant for 28–32 px data (default: CIFAR-10), torchvision's for 224 px folders.

python recipes/alexnet.py --dataset cifar10 --data-root data/            # alexnet_small, 32 px
python recipes/alexnet.py --dataset fashion-mnist --data-root ../shared/data/fashion-mnist --epochs 10
python recipes/alexnet.py --dataset folder --data-root my_images/ --model alexnet --image-size 224
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from ignite_cv.cli import run_recipe
from ignite_cv.config import TrainConfig
from ignite_cv.models.options import PRETRAINED_SETTINGS, TransferOptions
from ignite_cv.utils.process_exit import end_process


@dataclass
class AlexNetRecipe(TransferOptions, TrainConfig):
    recipe: str = "alexnet"
    dataset: str = "cifar10"
    model: str = "alexnet_small"
    dropout: float = 0.5
    epochs: int = 20
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 5e-4
    scheduler: str = "onecycle"

    TRAINING_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {"pretrained": PRETRAINED_SETTINGS}


if __name__ == "__main__":
    run_recipe(AlexNetRecipe, __doc__)
    end_process()
