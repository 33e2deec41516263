"""Load a Python file that is not part of a package: the role's modules (run on the hosts, so
not importable from provisioner), its module_utils and action plugin, and bench/ scripts."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROLE = ROOT / "roles/mailhost"
# A module run as Ansible runs it (an args file of ANSIBLE_MODULE_ARGS as argv[1]), with the
# role's module_utils importable as ansible.module_utils.<name>, as AnsiballZ ships them.
_RUN_MODULE = (
    "import runpy, sys; sys.path.insert(0, sys.argv[1]); from tests.loaders import role_module_utils; role_module_utils(); "
    "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def load_file(path: Path, name: str | None = None) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def role_module_utils() -> dict[str, ModuleType]:
    """roles/mailhost/module_utils/<name>.py importable as ansible.module_utils.<name>; {name: module}."""
    found = {}
    for path in sorted((ROLE / "module_utils").glob("*.py")):
        name = f"ansible.module_utils.{path.stem}"
        if name not in sys.modules:
            sys.modules[name] = load_file(path, name)
        found[path.stem] = sys.modules[name]
    return found


def role_module(name: str) -> ModuleType:
    """roles/mailhost/library/<name>.py"""
    role_module_utils()
    return load_file(ROLE / "library" / f"{name}.py")


def role_action_plugin(name: str) -> ModuleType:
    """roles/mailhost/action_plugins/<name>.py"""
    return load_file(ROLE / "action_plugins" / f"{name}.py")


def run_role_module(name: str, args: dict[str, Any], args_file: Path) -> tuple[int, dict[str, Any], str]:
    """Run roles/mailhost/library/<name>.py as Ansible does; (exit code, its one JSON result, stderr)."""
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run(
        [sys.executable, "-c", _RUN_MODULE, str(ROOT), str(ROLE / "library" / f"{name}.py"), str(args_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, json.loads(done.stdout), done.stderr
