"""Debian 13 (trixie) as an outside judge: its doveconf 2.4 and postconf 3.10, in a chroot.

The root is built once by debootstrap from the machine's Debian mirror (tests/apply/testbed.py
finds it) and cached under /var/cache/provisioner-testbed/<key>/ like the testbed's golden
roots, the key a hash of what goes into it; a lock file per key keeps two builds apart.
Only the packages' configuration checkers are used: nothing is started in the root.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.apply.testbed import CACHE, debian_mirror

SUITE = "trixie"
PACKAGES = ("dovecot-core", "dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd", "dovecot-sieve", "postfix", "postfix-lmdb", "opendkim")
RECIPE = 1  # bump when the build steps below change


def judge_root() -> Path:
    """The cached trixie root with Dovecot 2.4, Postfix 3.10 and OpenDKIM, built if missing (about two minutes)."""
    key = "judge-" + hashlib.sha256(json.dumps([RECIPE, SUITE, PACKAGES]).encode()).hexdigest()[:16]
    home = CACHE / key
    rootfs = home / "rootfs"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / "complete").exists():
            return rootfs
        build = home / "rootfs.building"
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir(parents=True)
        started = time.monotonic()
        # policy-rc.d is not there yet during debootstrap's --include; the chroot has no init, so nothing starts.
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(build), debian_mirror()],
            check=True,
            capture_output=True,
            text=True,
        )
        shutil.rmtree(build / "var/cache/apt/archives", ignore_errors=True)
        shutil.rmtree(rootfs, ignore_errors=True)
        build.rename(rootfs)
        (home / "complete").write_text(json.dumps({"suite": SUITE, "packages": list(PACKAGES), "seconds": round(time.monotonic() - started)}) + "\n")
        return rootfs


@contextmanager
def staged(root: Path, host_tree: Path) -> Iterator[Path]:
    """A copy of one rendered host tree inside the root, removed afterwards; yields its path inside the root."""
    (root / "tmp").mkdir(exist_ok=True)
    place = Path(tempfile.mkdtemp(prefix="render-", dir=root / "tmp"))
    place.chmod(0o755)  # the root's daemons (dovecot's auth as user dovecot) reach the copy
    try:
        shutil.copytree(host_tree, place / "host", dirs_exist_ok=True)
        yield Path("/") / place.relative_to(root) / "host"
    finally:
        shutil.rmtree(place, ignore_errors=True)


def in_root(root: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chroot", str(root), *cmd], capture_output=True, text=True, check=False, timeout=60, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
    )
