"""Write a build directory in place: only what changed, with a manifest; a failed write is marked.

A build directory is written over on the next render, so what may be touched is narrow:

- OUT is new, empty, or a build this writer made: its `.provisioner-build` marker holds our
  text and its manifest.json has our schema. A web app's manifest.json is not a build.
- OUT holds nothing but what that manifest lists (plus the marker, the manifest, the digest
  keys and the bundles `plan` adds): anything else is refused, named, and left untouched.
- OUT is not /, $HOME, the site file's directory or the state directory, does not hold either
  (a repository root holding the site file is refused so), and is not inside the state.
- What the new build no longer has is removed by exactly the names the old manifest lists,
  each directory opened with O_NOFOLLOW: a symbolic link in it is removed as a name, never
  followed.

A re-render touches only what changed. Every file is compared with what is on disk (a
regular file with the same mode and the same bytes: read, not trusted from the manifest, so
a file edited by hand is written again); an equal file is left alone (same inode, same
mtime), a missing one is created, a different one is written to `.<name>.provisioner-new`
beside it and renamed over it (atomic per file, and a hard link someone made to the old
file, e.g. `cp -al build backup`, keeps the old bytes). A re-render with nothing changed
writes nothing at all. Deleting and re-creating the whole tree (the old design: a staging
tree of 15,000 hard links, then the old tree deleted) cost seconds to tens of seconds on
this machine's ext4. The reason, seen with perf: this file system has no journal, so ext4
will not reuse an inode freed in the last minute or so (fs/ext4/ialloc.c, recently_deleted)
and every new file scans past each such inode of its block group. For about 2.5 minutes
after 100,000 files are deleted, a file creation costs ~600 us instead of ~30 us: nothing
this writer controls beyond creating only the files that are new.

Crash safety. Before the first file is touched, the new manifest is written to
`.provisioner-incomplete` and fsynced, with the directory. While it exists the build is
incomplete: `plan`, `apply` and bundling refuse it (provisioner.apply.bundle.read_manifest),
and the next render accepts the names either manifest lists (and their `.provisioner-new`
temporaries) and finishes the job. The last step renames it to manifest.json (atomic) and
fsyncs the directory, so the manifest and the marker's removal land as one step. The build
is usable exactly when there is no `.provisioner-incomplete`: then manifest.json describes
the files present.

Durability choice: no fsync per file. A process that dies (exception, kill, OOM) at any
point leaves the incomplete marker, which is what the kernel's page cache makes true without
any fsync. Only a power loss can make a file's data lag behind the manifest's rename; that is
caught before anything ships (the bundle checks every file's digest against the manifest and
refuses "render again"), and the next render rewrites the file because it compares bytes.
An fsync per file (15,000 on a 5,000-domain site) would cost far more than the render itself
to protect against a case that is already caught.

Secret files (private keys, sasl_passwd, users) are listed with `hmac_sha256`, a digest keyed
per host (provisioner.keys.digest), never a plain sha256: manifest.json is 0644 and `render
--format json` goes to CI logs. Each host's key is in `.secret-digest-keys.json` (0600), for
the role to compare a host's live secrets with.

Each host also gets `.hosts/<host>.json` (0600): its part of manifest.json and its digest key,
what the role reads on that host's play, so a play's cost does not grow with the site's number
of hosts. Its names follow from the manifest's hosts (like the key file's, not listed with a
digest: it holds the key), so the next render knows them as its own.

Every directory is made 0755 and every file with the mode the manifest gives, set at creation
(fchmod'ed before the first byte where the umask or a default ACL narrowed it), whatever the
umask; a directory of the build found with another mode is set back to 0755.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionError
from provisioner.files import make_dirs
from provisioner.keys.digest import host_digest_key, secret_digest
from provisioner.layout import host_layout
from provisioner.render.postfix import tables_of
from provisioner.render.tree import HostTree
from provisioner.site.types import DEFAULT_OS

MANIFEST = "manifest.json"
MANIFEST_VERSION = 2  # 2: secret files carry hmac_sha256 instead of sha256
MARKER = ".provisioner-build"
MARKER_TEXT = (
    b"A build directory written by `provision render`. The next render replaces exactly the\n"
    b"files manifest.json lists, and refuses while anything else is in this directory.\n"
)
DIGEST_KEYS = ".secret-digest-keys.json"
BUNDLES = ".bundles"  # written by `plan`/`apply` (provisioner.apply.bundle): one tar per host
HOST_FILES = ".hosts"  # <host>.json: the host's manifest entry and digest key, what the role reads
INCOMPLETE = ".provisioner-incomplete"  # the next manifest, while a render is writing the build
_NEW = ".provisioner-new"  # a changed file's bytes go to .<name>.provisioner-new, renamed over it
_NAME_MAX = 255  # bytes in one file name (Linux NAME_MAX)
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
        lines.append(f'"layout": {json.dumps(entry["layout"], sort_keys=True)},')
        lines.append('"files": [')
        lines.append(",\n".join(json.dumps(f, sort_keys=True) for f in entry["files"]))
        lines.append("]}" + ("," if index < len(hosts) - 1 else ""))
    lines.append('}, "files": [')
    lines.append(",\n".join(json.dumps(f, sort_keys=True) for f in data["files"]))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def host_file(host: str) -> str:
    """The build-relative name of `host`'s own part of the manifest (with its digest key)."""
    return f"{HOST_FILES}/{host}.json"


def host_file_text(host: str, entry: Mapping[str, Any], key: bytes) -> str:
    return json.dumps({"version": MANIFEST_VERSION, "host": host, "manifest": entry, "digest_key": key.hex()}, sort_keys=True) + "\n"


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


_NONE = _OldBuild({}, frozenset({MARKER, MANIFEST, DIGEST_KEYS}))


@dataclass(frozen=True)
class _Found:
    """What an existing build directory holds, as far as the writer may touch it."""

    ours: frozenset[str]  # every name the writer may replace or remove
    present: frozenset[str]  # every name on disk (files, links, directories), relative
    regular: frozenset[str]  # the names among them that are regular files (lstat)
    manifest: bytes | None  # manifest.json as it is (None: not there)
    incomplete: bool  # a render into it did not finish


def _temporary(rel: str) -> str:
    """Where a changed file's bytes are written before the rename: beside it, one fixed name
    per file (so a render after a crash knows the leftovers as its own)."""
    parent, _, name = rel.rpartition("/")
    temporary = f".{name}{_NEW}"
    if len(temporary.encode()) > _NAME_MAX:
        temporary = f".{hashlib.sha256(name.encode()).hexdigest()[:40]}{_NEW}"
    return f"{parent}/{temporary}" if parent else temporary


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
        ours |= {f"{BUNDLES}/{host}.tar", f"{BUNDLES}/.{host}.tar.new", host_file(host)}
    for file in data["files"]:
        rel = _relative(file.get("path")) if isinstance(file, dict) else None
        files[str(rel)] = _entry(file, rel, secret_ok=False)
    return _OldBuild(files, frozenset(ours | set(files)))


def _read_own(path: Path) -> bytes | None:
    """A file of ours at `path` (never through a link), None if it is not there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _old_build(out: Path) -> _Found | None:
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
        if names == [MARKER] and MARKER_TEXT.startswith(marker):
            return None  # a first render stopped while writing the marker: nothing else was made
        raise ProvisionError(f"{refuse} ({MARKER} is not ours): {keep}")
    try:
        manifest = _read_own(out / MANIFEST)
        old = _parse_manifest(manifest.decode()) if manifest is not None else _NONE
    except (OSError, ValueError) as exc:
        raise ProvisionError(f"{refuse} ({MANIFEST}: {exc}): {keep}") from None
    ours = set(old.ours)
    incomplete = INCOMPLETE in names
    if incomplete:
        # A render stopped in the middle: the names the next manifest lists are ours too (it
        # was on disk before the first file was touched). One that cannot be read is not
        # trusted: only the old manifest's names are ours then.
        pending = _NONE
        with contextlib.suppress(OSError, ValueError):
            pending = _parse_manifest((_read_own(out / INCOMPLETE) or b"").decode())
        ours |= pending.ours | {INCOMPLETE}
        own = (name for name in old.ours | pending.ours if name.startswith(f"{HOST_FILES}/"))
        ours |= {_temporary(rel) for rel in (*old.files, *pending.files, DIGEST_KEYS, *own)}
    unknown, present, regular = _scan(out, frozenset(ours))
    if unknown:
        shown = ", ".join(unknown[:_SHOWN]) + (f" and {len(unknown) - _SHOWN} more" if len(unknown) > _SHOWN else "")
        raise ProvisionError(
            f"{out} holds {len(unknown)} name{'s' * (len(unknown) != 1)} the previous build did not write ({shown}): "
            "a render replaces the build directory, so move them elsewhere (nothing was changed)"
        )
    return _Found(frozenset(ours), present, regular, manifest, incomplete)


def _ancestors(paths: Iterable[str]) -> set[str]:
    dirs: set[str] = set()
    for path in paths:
        parts = path.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return dirs


def _scan(out: Path, ours: frozenset[str]) -> tuple[list[str], frozenset[str], frozenset[str]]:
    """(names under OUT that are neither ours nor a directory holding ours, every name seen,
    the regular files among them); symlinks are not followed, d_type saves a stat per name."""
    dirs = _ancestors(ours)
    unknown: list[str] = []
    present: set[str] = set()
    regular: set[str] = set()
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(out / rel if rel else out) as entries:
            for entry in entries:
                path = f"{rel}/{entry.name}" if rel else entry.name
                present.add(path)
                if entry.is_dir(follow_symlinks=False):
                    if path in dirs:
                        pending.append(path)
                    else:
                        unknown.append(path + "/")
                elif path not in ours:
                    unknown.append(path)
                elif entry.is_file(follow_symlinks=False):
                    regular.add(path)
    return sorted(unknown), frozenset(present), frozenset(regular)


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


def _remove(root: Path, names: Iterable[str], *, keep_root: bool = False) -> None:
    """Unlink exactly `names` under root, then the directories that held them once empty, then
    root (unless keep_root). What is not ours stays: an rmdir that finds it fails and is let be."""
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
    if not keep_root:
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
    releases: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """Write trees to OUT/<host>/..., extra files (e.g. dns/) to OUT/..., and OUT/manifest.json,
    touching only what changed (see the module's docstring). `digest_key` keys the digests of
    secret files (provisioner.keys.digest; without it, a key used once). `releases` is each host's
    declared `os` (the role checks the host against it before anything else)."""
    extra = extra or {}
    check_output(out, site_dir, state_dir)
    out = out.absolute()
    try:
        found = _old_build(out)
    except OSError as exc:
        raise ProvisionError(f"cannot write the build directory {out}: {exc.strerror or exc}") from None
    key = digest_key if digest_key is not None else os.urandom(32)
    wanted: list[tuple[str, bytes, int]] = []  # (relative path, bytes, mode) of every file
    hosts: dict[str, Any] = {}
    host_keys = {name: host_digest_key(key, name) for name in sorted(trees)}
    for name, tree in sorted(trees.items()):
        files = []
        for path in sorted(tree.files):
            f = tree.files[path]
            kind, digest = ("hmac_sha256", secret_digest(host_keys[name], f.content)) if f.secret else ("sha256", hashlib.sha256(f.content).hexdigest())
            wanted.append((f"{name}/{f.path}", f.content, f.mode))
            files.append({"host": name, "path": "/" + f.path, kind: digest, "mode": f"{f.mode:04o}", "owner": f.owner, "group": f.group, "secret": f.secret})
        main_cf = tree.files.get("etc/postfix/main.cf")
        layout = host_layout(
            (str(f["path"]) for f in files), (releases or {}).get(name, DEFAULT_OS.value), main_cf.content.decode() if main_cf else "", tree.acme
        )
        hosts[name] = {"files": files, "postfix_tables": ["/" + p for p in tables_of(tree)], "layout": layout}
    others = []
    for rel, content in sorted(extra.items()):
        wanted.append((rel, content, 0o644))
        others.append({"path": rel, "sha256": hashlib.sha256(content).hexdigest()})
    data: dict[str, Any] = {"version": MANIFEST_VERSION, "hosts": hosts, "files": others}
    keys_text = json.dumps({"version": 1, "hosts": {name: k.hex() for name, k in host_keys.items()}}, sort_keys=True) + "\n"
    wanted.append((DIGEST_KEYS, keys_text.encode(), 0o600))
    wanted.extend((host_file(name), host_file_text(name, hosts[name], host_keys[name]).encode(), 0o600) for name in sorted(trees))
    ours = {rel for rel, _, _ in wanted} | {MARKER, MANIFEST, INCOMPLETE}
    ours |= {f"{BUNDLES}/{host}.tar" for host in trees} | {f"{BUNDLES}/.{host}.tar.new" for host in trees}
    try:
        _write_in_place(out, found, wanted, manifest_text(data).encode(), frozenset(ours))
    except OSError as exc:
        marked = " (it is marked incomplete: plan and apply refuse it until a render finishes)" if os.path.lexists(out / INCOMPLETE) else ""
        raise ProvisionError(f"cannot write the build directory {out}: {exc.strerror or exc}{marked}") from None
    return data


def _write_in_place(out: Path, found: _Found | None, wanted: list[tuple[str, bytes, int]], manifest: bytes, ours: frozenset[str]) -> None:
    by_dir: dict[str, list[tuple[str, bytes, int]]] = {}
    for rel, content, mode in wanted:
        parent, _, name = rel.rpartition("/")
        by_dir.setdefault(parent, []).append((name, content, mode))
    make_dirs(out, DIR_MODE)
    root = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        # 1. Compare: which files are new, which differ; a directory's mode that is off is set back.
        regular = found.regular if found is not None else frozenset()
        present = found.present if found is not None else frozenset()
        changes: dict[str, list[tuple[str, bytes, int, bool]]] = {}  # directory -> (name, bytes, mode, replace)
        modes_off = [rel for rel in sorted(set(by_dir) | _ancestors(by_dir) | {""}) if (not rel or rel in present) and _mode_off(root, rel)]
        for parent, files in sorted(by_dir.items()):
            fd = _open_dir(root, parent) if not parent or parent in present else None
            changed = []
            try:
                for name, content, mode in files:
                    rel = f"{parent}/{name}" if parent else name
                    if fd is None or rel not in regular or not _same(fd, name, content, mode):
                        changed.append((name, content, mode, rel in present))
            finally:
                if fd is not None:
                    os.close(fd)
            if changed:
                changes[parent] = changed
        vanished = sorted(name for name in (found.ours - ours if found is not None else ()) if name in present)
        for parent in modes_off:  # a directory's mode is not in the manifest: no need to mark
            fd = _open_dir(root, parent)
            if fd is not None:
                try:
                    os.fchmod(fd, DIR_MODE)
                finally:
                    os.close(fd)
        if found is not None and not found.incomplete and found.manifest == manifest and not changes and not vanished:
            return  # nothing changed: no file is touched

        # 2. Mark the build incomplete before the first change (after a crashed render, first
        #    remove what neither manifest keeps, so the marker always covers what is on disk).
        if found is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(MARKER, dir_fd=root)  # only a part of it there (_old_build)
            _create(root, MARKER, MARKER_TEXT, 0o644)
        if found is not None and found.incomplete:
            _remove(out, vanished, keep_root=True)
        _mark_incomplete(root, manifest)
        if found is None or not found.incomplete:
            _remove(out, vanished, keep_root=True)

        # 3. Write what changed; 4. the manifest lands, and with it the marker goes.
        for parent, changed in sorted(changes.items()):
            fd = _make_dir(root, parent)
            try:
                for name, content, mode, replace in changed:
                    (_replace if replace else _create)(fd, name, content, mode)
            finally:
                os.close(fd)
        os.replace(INCOMPLETE, MANIFEST, src_dir_fd=root, dst_dir_fd=root)
        os.fsync(root)
    finally:
        os.close(root)


def _mode_off(root_fd: int, rel: str) -> bool:
    """Directory `rel` of the build is there with a mode other than 0755."""
    fd = _open_dir(root_fd, rel)
    if fd is None:
        return False
    try:
        return stat.S_IMODE(os.fstat(fd).st_mode) != DIR_MODE
    finally:
        os.close(fd)


def _same(dir_fd: int, name: str, content: bytes, mode: int) -> bool:
    """The file holds exactly these bytes with this mode (not edited by hand since)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or stat.S_IMODE(info.st_mode) != mode or info.st_size != len(content):
            return False
        return os.read(fd, len(content) + 1) == content
    finally:
        os.close(fd)


def _make_dir(root_fd: int, rel: str) -> int:
    """A descriptor of directory `rel` under root_fd, made (0755 exactly) where missing; each
    part opened with O_NOFOLLOW, so a link planted in the build is never followed."""
    fd = os.dup(root_fd)
    for part in rel.split("/") if rel else ():
        try:
            os.mkdir(part, DIR_MODE, dir_fd=fd)
            made = True
        except FileExistsError:
            made = False
        try:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
        if made and stat.S_IMODE(os.fstat(fd).st_mode) != DIR_MODE:
            os.fchmod(fd, DIR_MODE)  # the umask narrowed it
    return fd


def _create(dir_fd: int, name: str, content: bytes, mode: int) -> None:
    """A new file with exactly `mode` before its first byte (O_EXCL: nothing is overwritten,
    no link followed)."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
            os.fchmod(fd, mode)  # the umask or a default ACL narrowed it
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _replace(dir_fd: int, name: str, content: bytes, mode: int) -> None:
    """Replace `name` whole (a rename over it: the old inode, and any link to it, is untouched)."""
    temporary = _temporary(name)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary, dir_fd=dir_fd)  # left by a render that stopped (ours: see _old_build)
    try:
        _create(dir_fd, temporary, content, mode)
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise


def _mark_incomplete(root_fd: int, manifest: bytes) -> None:
    """The next manifest as `.provisioner-incomplete`, on disk (fsynced, with the directory)
    before any file of the build changes."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(INCOMPLETE, dir_fd=root_fd)
    _create(root_fd, INCOMPLETE, manifest, 0o644)
    fd = os.open(INCOMPLETE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root_fd)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.fsync(root_fd)
