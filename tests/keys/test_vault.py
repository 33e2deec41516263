"""DKIM private keys as ansible-vault files: written with a password, read back, opened by `ansible-vault` itself."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from provisioner.errors import ProvisionError
from provisioner.keys.store import ensure_keys, load_state, rotate, vault_password_from
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY

PASSWORD = b"correct horse battery staple"
ANSIBLE_VAULT = Path(sys.executable).parent / "ansible-vault"


@pytest.fixture
def site():
    return load_site(EXAMPLES / "all-in-one/site.yaml").site


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "vault-pass"
    path.write_bytes(PASSWORD + b"\n")
    return path


def test_vault_round_trip(site, tmp_path: Path, password_file: Path) -> None:
    state = tmp_path / "state"
    ks, made = ensure_keys(site, state, today=FIXED_DAY, workers=1, vault_password=PASSWORD)
    assert made == 2
    key = ks.signing_keys("smallco.example")[0]
    raw = key.path.read_bytes()
    assert raw.startswith(b"$ANSIBLE_VAULT;1.1;AES256\n")
    assert b"PRIVATE KEY" not in raw
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
    assert key.path.name == "s202611a.pem"
    pem = load_state(state, PASSWORD).read_private(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_pem_private_key(pem, None).key_size == 2048  # type: ignore[union-attr]
    # the outside judge: ansible's own CLI opens the file with the same password file
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["HOME"] = str(tmp_path)  # no user ansible.cfg
    view = subprocess.run(
        [str(ANSIBLE_VAULT), "view", "--vault-password-file", str(password_file), str(key.path)],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert view.stdout == pem


def test_plaintext_keys_read_as_is(site, tmp_path: Path) -> None:
    ks, _ = ensure_keys(site, tmp_path, today=FIXED_DAY, workers=1)
    key = ks.signing_keys("smallco.example")[0]
    assert ks.read_private(key) == key.path.read_bytes()
    assert load_state(tmp_path, PASSWORD).read_private(key) == key.path.read_bytes()  # a password does not hurt


def test_encrypted_key_without_password_is_a_clear_error(site, tmp_path: Path) -> None:
    ensure_keys(site, tmp_path, today=FIXED_DAY, workers=1, vault_password=PASSWORD)
    ks = load_state(tmp_path)
    key = ks.signing_keys("smallco.example")[0]
    with pytest.raises(ProvisionError, match="encrypted with ansible-vault; pass --vault-password-file FILE or set ANSIBLE_VAULT_PASSWORD_FILE") as err:
        ks.read_private(key)
    assert str(key.path) in str(err.value)


def test_wrong_password_is_a_clear_error(site, tmp_path: Path) -> None:
    ensure_keys(site, tmp_path, today=FIXED_DAY, workers=1, vault_password=PASSWORD)
    ks = load_state(tmp_path, b"not the password")
    key = ks.signing_keys("smallco.example")[0]
    with pytest.raises(ProvisionError, match="wrong vault password") as err:
        ks.read_private(key)
    assert str(err.value) == f"cannot decrypt {key.path}: wrong vault password?"


def test_damaged_vault_file_is_reported(site, tmp_path: Path) -> None:
    ks, _ = ensure_keys(site, tmp_path, today=FIXED_DAY, workers=1, vault_password=PASSWORD)
    key = ks.signing_keys("smallco.example")[0]
    key.path.write_bytes(b"$ANSIBLE_VAULT;1.1;AES256\nnot hex at all\n")
    with pytest.raises(ProvisionError, match="cannot decrypt .*damaged"):
        ks.read_private(key)


def test_existing_keys_are_never_regenerated(site, tmp_path: Path) -> None:
    ensure_keys(site, tmp_path, today=FIXED_DAY, workers=1)  # plaintext keys first
    plain = {p: p.read_bytes() for p in (tmp_path / "dkim").rglob("*.pem")}
    _, made = ensure_keys(site, tmp_path, today=FIXED_DAY, workers=1, vault_password=PASSWORD)
    assert made == 0
    assert {p: p.read_bytes() for p in (tmp_path / "dkim").rglob("*.pem")} == plain  # not re-encrypted either
    # a rotation encrypts only the new standby key; the old ones stay byte for byte
    ks = rotate(site, tmp_path, ["smallco.example"], today=FIXED_DAY + dt.timedelta(days=2), vault_password=PASSWORD)
    new = tmp_path / "dkim/smallco.example/s202611c.pem"
    assert new.read_bytes().startswith(b"$ANSIBLE_VAULT;")
    assert {p: p.read_bytes() for p in plain} == plain
    _, made = ensure_keys(site, tmp_path, today=FIXED_DAY + dt.timedelta(days=2), workers=1, vault_password=PASSWORD)
    assert made == 0
    assert ks.read_private(ks.keys("smallco.example")[-1]).startswith(b"-----BEGIN PRIVATE KEY-----")


def test_vault_password_from_file(tmp_path: Path, password_file: Path) -> None:
    assert vault_password_from(password_file, {}) == PASSWORD
    # the file given wins over the environment
    assert vault_password_from(password_file, {"ANSIBLE_VAULT_PASSWORD_FILE": str(tmp_path / "nope")}) == PASSWORD
    crlf = tmp_path / "crlf"
    crlf.write_bytes(b"pw\r\n")
    assert vault_password_from(crlf, {}) == b"pw"


def test_vault_password_from_env(tmp_path: Path, password_file: Path) -> None:
    assert vault_password_from(None, {"ANSIBLE_VAULT_PASSWORD_FILE": str(password_file)}) == PASSWORD
    assert vault_password_from(None, {}) is None
    assert vault_password_from(None, {"ANSIBLE_VAULT_PASSWORD_FILE": ""}) is None


def test_vault_password_from_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing-pass"
    with pytest.raises(ProvisionError, match=str(missing)):
        vault_password_from(missing, {})
    with pytest.raises(ProvisionError, match="ANSIBLE_VAULT_PASSWORD_FILE"):
        vault_password_from(None, {"ANSIBLE_VAULT_PASSWORD_FILE": str(missing)})
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    with pytest.raises(ProvisionError, match="empty password"):
        vault_password_from(empty, {})


def test_vault_password_from_script(tmp_path: Path) -> None:
    script = tmp_path / "pass.sh"
    script.write_text("#!/bin/sh\nprintf 'from-script\\n'\n")
    script.chmod(0o700)
    assert vault_password_from(script, {}) == b"from-script"
    failing = tmp_path / "fail.sh"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(0o700)
    with pytest.raises(ProvisionError, match="exited with status 3"):
        vault_password_from(failing, {})
