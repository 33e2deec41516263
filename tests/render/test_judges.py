"""Outside judges: Debian 12's own postconf, postmap, doveconf and opendkim (this machine's) accept
what we render for debian-12 hosts (Debian 13's judge the debian-13 output: test_judges_trixie.py).

Absolute paths in the rendered files point at /etc on the target host; for the judges, a
copy of each file has those paths pointed into the build tree, nothing else changed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from provisioner.site.types import OsRelease
from tests.render.releases import render_for

EXAMPLES = ["all-in-one", "multi-host", "network"]
NETWORK_SITE = Path(__file__).resolve().parents[1] / "network" / "site.yaml"  # the test network's site


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def network_site(tmp_path: Path) -> Path:
    """The test network's site as its fixture lays it out: a copy with the provider's test CA beside it."""
    from tests.render.test_smarthost_tls import make_pki

    site = tmp_path / "network-site" / "site.yaml"
    (site.parent / "certs").mkdir(parents=True)
    shutil.copy(NETWORK_SITE, site)
    (site.parent / "certs/provider-ca.pem").write_bytes(make_pki("smtp.provider.test").ca)
    return site


@pytest.fixture(params=EXAMPLES)
def build(request, tmp_path: Path) -> tuple[dict, Path]:
    return render_for(request.param, OsRelease.DEBIAN_12, tmp_path)


def test_postconf_accepts_main_and_master(build) -> None:
    trees, out = build
    for host in trees:
        confdir = out / host / "etc/postfix"
        for flag in ("-n", "-M", "-P"):
            result = run("postconf", "-c", str(confdir), flag)
            assert result.returncode == 0, (host, flag, result.stderr)
            # PF-16: no "unused parameter" or "unknown" warnings.
            assert result.stderr == "", (host, flag, result.stderr)


def test_postmap_compiles_every_table(build, tmp_path: Path) -> None:
    import json

    trees, out = build
    manifest = json.loads((out / "manifest.json").read_text())
    for host, entry in manifest["hosts"].items():
        assert entry["postfix_tables"], host
        for table in entry["postfix_tables"]:
            copy = tmp_path / "maps" / host / Path(table).name
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(out / host / table.lstrip("/"), copy)
            tool = "postalias" if copy.name == "aliases" else "postmap"
            result = run(tool, "-c", str(out / host / "etc/postfix"), f"lmdb:{copy}")
            assert result.returncode == 0 and result.stderr == "", (host, table, result.stderr)


def test_postfix_resolves_tables_as_intended(tmp_path: Path) -> None:
    """Look addresses up in the compiled tables, as Postfix will."""
    trees, out = render_for("multi-host", OsRelease.DEBIAN_12, tmp_path)
    maps = out / "mx1/etc/postfix"
    for name in ("virtual", "sender_login", "vmailbox"):
        assert run("postmap", "-c", str(maps), f"lmdb:{maps / name}").returncode == 0

    def query(name: str, key: str) -> str:
        return run("postmap", "-c", str(maps), "-q", key, f"lmdb:{maps / name}").stdout.strip()

    assert query("virtual", "sales@acme.example") == "alice@acme.example"
    assert query("virtual", "@acme.example") == "alice@acme.example"  # catch-all
    assert query("virtual", "bob@acme.example") == "bob@acme.example"  # not swallowed by it
    assert query("sender_login", "sales@acme.example") == "alice@acme.example"
    assert query("sender_login", "bob@acme.example") == "bob@acme.example"
    assert query("vmailbox", "nobody@acme.example") == ""


def _pointed_into(build_host: Path, text: str) -> str:
    return (
        text.replace("</etc/", f"<{build_host}/etc/")
        .replace(" /etc/opendkim/", f" {build_host}/etc/opendkim/")
        .replace(":/etc/opendkim/", f":{build_host}/etc/opendkim/")
    )


def test_doveconf_accepts_dovecot(build, tmp_path: Path) -> None:
    trees, out = build
    judged = 0
    for host, tree in trees.items():
        if "etc/dovecot/dovecot.conf" not in tree.files:
            continue
        conf = tmp_path / f"{host}-dovecot.conf"
        text = (out / host / "etc/dovecot/dovecot.conf").read_text()
        conf.write_text(_pointed_into(out / host, text).replace("/etc/dovecot/users", str(out / host / "etc/dovecot/users")))
        result = run("doveconf", "-n", "-c", str(conf))
        assert result.returncode == 0, (host, result.stderr)
        assert "ssl = required" in result.stdout
        assert run("doveconf", "-c", str(conf), "-h", "ssl_min_protocol").stdout.strip() == "TLSv1.2"
        assert run("doveconf", "-c", str(conf), "-h", "disable_plaintext_auth").stdout.strip() == "yes"
        judged += 1
    assert judged >= 1


def test_opendkim_accepts_its_config(build, tmp_path: Path) -> None:
    trees, out = build
    judged = 0
    for host, tree in trees.items():
        if "etc/opendkim.conf" not in tree.files:
            continue
        conf = tmp_path / f"{host}-opendkim.conf"
        conf.write_text(_pointed_into(out / host, (out / host / "etc/opendkim.conf").read_text()))
        result = run("opendkim", "-n", "-x", str(conf))
        assert result.returncode == 0, (host, result.stderr)
        assert result.stderr == "", (host, result.stderr)
        judged += 1
    assert judged >= 1
