"""Write a build directory atomically, with a manifest; a failed write leaves the old build."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from provisioner.errors import ProvisionError
from provisioner.render.postfix import tables_of
from provisioner.render.tree import HostTree, RenderedFile

MANIFEST = "manifest.json"


def manifest_entry(host: str, f: RenderedFile) -> dict[str, object]:
    return {
        "host": host,
        "path": "/" + f.path,
        "sha256": hashlib.sha256(f.content).hexdigest(),
        "mode": f"{f.mode:04o}",
        "owner": f.owner,
        "group": f.group,
        "secret": f.secret,
    }


def manifest(trees: dict[str, HostTree], extra: dict[str, bytes]) -> dict[str, object]:
    hosts = {}
    for name, tree in sorted(trees.items()):
        hosts[name] = {
            "files": [manifest_entry(name, tree.files[p]) for p in sorted(tree.files)],
            "postfix_tables": ["/" + p for p in tables_of(tree)],
        }
    others = [{"path": p, "sha256": hashlib.sha256(c).hexdigest()} for p, c in sorted(extra.items())]
    return {"version": 1, "hosts": hosts, "files": others}


def write_build(out: Path, trees: dict[str, HostTree], extra: dict[str, bytes] | None = None) -> dict[str, object]:
    """Write trees to OUT/<host>/..., extra files (e.g. dns/) to OUT/..., and OUT/manifest.json."""
    extra = extra or {}
    out = out.absolute()
    if out.exists() and not out.is_dir():
        raise ProvisionError(f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).exists():
        raise ProvisionError(f"{out} is not empty and holds no {MANIFEST}: refusing to replace a directory provisioner did not write")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    made: set[str] = set()
    try:
        os.chmod(staging, 0o755)
        for name, tree in trees.items():
            for f in tree.files.values():
                _write(f"{staging}/{name}/{f.path}", f.content, f.mode, made)
        for rel, content in extra.items():
            _write(f"{staging}/{rel}", content, 0o644, made)
        data = manifest(trees, extra)
        _write(f"{staging}/{MANIFEST}", (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), 0o644, made)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / "build")
            os.rename(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return data


def _write(path: str, content: bytes, mode: int, made: set[str]) -> None:
    parent = path.rpartition("/")[0]
    if parent not in made:
        os.makedirs(parent, exist_ok=True)
        made.add(parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, content)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
