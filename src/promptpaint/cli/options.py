"""Click options generated from the typed option models, so the CLI, the Python API, recipes and
the HTTP API can never disagree on a name, a default or a help text."""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import click
from pydantic import BaseModel

# Shown as-is in --help; also used for the short forms.
_SHORT = {"find": "-f", "prompt": "-p"}
_METAVARS = {"box": "X0,Y0,X1,Y1", "point": "X,Y[,L]", "mask": "FILE", "aspect": "W:H", "expand": "L,T,R,B",
             "size": "WxH"}
_AS_TEXT = {"box", "point"}  # parsed by the model's validators, not by click
#: a field's ``json_schema_extra`` key: the value its flag takes when given without one (``--crop``)
FLAG_VALUE = "cli_flag_value"


def _click_type(annotation: Any) -> tuple[Any, bool, bool]:
    """(click type, multiple, flag) for a pydantic field annotation."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is list:
        return str, True, False
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and args:
        return _click_type(args[0])
    if origin is typing.Literal:
        return click.Choice([str(a) for a in typing.get_args(annotation)]), False, False
    if annotation is bool:
        return bool, False, True
    if annotation in (int, float, str):
        return annotation, False, False
    return str, False, False


def options_from(model: type[BaseModel], *, skip: tuple[str, ...] = (), show_default: bool = True) -> Callable:
    """A decorator adding one ``--option`` per field of ``model`` (defaults None = 'not given')."""

    def decorate(func: Callable) -> Callable:
        for name, field in reversed(list(model.model_fields.items())):
            if name in skip or name == "op":
                continue
            ctype, multiple, flag = _click_type(field.annotation)
            if name in _AS_TEXT:
                ctype, multiple = str, True
            decls = [f"--{name.replace('_', '-')}"] + ([_SHORT[name]] if name in _SHORT else [])
            default = field.get_default(call_default_factory=False) if field.default_factory is None else None
            help_text = field.description or ""
            if show_default and default not in (None, [], "", False) and not multiple:
                help_text += f" [default: {default}]"
            kwargs: dict[str, Any] = {"help": help_text.strip(), "default": None, "metavar": _METAVARS.get(name)}
            if flag:
                kwargs.update(is_flag=True, default=None)
            elif FLAG_VALUE in (field.json_schema_extra or {}):  # the value may be left out: --crop [PAD]
                kwargs.update(type=ctype, is_flag=False, flag_value=field.json_schema_extra[FLAG_VALUE])
            else:
                kwargs.update(type=ctype, multiple=multiple)
                if multiple:
                    kwargs["default"] = ()
            func = click.option(*decls, **kwargs)(func)
        return func

    return decorate


def given(values: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """The options the user actually gave, restricted to ``model``'s fields."""
    return {k: v for k, v in values.items()
            if k in model.model_fields and v is not None and v != () and v is not False}
