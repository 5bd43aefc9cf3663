"""Dataclasses of options that YAML configures: replace fields, refuse unknown names."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

from inversion.errors import InversionError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def with_fields(base: T, values: dict[str, Any] | None, what: str) -> T:
    """A copy of the dataclass instance ``base`` with some fields replaced.

    Args:
        base: The defaults.
        values: Field names and values (from YAML); None changes nothing.
        what: What the fields are, for the error message (e.g. "loss weights").

    Raises:
        InversionError: For a name that is not a field; the message lists the valid ones.
    """
    values = dict(values or {})
    fields = sorted(f.name for f in dataclasses.fields(base))
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InversionError(f"Unknown {what} {unknown}; valid ones: {fields}.")
    return dataclasses.replace(base, **values)
