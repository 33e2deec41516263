"""Domain names given on the command line, normalised like the site file's."""

from __future__ import annotations

from provisioner.errors import ProvisionError
from provisioner.site.types import to_a_label


def to_a_label_or_error(name: str) -> str:
    try:
        return to_a_label(name)
    except Exception as exc:  # noqa: BLE001 - PydanticCustomError carries the sentence
        raise ProvisionError(f"{name!r}: {exc}") from None
