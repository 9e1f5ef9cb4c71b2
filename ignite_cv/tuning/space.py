"""The ``--space`` language: ``NAME=KIND(ARGS)`` over any field of a config dataclass, checked against it.

Kinds (the field's declared type decides what Optuna draws):

- ``uniform(LOW, HIGH)`` or ``uniform(LOW, HIGH, STEP)``: a float field draws a float, an int field an
  int (``suggest_float`` / ``suggest_int``), LOW and HIGH included;
- ``log(LOW, HIGH)``: the same on a log scale (LOW > 0);
- ``choice(A, B, ...)``: one of the values (numbers, ``true``/``false``, ``null``, or bare words for
  string fields), each checked like the field's flag would be.

Every bound and choice goes through :func:`ignite_cv.utils.options.check_value`, so a search cannot
propose what the flag would refuse (a learning rate below its minimum, a batch size of 12.5, an
unknown optimizer). Mistakes are one-line :class:`~ignite_cv.utils.errors.UserError` s naming the spec.
Optuna is not imported here: :meth:`SearchParam.suggest` takes the trial it is given.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ignite_cv.utils.errors import UserError
from ignite_cv.utils.options import _optional, check_value, field_type, flag, option_fields

KINDS = ("uniform", "log", "choice")
_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*([a-z]+)\s*\((.*)\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class SearchParam:
    """One searched field: ``kind`` is uniform, log or choice; ``integer`` says an int field."""

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    choices: tuple[Any, ...] = ()
    integer: bool = False

    def suggest(self, trial: Any) -> Any:
        """The value ``trial`` (an ``optuna.Trial``) draws for this field."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        log = self.kind == "log"
        if self.integer:
            return trial.suggest_int(self.name, self.low, self.high, step=self.step or 1, log=log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=log)

    def describe(self) -> str:
        if self.kind == "choice":
            return f"{self.name}=choice({', '.join(json.dumps(c) for c in self.choices)})"
        step = f", {self.step}" if self.step is not None else ""
        return f"{self.name}={self.kind}({self.low}, {self.high}{step})"


def parse_space(
    specs: Iterable[str], config_cls: type, reserved: Sequence[str] = (), fixed: Iterable[str] = ()
) -> list[SearchParam]:
    """Parse ``--space`` specs against ``config_cls``. ``reserved``: fields the caller sets itself;
    ``fixed``: fields given as flags (searching one of them too is refused: which would win?)."""
    fields = {f.name for f in option_fields(config_cls)}
    fixed = set(fixed)
    params: list[SearchParam] = []
    for spec in specs:
        param = parse_param(spec, config_cls, fields, reserved)
        if param.name in fixed:
            raise UserError(
                f"--space {spec!r}: {flag(param.name)} is also given as a fixed flag", "give it only once"
            )
        if any(p.name == param.name for p in params):
            raise UserError(f"--space searches {param.name!r} twice", "give one spec per field")
        params.append(param)
    return params


def parse_param(spec: str, config_cls: type, fields: set[str], reserved: Sequence[str] = ()) -> SearchParam:
    """One ``NAME=KIND(ARGS)`` spec, checked against the field ``NAME`` of ``config_cls``."""
    match = _SPEC.match(spec)
    if match is None:
        raise UserError(
            f"--space {spec!r} is not NAME=KIND(ARGS)",
            "write e.g. 'lr=log(1e-5,1e-1)', 'dropout=uniform(0,0.5)' or 'batch_size=choice(32,64)'",
        )
    name, kind, body = match.group(1).replace("-", "_"), match.group(2), match.group(3)
    if name not in fields:
        close = difflib.get_close_matches(name, sorted(fields), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "see the recipe's --help for its fields"
        raise UserError(f"--space {spec!r}: the config has no field {name!r}", hint)
    if name in reserved:
        raise UserError(
            f"--space {spec!r}: {name!r} is set by the tuner for each trial", "search another field"
        )
    if kind not in KINDS:
        raise UserError(f"--space {spec!r}: unknown kind {kind!r}", f"use one of: {', '.join(KINDS)}")
    args = [_literal(token) for token in _split_args(body)]
    ftype, _ = _optional(field_type(config_cls, name))
    if kind == "choice":
        return _choice(spec, config_cls, name, args)
    if ftype not in (int, float):
        raise UserError(
            f"--space {spec!r}: {name!r} is a {_type_name(ftype)} field, {kind}() draws numbers",
            f"use {name}=choice(...)",
        )
    return _range(spec, config_cls, name, kind, args, integer=ftype is int)


def _range(spec: str, cls: type, name: str, kind: str, args: list[Any], integer: bool) -> SearchParam:
    if len(args) not in (2, 3) or (kind == "log" and len(args) != 2):
        usage = f"{name}={kind}(LOW, HIGH)" + ("" if kind == "log" else " or (LOW, HIGH, STEP)")
        raise UserError(
            f"--space {spec!r}: {kind}() takes LOW, HIGH" + ("" if kind == "log" else "[, STEP]"), usage
        )
    low, high = (_bound(spec, cls, name, v, integer) for v in args[:2])
    if not low < high:
        raise UserError(f"--space {spec!r}: LOW {low} is not below HIGH {high}", "swap or widen the bounds")
    if kind == "log" and low <= 0:
        raise UserError(
            f"--space {spec!r}: log() needs LOW > 0, got {low}", f"use {name}=uniform(...) or LOW > 0"
        )
    step = None
    if len(args) == 3:
        step = args[2]
        wrong = isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0
        if integer and not wrong:
            wrong = not float(step).is_integer()
            step = int(step) if not wrong else step
        if wrong:
            kind_of = "a whole number" if integer else "a number"
            raise UserError(f"--space {spec!r}: STEP must be {kind_of} > 0, got {step!r}", "fix the step")
    return SearchParam(name, kind, low, high, step, integer=integer)


def _bound(spec: str, cls: type, name: str, value: Any, integer: bool) -> float | int:
    if isinstance(value, (str, bool)) or value is None:
        expected = "whole numbers" if integer else "numbers"
        raise UserError(
            f"--space {spec!r}: bounds of {name!r} must be {expected}, got {value!r}", "fix the bound"
        )
    if integer and isinstance(value, float) and not value.is_integer():
        raise UserError(
            f"--space {spec!r}: {name!r} is an int field, bound {value!r} is not a whole number",
            "give whole-number bounds",
        )
    try:
        return check_value(cls, name, value)
    except UserError as err:
        raise UserError(f"--space {spec!r}: {err}") from None


def _choice(spec: str, cls: type, name: str, args: list[Any]) -> SearchParam:
    if not args:
        raise UserError(f"--space {spec!r}: choice() needs at least one value", f"write {name}=choice(A, B)")
    ftype, _ = _optional(field_type(cls, name))
    if typing.get_origin(ftype) is tuple:
        raise UserError(
            f"--space {spec!r}: {name!r} is a list field, which Optuna cannot draw", "search a scalar field"
        )
    values = []
    for value in args:
        try:
            checked = check_value(cls, name, value)
        except UserError as err:
            raise UserError(f"--space {spec!r}: {err}") from None
        if checked not in values:
            values.append(checked)
    return SearchParam(name, "choice", choices=tuple(values), integer=ftype is int)


def _split_args(body: str) -> list[str]:
    """Split at top-level commas (quotes kept together); empty body → no arguments."""
    if not body.strip():
        return []
    parts, current, quote = [], [], ""
    for char in body:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == ",":
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


def _literal(token: str) -> Any:
    """A JSON value (numbers, true/false, null, "quoted") or the bare word itself."""
    if len(token) >= 2 and token[0] == token[-1] == "'":
        return token[1:-1]
    lowered = token.lower()
    if lowered in ("true", "false", "null", "none"):
        return {"true": True, "false": False}.get(lowered)
    try:
        return json.loads(token)
    except json.JSONDecodeError:
        pass
    try:
        return float(token)  # 1e-5, .5, inf (refused later as not finite)
    except ValueError:
        return token


def _type_name(ftype: Any) -> str:
    return getattr(ftype, "__name__", str(ftype))
