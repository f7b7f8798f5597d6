"""`docs/configuration.md`, generated from the settings model: every `BOOKWELL_*` variable with its
type, default and meaning. `make configuration-doc` writes it; a test fails when it drifts."""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from bookwell.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

HEADER = """# Configuration

Every setting is a `BOOKWELL_*` environment variable, read and checked once at start-up
(`src/bookwell/settings.py`, on pydantic-settings). Where a variable is not set (or is empty), a
file of that name in `BOOKWELL_SECRETS_DIR` is used (how Docker and Kubernetes mount secrets: the
file holds the value), then the same line in a `.env` file in the folder the process starts in,
then the default. A `BOOKWELL_*` name that names no setting, in any of these places and in any
case, is refused outside development (with the setting it probably meant) and warned about in
development. Generated from
the settings model by `make configuration-doc`; `tests/unit/test_configuration_doc.py` fails when
this file and the model differ.

| Variable | Type | Default | Meaning |
|---|---|---|---|
"""


def _type(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(f"`{value}`" for value in typing.get_args(annotation))
    if isinstance(annotation, types.UnionType):
        return " or ".join(_type(part) for part in typing.get_args(annotation))
    if annotation is Path:
        return "path"
    return "none" if annotation is type(None) else annotation.__name__


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:  # computed where the process runs: its docstring says how
        return " ".join((field.default_factory.__doc__ or "computed").split())
    if field.default is None:
        return "unset"
    if field.default == "":
        return "empty"
    return f"`{str(field.default).lower() if isinstance(field.default, bool) else field.default}`"


def render() -> str:
    """The reference, one row per setting in the model's order."""
    rows = [
        f"| `BOOKWELL_{name.upper()}` | {_type(field.annotation)} | {_default(field)} | {field.description} |"
        for name, field in Settings.model_fields.items()
    ]
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOC}\n")
