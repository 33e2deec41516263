"""Writing files we own: directories with an exact mode, and whole-file replacement.

Used by the key state (provisioner.keys), the build writer (provisioner.render.writer) and the
CLI's `-o FILE` outputs; it knows nothing of what the files hold.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def make_dirs(path: Path | str, mode: int) -> None:
    """Make `path` and its missing parents, each with exactly `mode` (chmod after mkdir, so
    the umask neither widens nor narrows it); directories that exist are left as they are."""
    missing = []
    current = os.fspath(path)
    while current and not os.path.isdir(current):  # a relative path ends at '' (the working directory)
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            if os.path.isdir(directory):
                continue  # made by someone else meanwhile: theirs, not ours to chmod
            raise
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)


def atomic_write(path: Path, content: str | bytes, mode: int, dir_mode: int = 0o755) -> None:
    """Replace `path` whole with `content` and exactly `mode`, or leave it as it was.

    The bytes go to a fresh file beside it (mkstemp: a random name, O_EXCL, 0600, so a link
    planted at a predictable name is never followed) whose mode is set before the first byte
    is written, then it is renamed over `path`. Missing parents are made with `dir_mode`
    (STATE_DIR_MODE in the state directory, which holds private keys).
    """
    make_dirs(path.parent, dir_mode)
    data = content.encode() if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.fchmod(fd, mode)
            with os.fdopen(os.dup(fd), "wb") as handle:
                handle.write(data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
