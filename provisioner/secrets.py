"""Resolve {env: NAME} and {file: relative/path} references at render time.

The site file arrives in pull requests: a `{file: ...}` reference is an attacker's path. It is
read only when, with every symbolic link resolved, it is a regular file inside the site
directory and at most MAX_SECRET_BYTES long, so a link to the vault password file, to ~/.ssh
or to /dev/zero is refused, and never read into a rendered file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from provisioner.site.loader import PathKey
from provisioner.site.types import SecretRef
from provisioner.site.validate import Issue

# A password hash is about 100 bytes, a CA bundle a few kB.
MAX_SECRET_BYTES = 64 * 1024


def read_site_file(base_dir: Path, rel: str, max_bytes: int = MAX_SECRET_BYTES) -> tuple[bytes | None, str, str]:
    """The bytes of `rel` under the site directory, or (None, problem, hint).

    Refused: a path that leaves the directory (also through a symbolic link), anything but a
    regular file (a device, a FIFO, a socket, a directory), more than `max_bytes`.
    """
    if "\x00" in rel or rel.startswith("/") or ".." in rel.split("/"):
        return None, f"{rel!r} is not a path inside the site directory", "a path relative to the site file, without '..'"
    base = base_dir.resolve()
    try:
        real = (base / rel).resolve(strict=True)
    except FileNotFoundError:
        return None, f"{rel} not found (looked in {base_dir})", "create it, or fix the path"
    except (OSError, RuntimeError) as exc:  # a symlink loop, a path component that is a file
        return None, f"{rel} cannot be read: {exc.__class__.__name__}", ""
    if not real.is_relative_to(base):
        return None, f"{rel} leads outside the site directory (a symbolic link)", "put the file itself in the site directory"
    try:
        # O_NOFOLLOW: the resolved path has no links left, unless one appeared since; O_NONBLOCK:
        # opening a FIFO must not wait for a writer (it is refused below).
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return None, f"{rel} cannot be read: {exc.strerror}", ""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None, f"{rel} is not a regular file", "point it at a small file in the site directory, not a device, FIFO or directory"
    with os.fdopen(fd, "rb") as stream:
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        return None, f"{rel} is larger than {max_bytes // 1024} KiB", ""
    return data, "", ""


def resolve(ref: SecretRef, base_dir: Path, env: Mapping[str, str], where: PathKey) -> tuple[str | None, Issue | None]:
    """The secret's value (one line, no trailing newline), or an Issue naming what is missing."""
    if ref.env is not None:
        value = env.get(ref.env)
        if value is None or value == "":
            return None, Issue(where, f"environment variable {ref.env} is not set", f"export {ref.env}=... before rendering")
    else:
        assert ref.file is not None
        data, problem, hint = read_site_file(base_dir, ref.file)
        if data is None:
            return None, Issue(where, f"secret file {problem}", hint)
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            return None, Issue(where, f"secret file {ref.file} is not UTF-8 text", "")
        value = value.removesuffix("\n")
    if "\n" in value or "\r" in value or not value:
        return None, Issue(where, f"the secret from {ref.describe()} must be one non-empty line", "")
    if not value.isprintable():  # the value is never shown: it is a secret
        return None, Issue(where, f"the secret from {ref.describe()} holds a control or invisible character", "retype it")
    return value, None


def process_env() -> Mapping[str, str]:
    return os.environ
