"""Transfer learning with a torchvision ResNet: train from scratch, extract features, or fine-tune.

The users' main job. Defaults: ResNet-18 with ImageNet weights, ``--mode finetune`` (a head-only
warm-up of ``--warmup-epochs`` with Adam, then the last ``--unfreeze`` blocks with SGD, momentum 0.9,
lr 1e-4, early stopping patience 20), up to ``--epochs 90``, images at 224 px, ImageNet normalization.
Default data: scikit-learn's bundled digits (offline), so ``--weights none`` trains anywhere.

    python recipes/resnet_finetune.py --dataset folder --data-root my_images/ --epochs 90
    python recipes/resnet_finetune.py --mode extract --dataset folder --data-root images.zip
    python recipes/resnet_finetune.py --weights none --epochs 3          # no ImageNet weights needed
"""

from dataclasses import dataclass

from ignite_cv.cli import run_recipe
from ignite_cv.config import TrainConfig
from ignite_cv.models.options import TransferOptions


@dataclass
class ResNetFinetuneRecipe(TransferOptions, TrainConfig):
    recipe: str = "resnet_finetune"
    model: str = "resnet18"
    weights: str = "imagenet"
    mode: str = "finetune"
    unfreeze: str = "all"
    warmup_epochs: int = 30
    head_optimizer: str = "adam"
    head_lr: float = 1e-3
    epochs: int = 90
    optimizer: str = "sgd"
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 1e-4
    scheduler: str = "cosine"
    patience: int = 20
    image_size: int = 224
    channels: int = 3
    normalize: str = "imagenet"
    augment: str = "standard"
    batch_size: int = 32
    dropout: float = 0.2


if __name__ == "__main__":
    run_recipe(ResNetFinetuneRecipe, __doc__)
