"""Request models derived from the bases in :mod:`server.models`, so a field's rules are written
once: ``create_model_of`` (every field as the base declares it) and ``update_model_of`` (every
field optional, for PATCH).

Two rules are added on the way. The models declare string patterns with SQLModel's ``regex=``,
which the installed SQLModel (0.0.50) keeps but never enforces; the derived models restore them as
real ``pattern`` constraints, so the API refuses a malformed card UID or site code with 422. And a
foreign-key id must fit the database's 32-bit integer, so a huge number is a 422 too, not a
database error.
"""

from __future__ import annotations

from copy import copy
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from sqlmodel import SQLModel

MAX_ID = 2**31 - 1
_STRICT = ConfigDict(extra="forbid")


class _Strict(SQLModel):
    """Mixed into request models: an unknown field (a typo) is an error, not silently dropped."""

    model_config = _STRICT


def _annotation(info: FieldInfo) -> Any:
    regex = getattr(info, "_attributes_set", {}).get("regex")
    if regex:
        return Annotated[info.annotation, Field(pattern=regex)]
    if getattr(info, "foreign_key", PydanticUndefined) not in (PydanticUndefined, None):
        return Annotated[info.annotation, Field(ge=1, le=MAX_ID)]
    return info.annotation


def create_model_of(base: type[SQLModel], name: str) -> type[SQLModel]:
    """``base`` with the rules above and unknown fields refused; keeps the base's validators."""
    fields: dict[str, Any] = {
        key: (_annotation(info), copy(info)) for key, info in base.model_fields.items()
    }
    return create_model(name, __base__=(base, _Strict), **fields)  # type: ignore[call-overload]


def update_model_of(
    base: type[SQLModel], name: str, *, exclude: tuple[str, ...] = ()
) -> type[BaseModel]:
    """Every field of ``base`` but ``exclude`` optional and defaulting to None, for PATCH bodies.
    The base's cross-field validators run on the merged result (:func:`server.api.crud.patch`)."""
    fields: dict[str, Any] = {}
    for key, info in base.model_fields.items():
        if key in exclude:
            continue
        optional = copy(info)
        optional.default = None
        optional.default_factory = None
        fields[key] = (_annotation(info) | None, optional)
    return create_model(name, __config__=_STRICT, **fields)  # type: ignore[call-overload]
