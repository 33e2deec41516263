"""The refusals around pydantic calls catch exactly what a refusal is (PydanticCustomError /
ValidationError): a bad value is reported, a bug (TypeError, ...) is not turned into one."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

import provisioner.render as render
import provisioner.site.idn as idn
import provisioner.site.validate as validate
from provisioner.errors import ProvisionError, SiteInvalid
from provisioner.site.types import to_a_label
from tests.conftest import EXAMPLES


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.from_regex(r"[a-zA-Z0-9.\-_äß]{0,70}", fullmatch=True), st.integers(), st.none()))
def test_to_a_label_refuses_only_with_a_pydantic_custom_error(value: object) -> None:
    try:
        to_a_label(value)
    except PydanticCustomError:
        pass  # what the narrowed excepts in site/idn.py and site/validate.py catch


def test_a_bad_name_on_the_command_line_is_a_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProvisionError, match=r"'a\.\.example'.*not a valid domain name"):
        idn.to_a_label_or_error("a..example")

    def broken(name: str) -> str:
        raise TypeError("a bug")

    monkeypatch.setattr(idn, "to_a_label", broken)
    with pytest.raises(TypeError, match="a bug"):
        idn.to_a_label_or_error("a.example")


def test_a_bug_while_validating_domains_is_not_reported_as_a_bad_site(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: object, what: str = "") -> str:
        raise TypeError("a bug")

    monkeypatch.setattr(validate, "to_a_label", broken)
    with pytest.raises(TypeError, match="a bug"):
        validate.load_site(EXAMPLES / "multi-host" / "site.yaml")


def test_a_bad_hash_in_a_secret_file_is_reported_and_a_bug_is_not(write_site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (EXAMPLES / "all-in-one" / "site.yaml").read_text()
    hashed = next(line for line in text.splitlines() if "password:" in line and "{ARGON2ID}" in line)
    site = write_site(text.replace(hashed, hashed.split("password:")[0] + "password: {file: pw.hash}", 1))
    (site.parent / "pw.hash").write_text("plain-text-password\n")
    loaded = validate.load_site(site)
    with pytest.raises(SiteInvalid, match="plaintext is not accepted"):
        render.resolve_secrets(loaded, {})

    def broken(value: str) -> str:
        raise TypeError("a bug")

    monkeypatch.setattr(render, "check_password_hash", broken)
    with pytest.raises(TypeError, match="a bug"):
        render.resolve_secrets(loaded, {})
