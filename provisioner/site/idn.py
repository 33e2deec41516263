"""Domain names given on the command line, normalised like the site file's."""

from __future__ import annotations

from pydantic_core import PydanticCustomError

from provisioner.errors import ProvisionError
from provisioner.site.types import to_a_label


def to_a_label_or_error(name: str) -> str:
    try:
        return to_a_label(name)
    except PydanticCustomError as exc:  # to_a_label's refusal carries the sentence
        raise ProvisionError(f"{name!r}: {exc}") from None
