"""Write a build directory atomically, with a manifest; a failed write leaves the old build.

A build directory is replaced whole on the next render, so what may be replaced is narrow:

- OUT is new, empty, or a build this writer made: its `.provisioner-build` marker holds our
  text and its manifest.json has our schema. A web app's manifest.json is not a build.
- OUT holds nothing but what that manifest lists (plus the marker, the manifest, the digest
  keys and the bundles `plan` adds): anything else is refused, named, and left untouched.
- OUT is not /, $HOME, the site file's directory or the state directory, does not hold either
  (a repository root holding the site file is refused so), and is not inside the state.
- The old build is removed file by file, exactly the names its manifest lists, each directory
  opened with O_NOFOLLOW: a symbolic link in it is removed as a name, never followed.

Secret files (private keys, sasl_passwd, users) are listed with `hmac_sha256`, a digest keyed
per host (provisioner.keys.digest), never a plain sha256: manifest.json is 0644 and `render
--format json` goes to CI logs. Each host's key is in `.secret-digest-keys.json` (0600), for
the role to compare a host's live secrets with.

Every directory is made 0755 and every file with the mode the manifest gives, set before the
first byte is written, whatever the umask.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionError
from provisioner.keys.digest import host_digest_key, secret_digest
from provisioner.keys.store import make_dirs
from provisioner.render.postfix import tables_of
from provisioner.render.tree import HostTree

MANIFEST = "manifest.json"
MANIFEST_VERSION = 2  # 2: secret files carry hmac_sha256 instead of sha256
MARKER = ".provisioner-build"
MARKER_TEXT = (
    b"A build directory written by `provision render`. The next render replaces exactly the\n"
    b"files manifest.json lists, and refuses while anything else is in this directory.\n"
)
DIGEST_KEYS = ".secret-digest-keys.json"
BUNDLES = ".bundles"  # written by `plan`/`apply` (provisioner.apply.bundle): one tar per host
DIR_MODE = 0o755
_DIGEST = re.compile(r"[0-9a-f]{64}")
_MODE = re.compile(r"[0-7]{4}")
_SHOWN = 5  # unknown names listed in a refusal


def manifest_text(data: dict[str, Any]) -> str:
    """One file entry per line (diffable, and json's C encoder: no indent=)."""
    lines = [f'{{"version": {data["version"]}, "hosts": {{']
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


def read_digest_keys(build_dir: Path) -> dict[str, bytes]:
    """host -> the key its secret files' hmac_sha256 is made with (from the build's 0600 file)."""
    path = build_dir / DIGEST_KEYS
    try:
        data = json.loads(path.read_text())
        return {host: bytes.fromhex(key) for host, key in data["hosts"].items()}
    except FileNotFoundError:
        raise ProvisionError(f"{path} not found: render the site again") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProvisionError(f"{path} is damaged ({exc}): render the site again") from None


# ------------------------------------------------------------------------- what may go


def check_output(out: Path, site_dir: Path | None = None, state_dir: Path | None = None) -> None:
    """Refuse a build directory whose replacement would take the site or its state with it."""
    if out.is_symlink():
        raise ProvisionError(f"{out} is a symbolic link: give the build directory itself")
    target = Path(os.path.realpath(out))
    if target == Path(target.anchor):
        raise ProvisionError(f"{out} is the root directory: choose a build directory of its own, e.g. build/")
    with contextlib.suppress(RuntimeError, KeyError):
        home = Path(os.path.realpath(Path.home()))
        if target == home or target in home.parents:
            raise ProvisionError(f"{out} is or holds your home directory: choose a build directory of its own, e.g. build/")
    for label, given in (("the site file's directory", site_dir), ("the state directory", state_dir)):
        if given is None:
            continue
        real = Path(os.path.realpath(given))
        if target == real or target in real.parents:
            raise ProvisionError(f"{out} is or holds {label} {given}: a build directory is replaced on every render; choose another, e.g. build/")
        if label == "the state directory" and real in target.parents:
            raise ProvisionError(f"{out} is inside the state directory {given}: keep the build outside it, e.g. build/")


@dataclass(frozen=True)
class _OldBuild:
    files: dict[str, tuple[str, str]]  # relative path -> (digest, mode), as the manifest lists them
    ours: frozenset[str]  # every name this writer (or `plan`'s bundles) put there


def _relative(path: object) -> str | None:
    """`path` if it is a plain relative path ('a/b'), else None."""
    if not isinstance(path, str) or not path or "\0" in path:
        return None
    return None if any(part in ("", ".", "..") for part in path.split("/")) else path


def _entry(entry: object, rel: str | None, secret_ok: bool) -> tuple[str, str]:
    """(digest, mode) of one manifest entry at `rel`; ValueError if it is not our shape."""
    if not isinstance(entry, dict) or rel is None:
        raise ValueError(f"entry {str(entry)[:80]} is not a file of ours")
    key = "hmac_sha256" if secret_ok and entry.get("secret") is True else "sha256"
    digest, mode = entry.get(key), entry.get("mode", "0644")
    if not (isinstance(digest, str) and _DIGEST.fullmatch(digest) and isinstance(mode, str) and _MODE.fullmatch(mode)):
        raise ValueError(f"entry for {rel} has no {key} or mode of ours")
    return digest, mode


def _parse_manifest(text: str) -> _OldBuild:
    data = json.loads(text)
    if not isinstance(data, dict) or set(data) != {"version", "hosts", "files"} or data["version"] != MANIFEST_VERSION:
        raise ValueError(f"not a version {MANIFEST_VERSION} manifest of provisioner")
    if not isinstance(data["hosts"], dict) or not isinstance(data["files"], list):
        raise ValueError("hosts or files of the wrong type")
    files: dict[str, tuple[str, str]] = {}
    ours = {MARKER, MANIFEST, DIGEST_KEYS}
    for host, entry in data["hosts"].items():
        if _relative(host) is None or "/" in host or host.startswith(".") or not isinstance(entry, dict) or not isinstance(entry.get("files"), list):
            raise ValueError(f"host {str(host)[:80]} is not of our shape")
        for file in entry["files"]:
            path = file.get("path") if isinstance(file, dict) else None
            rel = _relative(path[1:]) if isinstance(path, str) and path.startswith("/") else None
            files[f"{host}/{rel}"] = _entry(file, rel, secret_ok=True)
        ours |= {f"{BUNDLES}/{host}.tar", f"{BUNDLES}/.{host}.tar.new"}
    for file in data["files"]:
        rel = _relative(file.get("path")) if isinstance(file, dict) else None
        files[str(rel)] = _entry(file, rel, secret_ok=False)
    return _OldBuild(files, frozenset(ours | set(files)))


def _old_build(out: Path) -> _OldBuild | None:
    """The build in OUT (None if OUT is missing or empty); refuses anything else."""
    try:
        names = os.listdir(out)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        if not os.path.lexists(out):
            raise  # a parent is a file
        raise ProvisionError(f"{out} exists and is not a directory") from None
    if not names:
        return None
    refuse = f"{out} is not empty and is not a provisioner build"
    keep = "refusing to replace a directory provisioner did not write; render into a new or empty directory"
    try:
        fd = os.open(out / MARKER, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            marker = handle.read(len(MARKER_TEXT) + 1)
    except OSError:
        older = " (a build of an older provision has no marker: delete it yourself, once)" if MANIFEST in names else ""
        raise ProvisionError(f"{refuse} (no {MARKER}){older}: {keep}") from None
    if marker != MARKER_TEXT:
        raise ProvisionError(f"{refuse} ({MARKER} is not ours): {keep}")
    try:
        fd = os.open(out / MANIFEST, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            old = _parse_manifest(handle.read().decode())
    except (OSError, ValueError) as exc:
        raise ProvisionError(f"{refuse} ({MANIFEST}: {exc}): {keep}") from None
    unknown = _unknown(out, old.ours)
    if unknown:
        shown = ", ".join(unknown[:_SHOWN]) + (f" and {len(unknown) - _SHOWN} more" if len(unknown) > _SHOWN else "")
        raise ProvisionError(
            f"{out} holds {len(unknown)} name{'s' * (len(unknown) != 1)} the previous build did not write ({shown}): "
            "a render replaces the build directory, so move them elsewhere (nothing was changed)"
        )
    return old


def _ancestors(paths: Iterable[str]) -> set[str]:
    dirs: set[str] = set()
    for path in paths:
        parts = path.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return dirs


def _unknown(out: Path, ours: frozenset[str]) -> list[str]:
    """Names under OUT that are neither ours nor a directory holding ours (symlinks are not followed)."""
    dirs = _ancestors(ours)
    unknown = []
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(out / rel if rel else out) as entries:
            for entry in entries:
                path = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    if path in dirs:
                        pending.append(path)
                    else:
                        unknown.append(path + "/")
                elif path not in ours:
                    unknown.append(path)
    return sorted(unknown)


def _open_dir(root_fd: int, rel: str) -> int | None:
    """A descriptor of directory `rel` under root_fd, opening each part with O_NOFOLLOW; None
    where a part is missing or is not a real directory (a symlink is never followed)."""
    fd = os.dup(root_fd)
    for part in rel.split("/") if rel else ():
        try:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except OSError:
            os.close(fd)
            return None
        os.close(fd)
        fd = child
    return fd


def _remove(root: Path, names: Iterable[str]) -> None:
    """Unlink exactly `names` under root, then the directories that held them once empty, then
    root. What is not ours stays: an rmdir that finds it fails and is let be."""
    by_dir: dict[str, list[str]] = {}
    for rel in sorted(set(names)):
        parent, _, name = rel.rpartition("/")
        by_dir.setdefault(parent, []).append(name)
    steps = [(parent, members, os.unlink) for parent, members in sorted(by_dir.items())]
    for directory in sorted(_ancestors(names), key=lambda d: d.count("/"), reverse=True):
        parent, _, name = directory.rpartition("/")
        steps.append((parent, [name], os.rmdir))
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for parent, members, remove in steps:
            fd = _open_dir(root_fd, parent)
            if fd is None:
                continue
            try:
                for name in members:
                    with contextlib.suppress(OSError):
                        remove(name, dir_fd=fd)
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)
    with contextlib.suppress(OSError):
        os.rmdir(root)


# ------------------------------------------------------------------------------ writing


def write_build(
    out: Path,
    trees: dict[str, HostTree],
    extra: dict[str, bytes] | None = None,
    *,
    digest_key: bytes | None = None,
    site_dir: Path | None = None,
    state_dir: Path | None = None,
) -> dict[str, object]:
    """Write trees to OUT/<host>/..., extra files (e.g. dns/) to OUT/..., and OUT/manifest.json.

    Everything goes into a staging directory that replaces OUT only when complete. A file
    that is byte-for-byte what the previous build had (same digest and mode in its manifest)
    is hard-linked from it instead of written again: on ext4 here a link costs 12 us, a new
    file 500 us, and a 5,000-domain build has 15,000 files. `digest_key` keys the digests of
    secret files (provisioner.keys.digest; without it, a key used once).
    """
    extra = extra or {}
    check_output(out, site_dir, state_dir)
    out = out.absolute()
    try:
        old = _old_build(out)
        make_dirs(out.parent, DIR_MODE)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    except OSError as exc:
        raise ProvisionError(f"cannot write the build directory {out}: {exc.strerror or exc}") from None
    previous = old.files if old is not None else {}
    made: set[str] = set()
    key = digest_key if digest_key is not None else os.urandom(32)

    def place(rel: str, content: bytes, mode: int, digest: str) -> None:
        target = f"{staging}/{rel}"
        if previous.get(rel) == (digest, f"{mode:04o}") and _same_file(f"{out}/{rel}", content, mode):
            _make_parent(target, made)
            try:
                os.link(f"{out}/{rel}", target, follow_symlinks=False)
                return
            except OSError:
                pass  # e.g. another file system: write it
        _write(target, content, mode, made)

    try:
        os.chmod(staging, DIR_MODE)
        hosts: dict[str, Any] = {}
        host_keys = {name: host_digest_key(key, name) for name in sorted(trees)}
        for name, tree in sorted(trees.items()):
            files = []
            for path in sorted(tree.files):
                f = tree.files[path]
                kind, digest = ("hmac_sha256", secret_digest(host_keys[name], f.content)) if f.secret else ("sha256", hashlib.sha256(f.content).hexdigest())
                place(f"{name}/{f.path}", f.content, f.mode, digest)
                files.append(
                    {"host": name, "path": "/" + f.path, kind: digest, "mode": f"{f.mode:04o}", "owner": f.owner, "group": f.group, "secret": f.secret}
                )
            hosts[name] = {"files": files, "postfix_tables": ["/" + p for p in tables_of(tree)]}
        others = []
        for rel, content in sorted(extra.items()):
            digest = hashlib.sha256(content).hexdigest()
            place(rel, content, 0o644, digest)
            others.append({"path": rel, "sha256": digest})
        data: dict[str, Any] = {"version": MANIFEST_VERSION, "hosts": hosts, "files": others}
        keys_text = json.dumps({"version": 1, "hosts": {name: k.hex() for name, k in host_keys.items()}}, sort_keys=True) + "\n"
        _write(f"{staging}/{DIGEST_KEYS}", keys_text.encode(), 0o600, made)
        _write(f"{staging}/{MARKER}", MARKER_TEXT, 0o644, made)
        _write(f"{staging}/{MANIFEST}", manifest_text(data).encode(), 0o644, made)
        if old is None:
            os.rename(staging, out)  # over an empty directory too (rename(2))
        else:
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, retired / "build")
            try:
                os.rename(staging, out)
            except BaseException:
                os.rename(retired / "build", out)
                raise
            _remove(retired / "build", old.ours)
            with contextlib.suppress(OSError):
                os.rmdir(retired)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)  # our own, made above: all of it is ours
        if isinstance(exc, OSError):
            raise ProvisionError(f"cannot write the build directory {out}: {exc.strerror or exc}") from None
        raise
    return data


def _same_file(path: str, content: bytes, mode: int) -> bool:
    """The old file still holds exactly these bytes with this mode (not edited by hand since)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if info.st_mode & 0o7777 != mode or info.st_size != len(content):
            return False
        return os.read(fd, len(content) + 1) == content
    finally:
        os.close(fd)


def _make_parent(path: str, made: set[str]) -> None:
    parent = path.rpartition("/")[0]
    if parent not in made:
        make_dirs(parent, DIR_MODE)
        made.add(parent)


def _write(path: str, content: bytes, mode: int, made: set[str]) -> None:
    """A new file with exactly `mode`, set before the first byte (O_EXCL: nothing is overwritten)."""
    _make_parent(path, made)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, mode)
        os.write(fd, content)
    finally:
        os.close(fd)
