"""Transfer learning with a torchvision ResNet: train from scratch, extract features, or fine-tune.

The users' main job. Defaults: ResNet-18 with ImageNet weights, ``--mode finetune`` (a head-only
warm-up of ``--warmup-epochs`` with Adam at a constant lr 1e-3, then the last ``--unfreeze`` blocks
with SGD, momentum 0.9, lr 1e-4, cosine, early stopping patience 20), ``--epochs 90`` for both phases
together, images at 224 px, ImageNet normalization. ``--mode scratch --weights none`` gets settings
for training from scratch instead (AdamW 2e-3, one cycle, the data's own statistics, channels and size,
20 epochs; printed at the start) unless you set them. Default data: scikit-learn's bundled digits.

    python recipes/resnet_finetune.py --dataset folder --data-root my_images/ --epochs 90
    python recipes/resnet_finetune.py --mode extract --dataset folder --data-root images.zip
    python recipes/resnet_finetune.py --weights none --mode scratch --dataset npz --data-root x.npz
    python recipes/resnet_finetune.py --weights W.safetensors --warmup-epochs 30 --finetune-epochs 90 \\
        --finetune-optimizer sgd --finetune-lr 1e-4 --finetune-patience 20 --dataset folder --data-root d/
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from ignite_cv.cli import run_recipe
from ignite_cv.config import TrainConfig
from ignite_cv.models.options import SCRATCH_SETTINGS, TransferOptions
from ignite_cv.utils.process_exit import end_process


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
    channels_last: bool = True

    TRAINING_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {"scratch": SCRATCH_SETTINGS}


if __name__ == "__main__":
    run_recipe(ResNetFinetuneRecipe, __doc__)
    end_process()
