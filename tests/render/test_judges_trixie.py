"""Outside judges per release (issue 13): Debian 13's doveconf 2.4.1, postconf/postfix 3.10,
postmap and opendkim accept what render writes for `os: debian-13`, with no warning; Debian
12's own (this machine's, as test_judges.py) accept what it writes for `os: debian-12`.

Debian 13's tools run in a trixie root built by debootstrap and cached (trixie_judge.py); the
rendered host tree is copied into a temp directory inside it and its absolute /etc paths
pointed there, nothing else changed. Building the root needs root (debootstrap, chroot).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from provisioner.site.types import OsRelease
from tests.conftest import ALICE_HASH, MINIMAL
from tests.render.helpers import render_example
from tests.render.releases import declared, render_for
from tests.render.trixie_judge import in_root, judge_root, staged

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the Debian 13 judge root needs root (debootstrap, chroot)")

EXAMPLES = ["all-in-one", "multi-host", "network"]


@pytest.fixture(scope="module")
def root() -> Path:
    return judge_root()


@pytest.fixture(params=EXAMPLES)
def trixie_build(request, tmp_path: Path) -> tuple[dict, Path]:
    return render_for(request.param, OsRelease.DEBIAN_13, tmp_path)


def pointed(host_tree: Path, inside: Path) -> None:
    """Point the copied files' absolute /etc paths at the copy (inside = its path in the root)."""
    for path in [host_tree / "etc/dovecot/dovecot.conf", host_tree / "etc/opendkim.conf"]:
        if path.exists():
            text = path.read_text()
            for prefix in (" /etc/", "</etc/", ":/etc/", "= /etc/"):
                text = text.replace(prefix, prefix.replace("/etc/", f"{inside}/etc/"))
            path.write_text(text)


def test_doveconf_24_accepts_dovecot(root: Path, trixie_build) -> None:
    trees, out = trixie_build
    judged = 0
    for host, tree in trees.items():
        if "etc/dovecot/dovecot.conf" not in tree.files:
            continue
        with staged(root, out / host) as inside:
            pointed(root / str(inside).lstrip("/"), inside)
            conf = f"{inside}/etc/dovecot/dovecot.conf"
            result = in_root(root, "doveconf", "-n", "-c", conf)
            assert result.returncode == 0 and result.stderr == "", (host, result.stderr)
            assert "2.4.1" in result.stdout.splitlines()[0], result.stdout.splitlines()[0]  # the judge is Dovecot 2.4.1
            assert "default setting changes" not in result.stdout  # written for the defaults of the release it meets

            def setting(name: str, conf: str = conf) -> str:
                return in_root(root, "doveconf", "-c", conf, "-h", name).stdout.strip()

            assert setting("ssl") == "required"  # DC-02
            assert setting("ssl_min_protocol") == "TLSv1.2"  # DC-04
            assert setting("auth_allow_cleartext") == "no"  # DC-03
            if tree.files.get("etc/dovecot/users") and "imap" in setting("protocols"):
                assert setting("mail_driver") == "maildir" and setting("mail_path") == "~/Maildir"
                assert setting("quota_exceeded_message").startswith("5.2.2 ")  # pipe(8) bounce status
        judged += 1
    assert judged >= 1


def test_postfix_310_accepts_main_and_master(root: Path, trixie_build) -> None:
    trees, out = trixie_build
    for host in trees:
        with staged(root, out / host) as inside:
            confdir = f"{inside}/etc/postfix"
            for flag in ("-n", "-M", "-P"):
                result = in_root(root, "postconf", "-c", confdir, flag)
                # PF-16: no "unused", "unknown" or deprecation ("will be removed") warning from 3.10.
                assert result.returncode == 0 and result.stderr == "", (host, flag, result.stderr)
            result = in_root(root, "postfix", "-c", confdir, "check")
            assert result.returncode == 0 and "warning" not in result.stderr + result.stdout, (host, result.stderr)


def test_postmap_and_opendkim_of_trixie(root: Path, trixie_build) -> None:
    trees, out = trixie_build
    manifest = json.loads((out / "manifest.json").read_text())
    for host, entry in manifest["hosts"].items():
        with staged(root, out / host) as inside:
            for table in entry["postfix_tables"]:
                tool = "postalias" if table.endswith("/aliases") else "postmap"
                result = in_root(root, tool, "-c", f"{inside}/etc/postfix", f"lmdb:{inside}{table}")
                assert result.returncode == 0 and result.stderr == "", (host, table, result.stderr)
            if "etc/opendkim.conf" in trees[host].files:
                pointed(root / str(inside).lstrip("/"), inside)
                result = in_root(root, "opendkim", "-n", "-x", f"{inside}/etc/opendkim.conf")
                assert result.returncode == 0 and result.stderr == "", (host, result.stderr)


def test_the_judges_refuse_the_other_release(root: Path, tmp_path: Path) -> None:
    """The judges can fail: Dovecot 2.4 stops at 2.3's file; Postfix 3.10 warns on a parameter deprecated in 3.9."""
    trees, out = render_for("all-in-one", OsRelease.DEBIAN_12, tmp_path)
    with staged(root, out / "mail") as inside:
        pointed(root / str(inside).lstrip("/"), inside)
        result = in_root(root, "doveconf", "-n", "-c", f"{inside}/etc/dovecot/dovecot.conf")
        assert result.returncode != 0 and "dovecot_config_version" in result.stderr, result.stderr
        main_cf = root / str(inside).lstrip("/") / "etc/postfix/main.cf"
        main_cf.write_text(main_cf.read_text() + "smtpd_use_tls = yes\n")
        result = in_root(root, "postconf", "-c", f"{inside}/etc/postfix", "-n")
        assert "smtpd_use_tls" in result.stderr, result.stderr


@pytest.mark.skipif(shutil.which("doveconf") is None, reason="Debian 12's doveconf is not installed here")
def test_doveconf_23_accepts_debian_12(tmp_path: Path) -> None:
    """An explicit `os: debian-12` goes to Debian 12's Dovecot 2.3 (this machine's), whatever the default."""
    version = subprocess.run(["doveconf", "-n", "-c", "/dev/null"], capture_output=True, text=True, check=False).stdout.splitlines()[0]
    if " 2.3." not in version:
        pytest.skip(f"this machine's Dovecot is not 2.3: {version}")
    trees, out = render_for("multi-host", OsRelease.DEBIAN_12, tmp_path)
    text = (out / "mx1/etc/dovecot/dovecot.conf").read_text()
    conf = tmp_path / "dovecot.conf"
    conf.write_text(text.replace("</etc/", f"<{out}/mx1/etc/").replace("/etc/dovecot/users", f"{out}/mx1/etc/dovecot/users"))
    result = subprocess.run(["doveconf", "-n", "-c", str(conf)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert (out / "mx1/etc/dovecot/users").read_text().count("userdb_quota_rule=*:storage=2G") == 1


QUOTA_SITE = MINIMAL.replace(
    f'      alice: {{password: "{ALICE_HASH}"}}\n',
    f'      alice: {{password: "{ALICE_HASH}", quota: 1K}}\n      bob: {{password: "{ALICE_HASH}"}}\n',
)


def log(here: Path) -> str:
    path = here / "log/dovecot.log"
    return path.read_text() if path.exists() else ""


def test_dovecot_24_enforces_the_per_user_quota(root: Path, tmp_path: Path) -> None:
    """Live, in the trixie root (its own network namespace): the users file's per-mailbox quota
    reaches Dovecot 2.4 (doveadm user / quota get) and dovecot-lda, as Postfix's pipe(8) runs it,
    refuses mail over it with 5.2.2 while a mailbox without quota takes it.

    Only what cannot run here changes: paths into the copy, the auth-userdb owner (no vmail
    user in the root: root runs the LDA, which drops to uid 5000 itself), a base_dir of its own."""
    assert "quota: 1K" in QUOTA_SITE
    site = tmp_path / "site.yaml"
    site.write_text(QUOTA_SITE)
    declared(site, OsRelease.DEBIAN_13)
    trees, out = render_example("minimal", tmp_path, site)
    with staged(root, out / "mx1") as inside:
        here = root / str(inside).lstrip("/")
        pointed(here, inside)
        for d in ("run", "log", "vmail", "spool"):
            (here / d).mkdir()
        os.chown(here / "vmail", 5000, 5000)
        (here / "log/lda.log").touch()
        os.chown(here / "log/lda.log", 5000, 5000)
        conf = here / "etc/dovecot/dovecot.conf"
        text = (
            conf.read_text()
            .replace("/var/vmail", f"{inside}/vmail")
            .replace("/var/spool/postfix/private/auth", f"{inside}/spool/auth")
            .replace("/var/log/dovecot-lda.log", f"{inside}/log/lda.log")
            .replace("/var/log/dovecot.log", f"{inside}/log/dovecot.log")
            .replace("    user = vmail\n", "    user = root\n")
        )
        conf.write_text(text + f"base_dir = {inside}/run\n")
        users = here / "etc/dovecot/users"
        assert "userdb_quota_storage_size=1K" in users.read_text()
        # As the role installs it (the manifest: root:dovecot 0640), with the root's dovecot group.
        group = next(line.split(":")[2] for line in (root / "etc/group").read_text().splitlines() if line.startswith("dovecot:"))
        os.chown(users, 0, int(group))
        confpath = f"{inside}/etc/dovecot/dovecot.conf"
        master = subprocess.Popen(["unshare", "--net", "chroot", str(root), "dovecot", "-F", "-c", confpath], stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(100):
                if (here / "run/auth-userdb").exists():
                    break
                assert master.poll() is None, master.stderr.read() if master.stderr else ""
                time.sleep(0.1)
            user = in_root(root, "doveadm", "-c", confpath, "user", "alice@t.example")
            assert user.returncode == 0 and re.search(r"quota_storage_size\s+1K", user.stdout), user.stdout + user.stderr + log(here)

            def deliver(to: str, size: int) -> subprocess.CompletedProcess[str]:
                message = f"From: s@x.example\nTo: {to}\nSubject: q\n\n" + "x" * size + "\n"
                argv = ["chroot", str(root), "/usr/lib/dovecot/dovecot-lda", "-c", confpath, "-e", "-f", "s@x.example", "-a", to, "-d", to]
                return subprocess.run(argv, input=message, capture_output=True, text=True, timeout=60, check=False)

            small = deliver("alice@t.example", 100)
            assert small.returncode == 0, small.stderr
            # 2.4's quota_storage_grace (10M; 2.3's quota_grace was 10 % of the limit) lets one delivery
            # go over the limit, so that a big message does not leave the owner unwarned; then no more.
            over = deliver("alice@t.example", 4000)
            assert over.returncode == 0, over.stderr
            full = deliver("alice@t.example", 100)
            assert full.returncode == 77 and full.stderr.startswith("5.2.2 Mailbox is full"), (full.returncode, full.stderr)
            unlimited = deliver("bob@t.example", 4000)
            assert unlimited.returncode == 0, unlimited.stderr
            assert len(list((here / "vmail/t.example/alice/Maildir/new").iterdir())) == 2
            assert len(list((here / "vmail/t.example/bob/Maildir/new").iterdir())) == 1
            quota = in_root(root, "doveadm", "-c", confpath, "quota", "get", "-u", "alice@t.example")
            assert re.search(r"User quota\s+STORAGE\s+[5-9]\s+1\s+[5-9]\d\d\b", quota.stdout), quota.stdout + quota.stderr  # KB used, limit, %
        finally:
            master.terminate()
            master.wait(timeout=30)
