"""Render follows each host's `os:`: Dovecot 2.4 for debian-13, 2.3 for debian-12 (issue 13).

The outside judges (Debian 13's doveconf 2.4.1 and postconf 3.10) are in test_judges_trixie.py;
this file holds what needs no root: golden files per release, the users file's quota field,
the site key and its schema, and that neither release's output carries the other's names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from provisioner.errors import ProvisionError
from provisioner.render.dovecot import RELEASES, PasswdEntry, passwd_file
from provisioner.site.schema import site_schema
from provisioner.site.types import DEFAULT_OS, OsRelease
from provisioner.site.validate import load_site
from tests.conftest import MINIMAL
from tests.render.releases import declared, render_for
from tests.render.test_golden import GOLDEN, comparable

NON_DEFAULT = [r for r in OsRelease if r is not DEFAULT_OS]


@pytest.mark.parametrize("release", NON_DEFAULT, ids=str)
@pytest.mark.parametrize("example", ["all-in-one", "multi-host"])
def test_rendered_files_match_golden_per_release(example: str, release: OsRelease, tmp_path: Path) -> None:
    """tests/golden/<example>/ is the default release; tests/golden/<example>-<release>/ each other one.
    Regenerate with UPDATE_GOLDEN=1 (the DNS outputs do not depend on the release: not repeated)."""
    trees, _ = render_for(example, release, tmp_path)
    rendered = {f"{host}/{f.path}": f.content for host, tree in trees.items() for f in tree.files.values() if comparable(f.path, f.secret)}
    root = GOLDEN / f"{example}-{release.value}"
    if os.environ.get("UPDATE_GOLDEN"):
        for rel, content in rendered.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(content)
    on_disk = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert sorted(on_disk) == sorted(rendered), "set of rendered files changed"
    for rel, content in rendered.items():
        assert content == on_disk[rel], f"{root.name}/{rel} differs from golden"


# Names each Dovecot release refuses (2.4: docs "Upgrading 2.3 to 2.4", converted and removed settings).
ONLY_23 = [
    r"^\s*ssl_cert\s*=",
    r"^\s*ssl_key\s*=",
    r"^\s*ssl_prefer_server_ciphers\s*=",
    r"^\s*disable_plaintext_auth\s*=",
    r"^\s*mail_location\s*=",
    r"^\s*plugin\s*\{",
    r"^\s*(default|override)_fields\s*=",
    r"^\s*args\s*=",
    r"^\s*(passdb|userdb)\s*\{",
    r"%[a-zA-Z]\b",  # one-letter variables: %u %d %n
    r"\$mail_plugins",
    r"^\s*quota\s*=\s*\w+:",  # quota = maildir:User quota
    r"^\s*protocols\s*=\s*none",
]
ONLY_24 = [
    r"^\s*dovecot_(config|storage)_version",
    r"^\s*ssl_server_",
    r"^\s*auth_allow_cleartext",
    r"^\s*mail_(driver|path)\s*=",
    r"%\{user \|",
    r"passwd_file_path",
]


@pytest.mark.parametrize("example", ["all-in-one", "multi-host", "network"])
@pytest.mark.parametrize("release", list(OsRelease), ids=str)
def test_no_setting_of_the_other_release(example: str, release: OsRelease, tmp_path: Path) -> None:
    trees, _ = render_for(example, release, tmp_path)
    confs = {h: t.files["etc/dovecot/dovecot.conf"].content.decode() for h, t in trees.items() if "etc/dovecot/dovecot.conf" in t.files}
    assert confs
    refused = ONLY_23 if release is OsRelease.DEBIAN_13 else ONLY_24
    for host, conf in confs.items():
        body = "\n".join(line for line in conf.splitlines() if not line.lstrip().startswith("#"))
        found = [p for p in refused if re.search(p, body, re.M)]
        assert not found, (host, release, found)
        own = ONLY_24 if release is OsRelease.DEBIAN_13 else ONLY_23
        assert len([p for p in own if re.search(p, body, re.M)]) >= 5, "the patterns find this release's own names"
        if release is OsRelease.DEBIAN_13:
            assert conf.startswith("dovecot_config_version = "), "2.4: the first setting must be dovecot_config_version"


@pytest.mark.parametrize("release", list(OsRelease), ids=str)
def test_users_file_quota_field_per_release(release: OsRelease) -> None:
    entries = [PasswdEntry("b@x.example", "{ARGON2ID}$h2", None), PasswdEntry("a@x.example", "{ARGON2ID}$h1", "2G")]
    text = passwd_file(entries, RELEASES[release])
    quota = "userdb_quota_storage_size=2G" if release is OsRelease.DEBIAN_13 else "userdb_quota_rule=*:storage=2G"
    assert text == f"a@x.example:{{ARGON2ID}}$h1::::::{quota}\nb@x.example:{{ARGON2ID}}$h2::::::\n"


def test_a_host_without_os_runs_the_default(write_site, tmp_path: Path) -> None:
    assert load_site(write_site(MINIMAL)).site.hosts["mx1"].os is DEFAULT_OS
    site = write_site(MINIMAL, "explicit.yaml")
    declared(site, OsRelease.DEBIAN_13)
    assert load_site(site).site.hosts["mx1"].os is OsRelease.DEBIAN_13


def test_unknown_os_is_an_error_with_position(write_site) -> None:
    site = write_site(MINIMAL.replace("    fqdn: mx1.t.example\n", "    fqdn: mx1.t.example\n    os: debian-14\n"))
    with pytest.raises(ProvisionError) as err:
        load_site(site)
    message = str(err.value)
    assert "site.yaml:6:" in message and "hosts.mx1.os" in message and "debian-13" in message and "debian-12" in message, message


def test_schema_names_the_releases() -> None:
    schema = site_schema()
    host = schema["$defs"]["Host"]["properties"]["os"]
    enum = schema["$defs"][host["$ref"].rsplit("/", 1)[1]]["enum"] if "$ref" in host else host["enum"]
    assert sorted(enum) == sorted(r.value for r in OsRelease)
    assert host["default"] == DEFAULT_OS.value
