"""Debian 13 (trixie) as an outside judge: its doveconf 2.4 and postconf 3.10, in a chroot.

The root is tests/apply/testbed.py's golden rootfs for trixie with the mail packages installed:
built once by debootstrap from the machine's Debian mirror, cached under
/var/cache/provisioner-testbed/judge-<key>/ behind the testbed's lock. The judges are the
packages' own configuration checkers; one test starts Dovecot in its own network namespace.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.apply.testbed import golden

SUITE = "trixie"
PACKAGES = ("dovecot-core", "dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd", "dovecot-sieve", "postfix", "postfix-lmdb", "opendkim", "rspamd")


def judge_root() -> Path:
    """The cached trixie root with Dovecot 2.4, Postfix 3.10, OpenDKIM and rspamd installed, built if
    missing (a minute or two): the testbed's golden rootfs for trixie with these packages."""
    return golden(log=None, extra_packages=PACKAGES, key_prefix="judge-", suite=SUITE)


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
