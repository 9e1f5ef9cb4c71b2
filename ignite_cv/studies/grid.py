"""A study's grid: ``--grid FIELD=V1,V2`` axes, their combinations, and one typed config per run.

An axis is one config field with its values (``init=kaiming,xavier``) or several fields that vary
together, joined by ``+`` in the field and in each value (``mode+unfreeze=scratch+all,finetune+1``:
two runs, not four). The study's runs are every combination of the axes (the cross product, the last
axis varying fastest) for each recipe given. Values are read exactly as the recipe's flags read them
(:func:`ignite_cv.utils.options.parse_text`: type, choices, bounds), so a value that a flag would
refuse is refused here, before anything trains. A list value writes its items with spaces
(``hidden_sizes=512 256,256``, quoted in the shell).

The flags for every run (``--epochs 3 --dataset digits``, or ``--config FILE``) are the recipes' own
flags; one that only some recipes have applies to those (``--hidden-units`` to TinyVGG in an
MLP-vs-TinyVGG study); one that none has is an error.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ignite_cv.utils.errors import UserError
from ignite_cv.utils.options import (
    build_parser,
    field_metadata,
    flag,
    load_config_values,
    option_fields,
    parse_text,
)

__all__ = [
    "Axis",
    "Combination",
    "check_not_fixed",
    "combinations",
    "fixed_values",
    "parse_axis",
    "run_name",
    "split_flags",
]

#: Fields a study sets itself for each run; a grid or a flag for every run may not.
STUDY_FIELDS = ("output_dir", "run_name", "resume")
#: Runs' folder names keep at most this many characters per value.
MAX_VALUE_CHARS = 32


@dataclass(frozen=True)
class Axis:
    """Fields that vary together and their values (one text per field per value), as given."""

    fields: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]

    @property
    def spec(self) -> str:
        """The axis as ``--grid`` writes it."""
        return "+".join(self.fields) + "=" + ",".join("+".join(v) for v in self.values)


def _field_name(text: str) -> str:
    return text.strip().lstrip("-").replace("-", "_")


def parse_axis(spec: str) -> Axis:
    """``FIELD=V1,V2`` or ``F1+F2=A1+A2,B1+B2`` as an :class:`Axis` (values as text, not yet typed)."""
    fix = "write --grid FIELD=V1,V2 (several fields varying together: F1+F2=A1+A2,B1+B2)"
    if "=" not in spec:
        raise UserError(f"--grid {spec!r} has no '='", fix)
    left, right = spec.split("=", 1)
    fields = tuple(_field_name(f) for f in left.split("+"))
    if not all(fields):
        raise UserError(f"--grid {spec!r} has an empty field name", fix)
    if len(set(fields)) != len(fields):
        raise UserError(f"--grid {spec!r} names a field twice", fix)
    for name in fields:
        if name == "recipe":
            raise UserError(
                "--grid recipe=... is not how recipes vary", "give them first: tools/study.py mlp,tinyvgg ..."
            )
        if name in STUDY_FIELDS:
            raise UserError(f"--grid {name} is set by the study itself", f"drop {flag(name)} from --grid")
    texts = [t.strip() for t in right.split(",")]
    values = []
    for text in texts:
        parts = tuple(p.strip() for p in text.split("+")) if len(fields) > 1 else (text,)
        if len(parts) != len(fields) or (len(fields) > 1 and not all(parts)):
            raise UserError(
                f"--grid {spec!r}: value {text!r} does not give one item for each of {'+'.join(fields)}",
                f"write each value as {'+'.join('V' for _ in fields)}",
            )
        if len(fields) == 1 and text == "":
            raise UserError(f"--grid {spec!r} has an empty value", "remove the extra comma")
        values.append(parts)
    if len(set(values)) != len(values):
        raise UserError(f"--grid {spec!r} repeats a value", "list each value once")
    return Axis(fields, tuple(values))


def check_axes(axes: Sequence[Axis]) -> None:
    """Each field on one axis only."""
    seen: dict[str, str] = {}
    for axis in axes:
        for name in axis.fields:
            if name in seen:
                raise UserError(
                    f"--grid field {name} appears in {seen[name]!r} and {axis.spec!r}",
                    "give each field on one axis (join fields that vary together with +)",
                )
            seen[name] = axis.spec


@dataclass(frozen=True)
class Combination:
    """One run of the grid: its recipe and the text of each grid field's value."""

    recipe: str
    texts: tuple[tuple[str, str], ...]

    @property
    def values(self) -> dict[str, str]:
        return dict(self.texts)


def combinations(recipes: Sequence[str], axes: Sequence[Axis]) -> list[Combination]:
    """Every recipe × every combination of the axes (the last axis varying fastest)."""
    check_axes(axes)
    found = []
    for recipe in recipes:
        for picks in itertools.product(*(axis.values for axis in axes)):
            texts = tuple(
                (name, text) for axis, pick in zip(axes, picks) for name, text in zip(axis.fields, pick)
            )
            found.append(Combination(recipe, texts))
    return found


def typed_values(cls: type, recipe: str, combination: Combination) -> dict[str, Any]:
    """The combination's values as ``cls`` (the recipe's config class) types them; a one-line error
    naming the field when it is not an option of the recipe or its value does not fit."""
    known = {f.name for f in option_fields(cls)}
    values = {}
    for name, text in combination.texts:
        if name not in known:
            raise UserError(
                f"--grid {name}: recipe {recipe} has no option {flag(name)}",
                f"check the spelling (python recipes/{recipe}.py --help lists its options), or vary it in "
                "a study of the recipes that have it",
            )
        try:
            values[name] = parse_text(cls, name, text)
        except UserError as err:
            raise UserError(f"--grid {name}={text} (recipe {recipe}): {err}") from None
    return values


# ----------------------------------------------------------------------------------------------
# the flags for every run


def split_flags(argv: Sequence[str]) -> list[list[str]]:
    """``["--epochs", "3", "--amp", "bf16"]`` → ``[["--epochs", "3"], ["--amp", "bf16"]]``: each flag with
    the words after it (``--flag=value`` is one word)."""
    chunks: list[list[str]] = []
    for word in argv:
        if word.startswith("--"):
            chunks.append([word])
        elif chunks:
            chunks[-1].append(word)
        else:
            raise UserError(
                f"unexpected argument {word!r}", "give the recipe first, then flags (--flag VALUE)"
            )
    return chunks


def check_not_fixed(axes: Sequence[Axis], chunks: Sequence[Sequence[str]]) -> None:
    """A field is either on the grid or a flag for every run, not both."""
    given = {chunk[0].split("=", 1)[0] for chunk in chunks}
    for axis in axes:
        for name in axis.fields:
            if flag(name) in given:
                raise UserError(
                    f"{flag(name)} is both on the grid and a flag for every run",
                    f"drop one of them ({axis.spec!r})",
                )


def _flags_of(cls: type) -> set[str]:
    names = {"--config"}
    for f in option_fields(cls):
        names.add(flag(f.name))
        names.update(field_metadata(cls, f.name).get("aliases", ()))
    return names


def fixed_values(classes: dict[str, type], chunks: Sequence[Sequence[str]]) -> dict[str, dict[str, Any]]:
    """Per recipe, the config values the flags for every run give (``--config FILE`` first, flags
    over it), each checked by that recipe's parser; a flag no recipe has is a one-line error."""
    known = {recipe: _flags_of(cls) for recipe, cls in classes.items()}
    for chunk in chunks:
        name = chunk[0].split("=", 1)[0]
        if name in ("--output-dir", "--run-name", "--resume"):
            raise UserError(
                f"{name} is set by the study for each run",
                "give the study's folder as --output-dir only once",
            )
        if not any(name in flags for flags in known.values()):
            raise UserError(
                f"unknown flag {name} for recipe(s) {', '.join(classes)}",
                f"see python recipes/{next(iter(classes))}.py --help",
            )
    result = {}
    for recipe, cls in classes.items():
        mine = [word for chunk in chunks if chunk[0].split("=", 1)[0] in known[recipe] for word in chunk]
        parser = build_parser(cls, prog=f"tools/study.py {recipe}")
        args = vars(parser.parse_args(mine))
        values: dict[str, Any] = {}
        config_file = args.pop("config", None)
        if config_file:
            values.update(load_config_values(cls, Path(config_file)))
            for name in STUDY_FIELDS:
                values.pop(name, None)
        values.update(args)
        result[recipe] = values
    return result


# ----------------------------------------------------------------------------------------------
# names


def _short(text: str) -> str:
    """A value as a folder name shows it: a path by its file name without suffix, unsafe characters
    as ``-``, at most :data:`MAX_VALUE_CHARS` characters."""
    if "/" in text:
        text = Path(text).stem or text
    text = re.sub(r"[^A-Za-z0-9._+=-]", "-", text).strip(".")
    return text[:MAX_VALUE_CHARS] or "-"


def run_name(combination: Combination, several_recipes: bool) -> str:
    """The run's folder name: ``[recipe_]field=value_...``, with a short hash of the full values when a
    value had to be shortened (a path, odd characters), so different values never share a name."""
    parts = [combination.recipe] if several_recipes or not combination.texts else []
    shortened = False
    for name, text in combination.texts:
        short = _short(text)
        shortened |= short != text
        parts.append(f"{name}={short}")
    name = "_".join(parts)
    if shortened:
        digest = hashlib.sha1(json.dumps([combination.recipe, combination.texts]).encode()).hexdigest()[:6]
        name += f"-{digest}"
    return name
