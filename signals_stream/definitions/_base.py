"""Shared pieces of the definition models: the frozen base class and the name/text types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, model_validator

from signals_stream.errors import DefinitionError

__all__ = [
    "DefinitionModel",
    "check_encodable",
    "Name",
    "Owner",
    "Text",
    "definition_error",
    "null_is_default",
]

M = TypeVar("M", bound=BaseModel)

# Patterns of the Signals OpenAPI schema (`^[A-Za-z0-9_]+$`, 1-128; free text without NUL).
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]+$", min_length=1, max_length=128)]
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
Owner = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$", max_length=255)]


def definition_error(exc: ValidationError, *, kind: str) -> DefinitionError:
    """Turn pydantic's error into a :class:`DefinitionError` naming every failing field.

    Args:
        exc: the validation error.
        kind: what was validated (``AttributeGroup``...), for the message.

    Returns:
        A DefinitionError whose message lists ``field.path: reason`` per problem.
    """
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        msg = err["msg"]
        # Our own validators raise ValueError; pydantic prefixes its text with "Value error, ".
        msg = msg.removeprefix("Value error, ")
        loc = ".".join(str(part) for part in err["loc"])
        problems.append(f"{loc}: {msg}" if loc else msg)
    return DefinitionError(f"invalid {kind}: " + "; ".join(problems))


def null_is_default(data: Any, field: str) -> Any:
    """``data`` without ``field`` when it is sent as ``null`` (the SDK echoes unset booleans
    as ``null``; they mean their default)."""
    if isinstance(data, dict) and field in data and data[field] is None:
        return {k: v for k, v in data.items() if k != field}
    return data


def check_encodable(model: M) -> M:
    """``model``, once it is known to encode: definitions are stored and sent as JSON by
    orjson, which refuses integers beyond 64 bits.

    Raises:
        DefinitionError: it does not encode.
    """
    try:
        orjson.dumps(model.to_wire())  # type: ignore[attr-defined]
    except TypeError as exc:
        kind = type(model).__name__
        raise DefinitionError(f"invalid {kind}: {exc} (numbers must fit in 64 bits)") from None
    return model


class DefinitionModel(BaseModel):
    """Base of every definition: frozen, compared by value, validated at construction.

    Construction (``Model(**fields)``) and :meth:`parse` raise :class:`DefinitionError` instead of
    pydantic's ``ValidationError``; the message carries the dotted path of each bad field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise definition_error(exc, kind=type(self).__name__) from exc

    # Tells pydantic this __init__ only wraps the base one, so nested models are validated by
    # pydantic-core directly and their errors keep their full path (e.g. `attributes.2.ttl`).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @model_validator(mode="before")
    @classmethod
    def _null_extras_are_absent(cls, data: Any) -> Any:
        """An unknown field sent as ``null`` is no field: models that keep unknown fields
        (``extra="allow"``) would otherwise hold a ``None`` that their wire form omits, and a
        body would not round-trip (found by fuzzing)."""
        if not isinstance(data, dict) or cls.model_config.get("extra") != "allow":
            return data
        known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
        return {k: v for k, v in data.items() if v is not None or k in known}

    @classmethod
    def parse(cls, data: Mapping[str, Any] | str | bytes) -> Self:
        """Validate a JSON document (text or already decoded) into a definition.

        Args:
            data: the request body, as JSON text/bytes or a decoded mapping.

        Returns:
            The validated, immutable definition.

        Raises:
            DefinitionError: the document is not a valid definition.
        """
        try:
            if isinstance(data, str | bytes):
                model = cls.model_validate_json(data)
            else:
                model = cls.model_validate(data)
        except ValidationError as exc:
            raise definition_error(exc, kind=cls.__name__) from exc
        return check_encodable(model)

    def to_wire(self) -> dict[str, Any]:
        """The JSON form the SDK sends: aliases, ISO 8601 durations, ``None`` fields omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
