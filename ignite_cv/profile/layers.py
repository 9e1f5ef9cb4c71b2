"""Per-layer model summary: name, type, output shape, parameters, trainable or frozen, MACs — per image.

For ``tools/profile.py CHECKPOINT --layers`` and a run folder's ``model_summary.txt``.

Why not torchinfo: it handles our models (pruned ones too), but its multiply-add column disagrees with
the MACs every other ignite_cv tool reports (it counts a BatchNorm as its parameter count and skips
pooling and activations: TinyVGG 11.08M vs 11.30M), and it has not been released since 2023-05. The
MACs here come from torch-pruning's layer-wise counter — the counter behind
:func:`ignite_cv.profile.model.count_macs_params`, already a core dependency — so the table's total is the
figure ``tools/profile.py`` and ``tools/prune.py`` print. Names, types and output shapes come from one
forward pass with forward hooks; parameters and trainable state from the modules themselves.

MAC convention (torch-pruning's, after ptflops): conv ``k·k·C_in/groups·C_out·H_out·W_out`` (+ bias
per output element), linear ``in·out`` (+ ``out`` for the bias), BatchNorm 2 per input element,
pooling 1 per input element, ReLU-like 1 per output element. Functional operations in ``forward``
(a residual ``+``, ``torch.flatten``) are not modules and are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ignite_cv.utils.modules import unwrap
from ignite_cv.utils.text import markdown_table

__all__ = ["LayerRow", "format_layer_table", "layer_table", "model_summary_text"]


@dataclass(frozen=True)
class LayerRow:
    """One module of the model (``name`` ``""`` is the model itself).

    ``params``/``trainable``/``macs`` count the module's whole subtree; ``own_params`` only the
    parameters registered on the module itself (summing ``own_params`` over all rows gives the model's
    parameter count, with no double counting). ``output_shape`` is per image (no batch dimension) from
    the module's first call, ``None`` when the forward pass did not call it; ``calls`` counts the
    calls (a ReLU module reused in a block is called more than once; its MACs add up).
    """

    name: str
    type: str
    depth: int
    output_shape: tuple[int, ...] | None
    params: int
    own_params: int
    trainable: int
    macs: int
    calls: int
    is_leaf: bool

    @property
    def state(self) -> str:
        """``trainable``, ``frozen``, ``partial`` (some parameters frozen), or ``""`` without parameters."""
        if self.params == 0:
            return ""
        if self.trainable == self.params:
            return "trainable"
        return "frozen" if self.trainable == 0 else "partial"


def _first_shape(output: object) -> tuple[int, ...] | None:
    if isinstance(output, torch.Tensor):
        return tuple(output.shape[1:])
    if isinstance(output, (list, tuple)):
        for item in output:
            shape = _first_shape(item)
            if shape is not None:
                return shape
    if isinstance(output, dict):
        return _first_shape(list(output.values()))
    return None


def _shapes_and_calls(
    model: nn.Module, example: torch.Tensor
) -> tuple[dict[nn.Module, tuple[int, ...] | None], dict[nn.Module, int]]:
    shapes: dict[nn.Module, tuple[int, ...] | None] = {}
    calls: dict[nn.Module, int] = {}

    def hook(module: nn.Module, _inputs: object, output: object) -> None:
        calls[module] = calls.get(module, 0) + 1
        shapes.setdefault(module, _first_shape(output))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return shapes, calls


def _layer_macs(model: nn.Module, example: torch.Tensor) -> dict[nn.Module, int]:
    """MACs of each module's subtree for ``example`` (batch 1), from torch-pruning's layer-wise counter."""
    import torch_pruning as tp

    with torch.no_grad():
        _, _, layer_flops, _ = tp.utils.count_ops_and_params(model, example, layer_wise=True)
    return {module: int(value or 0) for module, value in layer_flops.items()}


def _device(model: nn.Module) -> torch.device:
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def layer_table(model: nn.Module, input_shape: Sequence[int]) -> list[LayerRow]:
    """One :class:`LayerRow` per module, in definition order, for one image of ``input_shape``.

    ``input_shape`` is ``(C, H, W)`` (or ``(features,)``), without the batch dimension: the counts are
    per image. The forward pass runs in eval mode under ``no_grad`` on the model's device (its mode is
    restored); wrappers (DDP, ``torch.compile``) are looked through. The first row is the model itself:
    its ``params``, ``trainable`` and ``macs`` are the totals.
    """
    base = unwrap(model)
    example = torch.zeros(1, *input_shape, device=_device(base))
    shapes, calls = _shapes_and_calls(base, example)
    macs = _layer_macs(base, example)
    rows = []
    for name, module in base.named_modules():
        params = list(module.parameters())
        rows.append(
            LayerRow(
                name=name,
                type=type(module).__name__,
                depth=0 if not name else name.count(".") + 1,
                output_shape=shapes.get(module),
                params=sum(p.numel() for p in params),
                own_params=sum(p.numel() for p in module.parameters(recurse=False)),
                trainable=sum(p.numel() for p in params if p.requires_grad),
                macs=macs.get(module, 0),
                calls=calls.get(module, 0),
                is_leaf=next(module.children(), None) is None,
            )
        )
    return rows


def _shape_text(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "-"
    return "×".join(str(s) for s in shape) if shape else "scalar"


def _count(n: int) -> str:
    return f"{n:,}" if n else "-"


def format_layer_table(rows: Sequence[LayerRow], max_depth: int | None = None) -> str:
    """The rows as a text table (markdown-compatible) with a totals line.

    Names are indented by depth; ``max_depth`` hides deeper modules (their counts stay in their
    parents' subtree totals, so the totals line is unchanged). Parameter and MAC columns of a
    container are its subtree's totals; a module called more than once shows ``×N`` after its type.
    """
    if not rows:
        raise ValueError("no rows: pass layer_table(model, input_shape)")
    root = rows[0]
    header = ["layer", "type", "output shape", "params", "trainable", "MACs"]
    body = []
    for row in rows:
        if max_depth is not None and row.depth > max_depth:
            continue
        label = "(model)" if not row.name else "  " * (row.depth - 1) + row.name
        kind = row.type + (f" ×{row.calls}" if row.calls > 1 else "")
        shape = _shape_text(row.output_shape)
        body.append([label, kind, shape, _count(row.params), row.state, _count(row.macs)])
    frozen = root.params - root.trainable
    totals = (
        f"total: {root.params:,} parameters ({root.trainable:,} trainable, {frozen:,} frozen); "
        f"{root.macs:,} MACs per image\n"
        "(MACs: torch-pruning's counter, as tools/profile.py; functional ops such as residual additions "
        "are not counted. Output shapes exclude the batch dimension.)\n"
    )
    return markdown_table(header, body) + totals


def model_summary_text(model: nn.Module, input_shape: Sequence[int], max_depth: int | None = None) -> str:
    """``model_summary.txt``: a title line with the input shape, then :func:`format_layer_table`."""
    title = f"{type(unwrap(model)).__name__} on input {_shape_text(tuple(input_shape))} (one image)\n\n"
    return title + format_layer_table(layer_table(model, input_shape), max_depth=max_depth)
