"""Options that choose and shape the model (architecture arguments are passed to its builder by name)."""

from __future__ import annotations

from dataclasses import dataclass

from ignite_cv.utils.options import option

MODES = ("scratch", "extract", "finetune")


@dataclass
class ModelOptions:
    model: str = option(
        "tinyvgg",
        "architecture name from the model registry (mlp, tinyvgg, resnet18, resnet34, resnet50, alexnet "
        "for 63 px and up, alexnet_small for 28-32 px)",
    )
    hidden_units: int = option(32, "TinyVGG: channels of its conv blocks")
    hidden_sizes: tuple[int, ...] = option((512, 256), "MLP: widths of its hidden layers")
    batch_norm: bool = option(True, "MLP/TinyVGG: BatchNorm after each hidden layer")
    dropout: float = option(
        0.2, "dropout before the classifier (MLP: after each hidden layer; ResNet/AlexNet: in the new head)"
    )
    head_hidden: bool = option(
        False,
        "ResNet/AlexNet: give the new head a hidden layer whose width is the power of two closest to the "
        "square root of the backbone's feature width (512 -> 16, 2048 -> 32, 4096 -> 64)",
    )
    weights: str = option(
        "none",
        "initial weights: imagenet (torchvision's, from the torch hub cache, downloaded when online; "
        "resnet18/34/50, alexnet), none (random), or FILE: a .safetensors or .pth state dict, or an "
        "ignite_cv checkpoint of the same architecture (its head is replaced)",
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
        30, "finetune: epochs of the head-only warm-up phase (early stopping applies) before --unfreeze"
    )
    head_optimizer: str = option(
        "adam", "extract, and the finetune warm-up: optimizer of the head", choices=("sgd", "adam", "adamw")
    )
    head_lr: float = option(1e-3, "extract, and the finetune warm-up: learning rate of the head")
    train_bn: bool = option(
        False, "let frozen BatchNorm layers update their running statistics (default: they stay in eval mode)"
    )
