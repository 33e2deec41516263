"""Write a build directory atomically, with a manifest; a failed write leaves the old build."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionError
from provisioner.render.postfix import tables_of
from provisioner.render.tree import HostTree

MANIFEST = "manifest.json"


def manifest_text(data: dict[str, Any]) -> str:
    """One file entry per line (diffable, and json's C encoder: no indent=)."""
    lines = ['{"version": 1, "hosts": {']
    hosts = data["hosts"]
    for index, (name, entry) in enumerate(sorted(hosts.items())):
        lines.append(f"{json.dumps(name)}: {{")
        lines.append(f'"postfix_tables": {json.dumps(entry["postfix_tables"])},')
        lines.append('"files": [')
        lines.append(",\n".join(json.dumps(f, sort_keys=True) for f in entry["files"]))
        lines.append("]}" + ("," if index < len(hosts) - 1 else ""))
    lines.append('}, "files": [')
    lines.append(",\n".join(json.dumps(f, sort_keys=True) for f in data["files"]))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def _previous(out: Path) -> dict[str, tuple[str, str]]:
    """relative path -> (sha256, mode) of the files the previous build wrote."""
    try:
        data = json.loads((out / MANIFEST).read_text())
        index = {f"{h}{e['path']}": (e["sha256"], e["mode"]) for h, entry in data["hosts"].items() for e in entry["files"]}
        index.update({e["path"]: (e["sha256"], "0644") for e in data["files"]})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    return index


def write_build(out: Path, trees: dict[str, HostTree], extra: dict[str, bytes] | None = None) -> dict[str, object]:
    """Write trees to OUT/<host>/..., extra files (e.g. dns/) to OUT/..., and OUT/manifest.json.

    Everything goes into a staging directory that replaces OUT only when complete. A file
    that is byte-for-byte what the previous build had (same sha256 and mode in its manifest)
    is hard-linked from it instead of written again: on ext4 here a link costs 12 us, a new
    file 500 us, and a 5,000-domain build has 15,000 files.
    """
    extra = extra or {}
    out = out.absolute()
    if out.exists() and not out.is_dir():
        raise ProvisionError(f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).exists():
        raise ProvisionError(f"{out} is not empty and holds no {MANIFEST}: refusing to replace a directory provisioner did not write")
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = _previous(out) if out.exists() else {}
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    made: set[str] = set()

    def place(rel: str, content: bytes, mode: int) -> str:
        digest = hashlib.sha256(content).hexdigest()
        target = f"{staging}/{rel}"
        if previous.get(rel) == (digest, f"{mode:04o}") and _same_file(f"{out}/{rel}", content, mode):
            parent = target.rpartition("/")[0]
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            try:
                os.link(f"{out}/{rel}", target)
                return digest
            except OSError:
                pass  # e.g. another file system: write it
        _write(target, content, mode, made)
        return digest

    try:
        os.chmod(staging, 0o755)
        hosts: dict[str, Any] = {}
        for name, tree in sorted(trees.items()):
            files = []
            for path in sorted(tree.files):
                f = tree.files[path]
                digest = place(f"{name}/{f.path}", f.content, f.mode)
                files.append(
                    {"host": name, "path": "/" + f.path, "sha256": digest, "mode": f"{f.mode:04o}", "owner": f.owner, "group": f.group, "secret": f.secret}
                )
            hosts[name] = {"files": files, "postfix_tables": ["/" + p for p in tables_of(tree)]}
        others = [{"path": rel, "sha256": place(rel, content, 0o644)} for rel, content in sorted(extra.items())]
        data: dict[str, Any] = {"version": 1, "hosts": hosts, "files": others}
        _write(f"{staging}/{MANIFEST}", manifest_text(data).encode(), 0o644, made)
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


def _same_file(path: str, content: bytes, mode: int) -> bool:
    """The old file still holds exactly these bytes with this mode (not edited by hand since)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if info.st_mode & 0o7777 != mode or info.st_size != len(content):
            return False
        return os.read(fd, len(content) + 1) == content
    finally:
        os.close(fd)


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
