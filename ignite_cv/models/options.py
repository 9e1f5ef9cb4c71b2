"""Options that choose and shape the model, one class per architecture family.

A recipe's config mixes in the class of its own family, so its ``--help`` shows only the fields its
model has: :class:`MLPOptions`, :class:`TinyVGGOptions`, or :class:`TransferOptions` (ResNet and
AlexNet: the new head, initial weights and the transfer-learning mode). Architecture arguments are
passed to the registry's builder by name (:func:`ignite_cv.models.registry.model_arg_names`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ignite_cv.models.init import INIT_DISTRIBUTIONS, INIT_SCHEMES
from ignite_cv.utils.options import option

MODES = ("scratch", "extract", "finetune")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("plateau", "cosine", "step", "onecycle", "none")

#: What training from random weights needs where a recipe's own defaults are for fine-tuning pretrained
#: weights (``--mode scratch --weights none``): an adaptive optimizer at a high peak LR with one cycle,
#: normalization from the data's own statistics, the data's own channels and size, flips, batches of
#: 128, every epoch trained. On PneumoniaMNIST at 28 px (docs/binary.md) this reaches a test ROC-AUC
#: above 0.94 where the fine-tuning defaults (SGD at 1e-4) learn nothing.
SCRATCH_SETTINGS: dict[str, Any] = {
    "optimizer": "adamw",
    "lr": 2e-3,
    "weight_decay": 5e-4,
    "scheduler": "onecycle",
    "patience": 0,
    "batch_size": 128,
    "normalize": "meanstd",
    "channels": 0,
    "image_size": 0,
    "augment": "flip",
    "epochs": 20,
}
#: What fine-tuning pretrained weights needs where a recipe's own defaults train from scratch:
#: ImageNet's input statistics and 3 channels (what the backbone saw), a low SGD LR for the unfrozen
#: blocks, and early stopping.
PRETRAINED_SETTINGS: dict[str, Any] = {
    "optimizer": "sgd",
    "lr": 1e-4,
    "weight_decay": 1e-4,
    "scheduler": "cosine",
    "patience": 20,
    "normalize": "imagenet",
    "channels": 3,
}
#: Every registered architecture (the registry checks names again when it builds one).
ARCHITECTURES = ("mlp", "tinyvgg", "resnet18", "resnet34", "resnet50", "alexnet", "alexnet_small")
TRANSFER_ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "alexnet", "alexnet_small")


@dataclass
class ModelOptions:
    model: str = option("tinyvgg", "architecture name from the model registry", choices=ARCHITECTURES)
    init: str = option(
        "default",
        "initial weights of the conv/linear layers that train from random weights: default (PyTorch's), "
        "kaiming (He: std = sqrt(2/fan_in)), xavier (Glorot: std = sqrt(2/(fan_in+fan_out))); biases zero, "
        "BatchNorm untouched; pretrained weights then overwrite what they cover",
        choices=INIT_SCHEMES,
    )
    init_distribution: str = option(
        "normal",
        "--init kaiming|xavier: a normal or a uniform distribution with that std",
        choices=INIT_DISTRIBUTIONS,
    )


@dataclass
class InitialWeightsOptions:
    """Where a model's first weights come from (every model family has them)."""

    weights: str = option(
        "none",
        "initial weights: none (random), imagenet (torchvision's, from the torch hub cache, downloaded when "
        "online; resnet18/34/50, alexnet), or FILE: a .safetensors or .pth state dict, or an ignite_cv "
        "checkpoint of the same architecture; the file's head is replaced, so its classes may differ",
    )


@dataclass
class MLPOptions(InitialWeightsOptions, ModelOptions):
    model: str = option("mlp", "architecture: a multi-layer perceptron", choices=("mlp",))
    hidden_sizes: tuple[int, ...] = option((512, 256), "widths of the hidden layers", minimum=1)
    batch_norm: bool = option(True, "BatchNorm after each hidden layer")
    dropout: float = option(0.2, "dropout after each hidden layer", minimum=0.0, maximum=0.99)


@dataclass
class TinyVGGOptions(InitialWeightsOptions, ModelOptions):
    model: str = option(
        "tinyvgg", "architecture: two VGG conv blocks and a linear classifier", choices=("tinyvgg",)
    )
    hidden_units: int = option(32, "channels of the conv blocks", minimum=1)
    batch_norm: bool = option(True, "BatchNorm after each convolution")
    dropout: float = option(0.0, "dropout before the classifier", minimum=0.0, maximum=0.99)


@dataclass
class TransferOptions(InitialWeightsOptions, ModelOptions):
    model: str = option(
        "resnet18",
        "architecture: torchvision's ResNet, AlexNet (63 px and up) or a small-input AlexNet (28-32 px)",
        choices=TRANSFER_ARCHITECTURES,
    )
    dropout: float = option(
        0.2, "dropout in the new head, before its linear layer", minimum=0.0, maximum=0.99
    )
    head_hidden: bool = option(
        False,
        "give the new head a hidden layer whose width is the power of two closest to the square root of the "
        "backbone's feature width (512 -> 16, 2048 -> 32, 4096 -> 64)",
    )
    mode: str = option(
        "scratch",
        "scratch: train every layer; extract: freeze the backbone, train only the new head; finetune: "
        "train the head for --warmup-epochs, then also the last --unfreeze backbone blocks",
        choices=MODES,
    )
    unfreeze: str = option(
        "all",
        "finetune: how many backbone blocks to unfreeze after the head-only phase, counted from the output "
        "(ResNet: layer4, layer3, layer2, layer1, stem; AlexNet: fc7, fc6, conv5 ... conv1), or all",
    )
    warmup_epochs: int = option(
        30,
        "finetune: epochs of the head-only warm-up phase (--head-* settings) before --unfreeze; --epochs "
        "counts the warm-up and the fine-tuning phase together",
        minimum=0,
    )
    finetune_epochs: int = option(
        0,
        "finetune: epochs of the fine-tuning phase after the warm-up (0 = the rest of --epochs); when "
        "set, --epochs becomes --warmup-epochs + --finetune-epochs (30 warm-up + 90 fine-tune: "
        "--warmup-epochs 30 --finetune-epochs 90)",
        minimum=0,
    )
    head_optimizer: str = option(
        "adam", "the head phase (extract, and the finetune warm-up): optimizer", choices=OPTIMIZERS
    )
    head_lr: float = option(1e-3, "the head phase: learning rate", minimum=1e-12)
    head_weight_decay: float = option(1e-4, "the head phase: weight decay", minimum=0.0)
    head_scheduler: str = option(
        "none",
        "the head phase: LR schedule (none = constant; plateau decays on --plateau-monitor)",
        choices=SCHEDULERS,
    )
    head_patience: int = option(
        0,
        "the head phase: early stopping after this many evaluations without improvement (0 = off)",
        minimum=0,
    )
    train_bn: bool = option(
        False, "let frozen BatchNorm layers update their running statistics (default: they stay in eval mode)"
    )

    #: The fine-tuning phase (and ``--mode scratch``'s one phase) reads the run's own optimizer flags;
    #: these spellings say so.
    FLAG_ALIASES: ClassVar[dict[str, tuple[str, ...]]] = {
        "optimizer": ("--finetune-optimizer",),
        "lr": ("--finetune-lr",),
        "weight_decay": ("--finetune-weight-decay",),
        "scheduler": ("--finetune-scheduler",),
        "patience": ("--finetune-patience",),
    }
    #: Settings by kind of training, ``"scratch"`` (``--mode scratch`` without ``--weights``) or
    #: ``"pretrained"`` (everything else), for the options the user did not set: a recipe whose own
    #: defaults are for one kind gives the other's here (:mod:`ignite_cv.defaults`).
    TRAINING_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {}
