"""Base classes shared by every model.

Wire models mirror Twilio's JSON: camelCase on the wire, snake_case in Python, unknown fields
tolerated (Twilio adds fields without notice). Option models are what users construct: unknown
fields are rejected so that a typo is an error, not a silently ignored setting.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel


def first_error(exc: ValidationError, where: str = "value") -> tuple[str, str]:
    """``(dotted location, message)`` of a validation error's first problem.

    ``where`` stands in for an empty location (a model-level error). Every "invalid X: field:
    message" error of opentac is built from this.
    """
    first = exc.errors(include_url=False)[0]
    location = ".".join(str(part) for part in first.get("loc", ()))
    return location or where, str(first.get("msg", "is invalid"))


class WireModel(BaseModel):
    """A Twilio payload: camelCase aliases, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
    )

    def to_wire(self) -> dict[str, Any]:
        """Serialise for Twilio: aliases, no ``None`` fields, JSON-compatible values."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class OptionsModel(BaseModel):
    """A user-facing options object: unknown fields are an error."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
    )


class ClassicWireModel(WireModel):
    """A payload of Twilio's classic APIs (Calls 2010-04-01, Studio v2): snake_case JSON."""

    model_config = ConfigDict(alias_generator=None)
