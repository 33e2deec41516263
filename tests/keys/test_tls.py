"""provisioner.keys.tls: a self-signed certificate and key per host in the state directory, made
once, renewed before it expires, the key vault-encrypted like the DKIM keys; render only reads them."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

from provisioner.build import build
from provisioner.errors import ProvisionError, SiteInvalid
from provisioner.keys.store import ensure_keys, load_state
from provisioner.keys.tls import RENEW_BEFORE, SELF_SIGNED_DAYS, ensure_tls, read_tls, tls_files
from provisioner.render import render_site
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY

PASSWORD = b"correct horse battery staple"
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
ENV = {"SMARTHOST_PASSWORD": "x"}


def _pair_matches(cert_pem: bytes, key_pem: bytes, fqdn: str) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = load_pem_private_key(key_pem, None)
    same = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == key.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    return same and cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [fqdn]


def test_one_pair_per_host_made_once(tmp_path: Path) -> None:
    site = load_site(EXAMPLES / "multi-host/site.yaml").site
    ks, _ = ensure_keys(site, tmp_path / "state", today=FIXED_DAY, workers=1)
    made: list[str] = []
    assert ensure_tls(site, ks, NOW, made) == len(site.hosts)
    assert len(made) == 2 * len(site.hosts)
    for host in site.hosts.values():
        cert_file, key_file = tls_files(ks.state_dir, host.fqdn)
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and stat.S_IMODE(cert_file.stat().st_mode) == 0o644
        assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
        assert _pair_matches(*read_tls(ks, host.fqdn), host.fqdn)
    before = {p: p.read_bytes() for p in ks.state_dir.glob("tls/*/*.pem")}
    again: list[str] = []
    assert ensure_tls(site, ks, NOW + dt.timedelta(days=SELF_SIGNED_DAYS) - RENEW_BEFORE - dt.timedelta(days=1), again) == 0
    assert again == [] and {p: p.read_bytes() for p in before} == before


def test_a_certificate_about_to_expire_or_for_another_name_is_made_again(tmp_path: Path) -> None:
    site = load_site(EXAMPLES / "all-in-one/site.yaml").site
    ks, _ = ensure_keys(site, tmp_path / "state", today=FIXED_DAY, workers=1)
    ensure_tls(site, ks, NOW)
    fqdn = next(iter(site.hosts.values())).fqdn
    cert_file, key_file = tls_files(ks.state_dir, fqdn)
    first = cert_file.read_bytes()
    made: list[str] = []
    assert ensure_tls(site, ks, NOW + dt.timedelta(days=SELF_SIGNED_DAYS) - RENEW_BEFORE, made) == 1
    assert made == []  # renewed in place: not undone when a build fails
    assert cert_file.read_bytes() != first and _pair_matches(*read_tls(ks, fqdn), fqdn)
    cert_file.write_bytes(b"not a certificate")
    assert ensure_tls(site, ks, NOW) == 1 and _pair_matches(*read_tls(ks, fqdn), fqdn)


def test_with_a_vault_password_the_key_is_a_vault_file_and_render_ships_it_in_plaintext(tmp_path: Path) -> None:
    loaded = load_site(EXAMPLES / "all-in-one/site.yaml")
    state = tmp_path / "state"
    ks, _ = ensure_keys(loaded.site, state, today=FIXED_DAY, workers=1, vault_password=PASSWORD)
    ensure_tls(loaded.site, ks, NOW)
    host = next(iter(loaded.site.hosts.values()))
    _, key_file = tls_files(state, host.fqdn)
    raw = key_file.read_bytes()
    assert raw.startswith(b"$ANSIBLE_VAULT;1.1;AES256\n") and b"PRIVATE KEY" not in raw
    # ansible's own CLI opens it with the same password
    (tmp_path / "pw").write_bytes(PASSWORD + b"\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")} | {"HOME": str(tmp_path)}
    view = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-vault"), "view", "--vault-password-file", str(tmp_path / "pw"), str(key_file)],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    tree = render_site(loaded, ks, state, ENV)[next(iter(loaded.site.hosts))]
    shipped = {f.path: f for f in tree.files.values() if f.path.startswith("etc/ssl/provisioner/")}
    key = shipped[f"etc/ssl/provisioner/{host.fqdn}.key"]
    assert key.secret and key.mode == 0o600 and key.content == view.stdout
    assert _pair_matches(shipped[f"etc/ssl/provisioner/{host.fqdn}.crt"].content, key.content, host.fqdn)
    with pytest.raises(ProvisionError, match="encrypted with ansible-vault"):
        read_tls(load_state(state), host.fqdn)  # no password: refused, not shipped encrypted


def test_render_alone_makes_nothing_and_says_what_is_missing(tmp_path: Path) -> None:
    loaded = load_site(EXAMPLES / "all-in-one/site.yaml")
    ks, _ = ensure_keys(loaded.site, tmp_path / "state", today=FIXED_DAY, workers=1)
    with pytest.raises(ProvisionError, match="cannot read TLS certificate .*cert.pem"):
        render_site(loaded, ks, tmp_path / "state", ENV)
    assert not (tmp_path / "state" / "tls").exists()


def test_certificates_from_files_need_nothing_in_the_state(write_site, tmp_path: Path) -> None:
    text = (EXAMPLES / "all-in-one/site.yaml").read_text()
    site = load_site(write_site(text + "tls:\n  source: files\n  files: {cert: /etc/ssl/c.pem, key: /etc/ssl/k.pem}\n")).site
    ks, _ = ensure_keys(site, tmp_path / "state", today=FIXED_DAY, workers=1)
    assert ensure_tls(site, ks, NOW) == 0 and not (tmp_path / "state" / "tls").exists()


def test_a_failed_build_takes_back_the_pairs_it_made(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "multi-host", tmp_path / "site")
    site = tmp_path / "site" / "site.yaml"
    state = tmp_path / "state"
    with pytest.raises(SiteInvalid, match="SMARTHOST_PASSWORD"):
        build(site, tmp_path / "build", state, {})  # the smarthost password is missing: render fails after ensure_tls
    assert not list(state.glob("tls/*/*")) and not list(state.glob("tls/*"))
    build(site, tmp_path / "build", state, ENV)
    assert len(list(state.glob("tls/*/*.pem"))) == 2 * 3
