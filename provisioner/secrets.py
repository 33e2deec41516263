"""Resolve {env: NAME} and {file: relative/path} references at render time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from provisioner.site.loader import PathKey
from provisioner.site.types import SecretRef
from provisioner.site.validate import Issue


def resolve(ref: SecretRef, base_dir: Path, env: Mapping[str, str], where: PathKey) -> tuple[str | None, Issue | None]:
    """The secret's value (one line, no trailing newline), or an Issue naming what is missing."""
    if ref.env is not None:
        value = env.get(ref.env)
        if value is None or value == "":
            return None, Issue(where, f"environment variable {ref.env} is not set", f"export {ref.env}=... before rendering")
    else:
        assert ref.file is not None
        path = base_dir / ref.file
        try:
            value = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, Issue(where, f"secret file {ref.file} not found (looked in {base_dir})", "create it, or fix the path")
        except (OSError, UnicodeDecodeError) as exc:
            return None, Issue(where, f"secret file {ref.file} cannot be read: {exc}", "")
        value = value.removesuffix("\n")
    if "\n" in value or "\r" in value or not value:
        return None, Issue(where, f"the secret from {ref.describe()} must be one non-empty line", "")
    return value, None


def process_env() -> Mapping[str, str]:
    return os.environ
