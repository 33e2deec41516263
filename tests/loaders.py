"""Load a Python file that is not part of a package: the role's modules (run on the hosts, so
not importable from provisioner) and bench/ scripts."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_file(path: Path, name: str | None = None) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def role_module(name: str) -> ModuleType:
    """roles/mailhost/library/<name>.py"""
    return load_file(ROOT / "roles/mailhost/library" / f"{name}.py")
