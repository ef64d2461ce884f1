"""Command-line flags and the option reference, both read from the config dataclasses.

A config field is documented by the string right below it (an attribute docstring, the
convention Sphinx's autodoc reads as well); its type, default and allowed values (a
``Literal`` type) come from the dataclass itself. ``--help``, the option reference in
``docs/training-options.md`` and the config-file checks are all built here from those, so
none of them can drift from the code. Its first paragraph is the one sentence ``--help``
shows; the rest is for the reference.

Booleans read naturally: ``--latent-cache`` / ``--no-latent-cache``; a field that is itself
a negation (``no_attn``) becomes ``--no-attn`` / ``--with-attn`` rather than ``--no-no-attn``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import typing
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class OptionDoc:
    """One config field as a user meets it: its key, flags, type, default, values and words."""

    key: str  # the config-file key, dotted for nested sections ("weights.attn")
    flags: tuple[str, ...]
    type: Any
    default: Any
    choices: tuple[str, ...] | None
    doc: str

    @property
    def summary(self) -> str:
        """The first paragraph of the field's documentation, on one line."""
        return " ".join(self.doc.split("\n\n")[0].split())

    @property
    def details(self) -> str:
        """The whole documentation on one line (for the reference table)."""
        return " ".join(self.doc.split())

    @property
    def default_text(self) -> str:
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        if self.default == "":
            return "empty"
        return str(self.default)

    @property
    def value_text(self) -> str:
        if self.choices:
            return ", ".join(self.choices)
        if self.type is bool:
            return "on / off"
        return {int: "integer", float: "number"}.get(self.type, "text")


def literal_choices(cls) -> dict[str, tuple[str, ...]]:
    """Field name -> allowed values, for every ``Literal``-typed field of ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: typing.get_args(hints[f.name]) for f in dataclasses.fields(cls)
            if typing.get_origin(hints[f.name]) is Literal}


def field_docs(cls) -> dict[str, str]:
    """Field name -> its attribute docstring, inherited through the dataclass's bases.

    Python drops attribute docstrings when it compiles a class and the dataclasses module
    keeps none, so they are read from the class's source. A subclass that redefines a field
    only for a new default keeps its base's words.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def _flags(key: str, typ: Any) -> tuple[str, ...]:
    flag = "--" + key.replace("_", "-")
    if typ is not bool:
        return (flag,)
    leaf = key.rsplit(".", 1)[-1]
    if leaf.startswith("no_"):
        prefix = key[: len(key) - len(leaf)]
        return (flag, "--" + (prefix + "with_" + leaf[3:]).replace("_", "-"))
    return (flag, "--" + ("no_" + key).replace("_", "-"))


def option_docs(cls, prefix: str = "") -> list[OptionDoc]:
    """Every leaf field of ``cls`` (nested dataclasses flattened), in declaration order."""
    hints, docs, choices = typing.get_type_hints(cls), field_docs(cls), literal_choices(cls)
    out: list[OptionDoc] = []
    for f in dataclasses.fields(cls):
        typ = hints[f.name]
        if dataclasses.is_dataclass(typ):
            out.extend(option_docs(typ, f"{prefix}{f.name}."))
            continue
        key = prefix + f.name
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append(OptionDoc(key, _flags(key, typ), str if f.name in choices else typ, default,
                             choices.get(f.name), docs.get(f.name, "")))
    return out


def help_text(option: OptionDoc) -> str:
    """``--help``'s line: the sentence, the default and the allowed values."""
    text = f"{option.summary} Default: {option.default_text}."
    if option.choices:
        text += f" One of: {option.value_text}."
    return text.replace("%", "%%")  # argparse formats help strings with %


class _NegatedSwitch(argparse.Action):
    """``--no-attn`` sets a ``no_*`` field, ``--with-attn`` clears it (a config file's setting included)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith("--with-"))


def add_config_arguments(parser: argparse.ArgumentParser, cls) -> None:
    """``--config FILE`` plus one flag per field of ``cls`` (``--weights.attn 0.3`` for nested ones)."""
    parser.add_argument("--config", metavar="FILE",
                        help="YAML, TOML or JSON file of options (the keys below, with underscores); flags override it.")
    for option in option_docs(cls):
        dest = "cfg__" + option.key.replace(".", "__")
        if option.type is bool and option.flags[-1].startswith("--with-"):
            parser.add_argument(*option.flags, dest=dest, action=_NegatedSwitch, default=None, help=help_text(option))
        elif option.type is bool:
            # BooleanOptionalAction adds the --no- form itself.
            parser.add_argument(option.flags[0], dest=dest, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text(option))
        elif option.choices:
            parser.add_argument(*option.flags, dest=dest, default=None, choices=option.choices, help=help_text(option))
        else:
            metavar = {int: "INT", float: "FLOAT"}.get(option.type, "TEXT")
            parser.add_argument(*option.flags, dest=dest, default=None, metavar=metavar, help=help_text(option))
