"""Options as data: a dataclass field per option, and the command-line flags and JSON made from them.

A concern declares its options next to its code as a dataclass of :func:`option` fields (a default, a
help text, optionally choices, a parser for the flag's text, and flag aliases). A recipe's config and
a tool's options are dataclasses composed of those classes; :func:`build_parser` generates one
``--flag`` per field (underscores become dashes) with the field's own default, help and choices, so a
flag means the same thing, with the same default, wherever it appears. :func:`parse_options` reads
``--config FILE`` first (a saved ``config.json``) and lets flags given on the command line override it;
values from a file are checked against the field's declared type exactly like flags are.
:func:`prefixed` reuses an option class's fields under a name prefix (``--prune-importance`` is
``importance`` of the pruning options).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import types
import typing
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ignite_cv.utils.errors import UserError

T = TypeVar("T")


def option(
    default: Any,
    help: str,
    choices: Sequence[Any] | None = None,
    parse: Callable[[str], Any] | None = None,
    aliases: Sequence[str] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    const: Any = None,
) -> Any:
    """A config field: its ``default``, its ``--help`` text and, for a fixed set, the allowed values.

    ``parse`` turns the flag's text into the value (default: the field's type); ``aliases`` are extra
    flag spellings (``--global``); ``minimum``/``maximum`` bound a number (inclusive), checked for
    flags and files alike; ``const`` is the value of the flag given without one (``--lr-find`` alone).
    """
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if parse is not None:
        metadata["parse"] = parse
    if aliases:
        metadata["aliases"] = tuple(aliases)
    if minimum is not None:
        metadata["minimum"] = minimum
    if maximum is not None:
        metadata["maximum"] = maximum
    if const is not None:
        metadata["const"] = const
    return dataclasses.field(default=default, metadata=metadata)


def option_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def field_metadata(cls: type, name: str) -> dict[str, Any]:
    """Help text and choices of field ``name``: a class that only changes a default inherits them."""
    for klass in cls.__mro__:
        own = getattr(klass, "__dataclass_fields__", {}).get(name)
        if own is not None and own.metadata:
            return dict(own.metadata)
    return {}


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints`` once per class: it compiles every annotation string again on each call
    (0.3 s of every run's start-up went to asking it once per option)."""
    return typing.get_type_hints(cls)


def field_type(cls: type, name: str) -> Any:
    return _type_hints(cls)[name]


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def prefixed(
    cls: type, prefix: str, rename: dict[str, str] | None = None, include: Sequence[str] | None = None
) -> type:
    """A dataclass with the fields of ``cls`` (all, or those in ``include``) under ``prefix + name``
    (or ``rename[name]``): same types, defaults, help and choices, so an option is declared once."""
    rename = rename or {}
    hints = _type_hints(cls)
    specs = []
    for f in option_fields(cls):
        if include is not None and f.name not in include:
            continue
        metadata = field_metadata(cls, f.name)
        name = rename.get(f.name, prefix + f.name)
        if "aliases" in metadata:
            dashed = "--" + prefix.replace("_", "-")
            aliases = (dashed + a.lstrip("-") for a in metadata["aliases"])
            metadata["aliases"] = tuple(a for a in aliases if a != flag(name))
        specs.append(
            (
                name,
                hints[f.name],
                dataclasses.field(default=f.default, metadata=metadata),
            )
        )
    made = dataclasses.make_dataclass(f"Prefixed{cls.__name__}", specs)
    made.__doc__ = f"{cls.__name__}'s options under the prefix {prefix!r}."
    return made


# ----------------------------------------------------------------------------------------------
# values: parsing text, checking types


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes/no, got {text!r}")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None


def _optional(ftype: Any) -> tuple[Any, bool]:
    """``(inner type, whether None is allowed)`` of ``X | None``."""
    origin = typing.get_origin(ftype)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ftype) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(ftype)) == 2:
            return args[0], True
    return ftype, False


def _text_parser(cls: type, f: dataclasses.Field) -> Callable[[str], Any]:
    metadata = field_metadata(cls, f.name)
    if "parse" in metadata:
        return metadata["parse"]
    ftype, nullable = _optional(field_type(cls, f.name))
    if ftype is bool:
        base: Callable[[str], Any] = _parse_bool
    elif typing.get_origin(ftype) is tuple:
        base = _int_list
    else:
        base = ftype

    if not nullable:
        return base

    def parse(text: str) -> Any:
        return None if text.lower() in ("none", "") else base(text)

    parse.__name__ = getattr(base, "__name__", "value")
    return parse


def parse_text(cls: type, name: str, text: str) -> Any:
    """``text`` (as a flag would be given) as the value of field ``name``, checked like a flag's value;
    a one-line :class:`UserError` when it does not parse."""
    try:
        value = _text_parser(cls, next(f for f in option_fields(cls) if f.name == name))(text)
    except argparse.ArgumentTypeError as err:
        raise UserError(f"{flag(name)}: {err}", f"see the help of {flag(name)}") from None
    except ValueError:
        kind = {int: "a whole number", float: "a number"}.get(_optional(field_type(cls, name))[0], "a value")
        raise UserError(
            f"{flag(name)} must be {kind}, got {text!r}", f"see the help of {flag(name)}"
        ) from None
    return check_value(cls, name, value)


def check_value(cls: type, name: str, value: Any) -> Any:
    """``value`` for field ``name`` converted to its declared type (JSON lists → tuples), or a UserError.

    The rules are the flags': bools are true/false (not strings), ints are whole numbers (not 12.5 or
    true), floats are finite numbers, strings are strings; ``None`` only where the type allows it;
    choices and numeric bounds hold.
    """
    ftype, nullable = _optional(field_type(cls, name))
    where = flag(name)
    if value is None:
        if nullable:
            return None
        raise UserError(f"{where} must not be null", "give it a value, or drop it to use the default")
    if ftype is bool:
        if not isinstance(value, bool):
            raise UserError(
                f"{where} must be true or false, got {value!r}", "write true or false (JSON) or yes/no"
            )
    elif ftype is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise UserError(f"{where} must be a whole number, got {value!r}", f"pass e.g. {where} 10")
    elif ftype is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where} must be a number, got {value!r}", f"pass e.g. {where} 0.1")
        value = float(value)
        if not math.isfinite(value):
            raise UserError(f"{where} must be a finite number, got {value!r}", "pass a finite number")
    elif ftype is str:
        if not isinstance(value, str):
            raise UserError(f"{where} must be a string, got {value!r}", "quote it")
    elif typing.get_origin(ftype) is tuple:
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise UserError(
                f"{where} must be a list of whole numbers, got {value!r}", f"pass e.g. {where} 64,32"
            )
        value = tuple(value)
    metadata = field_metadata(cls, name)
    choices = metadata.get("choices")
    if choices and value not in choices:
        raise UserError(f"unknown {where} {value!r}", f"choose one of: {', '.join(map(str, choices))}")
    low, high = metadata.get("minimum"), metadata.get("maximum")
    for number in value if isinstance(value, tuple) else (value,):  # a list's bounds hold for each entry
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            if low is not None and number < low:
                raise UserError(f"{where} {number} is below its minimum {low:g}", f"pass a value >= {low:g}")
            if high is not None and number > high:
                raise UserError(
                    f"{where} {number} is above its maximum {high:g}", f"pass a value <= {high:g}"
                )
    return value


def check_options(options: Any) -> None:
    """Check every field of a built options object by its declared type, choices and bounds, as flags are.

    A config built in Python (the dataclass constructor, ``dataclasses.replace``) never went through
    :func:`make_options`; ``fit`` calls this first, so such a config is refused before any work too.
    Values are normalised in place as :func:`check_value` returns them (a JSON list becomes a tuple).
    """
    for f in option_fields(type(options)):
        object.__setattr__(options, f.name, check_value(type(options), f.name, getattr(options, f.name)))


#: The fields given on the command line or in --config, by ``id`` of the parsed object (kept beside it,
#: not in it: ``vars(options)`` and ``asdict`` stay the fields; dropped when the object is collected).
_GIVEN: dict[int, frozenset[str]] = {}


def _record_given(options: Any, names: frozenset[str]) -> None:
    _GIVEN[id(options)] = names
    weakref.finalize(options, _GIVEN.pop, id(options), None)


def given_options(options: Any) -> frozenset[str] | None:
    """The option names set by a flag or a ``--config`` key when ``options`` was parsed (or marked with
    :func:`mark_given`); None for options built in code, where nothing tells a value passed from a
    default (``dataclasses.replace`` also builds anew and forgets)."""
    return _GIVEN.get(id(options))


def changed_options(options: Any) -> frozenset[str]:
    """The fields the user set: :func:`given_options` of a parsed object; for one built in Python, the
    fields whose value differs from the default."""
    recorded = _GIVEN.get(id(options))
    if recorded is not None:
        return recorded
    return frozenset(f.name for f in option_fields(type(options)) if getattr(options, f.name) != _default(f))


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


# ----------------------------------------------------------------------------------------------
# flags


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse whose errors are one-line :class:`UserError` s (exit 2 at the command-line boundary)."""

    def error(self, message: str) -> typing.NoReturn:
        raise UserError(f"{message}", f"see {self.prog} --help")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's lines (a recipe's example commands stay one per line)."""


def build_parser(
    cls: type,
    description: str | None = None,
    prog: str | None = None,
    skip: Sequence[str] = ("recipe",),
    config_file: bool = True,
) -> argparse.ArgumentParser:
    """One flag per dataclass field, with the field's default, help text and choices."""
    parser = OneLineErrorParser(description=description, prog=prog, formatter_class=_HelpFormatter)
    if config_file:
        parser.add_argument("--config", help="a saved config.json to start from; other flags override it")
    extra_aliases = flag_aliases(cls)
    for f in option_fields(cls):
        if f.name in skip:
            continue
        ftype, _ = _optional(field_type(cls, f.name))
        metadata = field_metadata(cls, f.name)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kwargs: dict[str, Any] = {
            "default": argparse.SUPPRESS,
            "help": metadata.get("help", "") + f" (default: {_show(default)})",
            "type": _text_parser(cls, f),
        }
        if ftype is bool:
            kwargs.update(nargs="?", const=True, metavar="yes|no")
        elif typing.get_origin(ftype) is tuple:
            kwargs.update(metavar="N,N,...")
        if "const" in metadata:
            kwargs.update(nargs="?", const=metadata["const"])
        if "choices" in metadata:
            kwargs["choices"] = metadata["choices"]
        aliases = (*metadata.get("aliases", ()), *extra_aliases.get(f.name, ()))
        parser.add_argument(flag(f.name), *aliases, dest=f.name, **kwargs)
    return parser


def flag_aliases(cls: type) -> dict[str, tuple[str, ...]]:
    """Extra flag spellings an option class gives fields declared elsewhere: its ``FLAG_ALIASES``
    class attribute, ``{field name: ("--alias", ...)}``, merged over the class's bases (e.g. the
    transfer options name the fine-tuning phase's ``--lr`` also ``--finetune-lr``)."""
    merged: dict[str, tuple[str, ...]] = {}
    for klass in reversed(cls.__mro__):
        for name, aliases in vars(klass).get("FLAG_ALIASES", {}).items():
            merged[name] = tuple(dict.fromkeys((*merged.get(name, ()), *aliases)))
    return merged


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "none"
    return repr(value) if value == "" else str(value)


def parse_options(
    cls: type[T],
    argv: list[str] | None = None,
    description: str | None = None,
    prog: str | None = None,
    positionals: Sequence[tuple[str, dict[str, Any]]] = (),
) -> T | tuple[T, dict[str, Any]]:
    """Parse ``argv`` into ``cls``: defaults ← ``--config FILE`` ← flags given on the command line.

    ``positionals`` (``[(name, argparse kwargs)]``) are added before the fields' flags; when given,
    returns ``(options, {name: value})``.
    """
    parser = build_parser(cls, description, prog)
    for name, kwargs in positionals:
        parser.add_argument(name, **kwargs)
    args = vars(parser.parse_args(argv))
    extra = {name: args.pop(name) for name, _ in positionals}
    values: dict[str, Any] = {}
    config_file = args.pop("config", None)
    if config_file:
        values.update(load_config_values(cls, Path(config_file), strict=True))
    values.update(args)
    options = make_options(cls, values)
    _record_given(options, frozenset(values))
    return (options, extra) if positionals else options


def make_options(cls: type[T], values: dict[str, Any]) -> T:
    """Build ``cls`` from a dict (flags or JSON), checking each value; unknown keys are refused.

    The names in ``values`` are recorded as the options the user chose (:func:`given_options`)."""
    known = {f.name for f in option_fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"unknown config keys: {', '.join(unknown)}", "remove them or check their spelling")
    options = cls(**{name: check_value(cls, name, value) for name, value in values.items()})
    return mark_given(options, values)


def mark_given(options: T, names) -> T:
    """Record ``names`` as the options the user set on ``options`` (see :func:`given_options`)."""
    _record_given(options, frozenset(names))
    return options


def load_config_values(cls: type, path: Path, strict: bool = False) -> dict[str, Any]:
    """The known fields of a saved ``config.json``. ``strict`` (``--config FILE``): a key ``cls`` lacks
    (a typo, another recipe's field) is refused; else (a run's own config on resume, perhaps from an
    older version) such keys are left out."""
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(
            f"config file {path} does not exist", "pass the config.json of an earlier run"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(
            f"config file {path} is not valid JSON ({err})", "pass a config.json written by ignite_cv"
        ) from None
    if not isinstance(values, dict):
        raise UserError(
            f"config file {path} does not hold a JSON object", "pass a config.json written by ignite_cv"
        )
    known = {f.name for f in option_fields(cls)}
    unknown = sorted(set(values) - known)
    if strict and unknown:
        raise UserError(
            f"config file {path} has keys this command does not take: {', '.join(unknown)}",
            "remove them or check their spelling (a config.json of another recipe has other keys)",
        )
    return {k: v for k, v in values.items() if k in known}
