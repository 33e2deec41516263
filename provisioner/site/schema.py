"""The JSON Schema of the site file, as `provision schema` prints it."""

from __future__ import annotations

from typing import Any

from provisioner.site.model import Site


def site_schema() -> dict[str, Any]:
    schema = Site.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "provisioner site file"
    schema["description"] = "One mail site: hosts, domains, mailboxes and policies. See docs/site-file.md."
    return schema
