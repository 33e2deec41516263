"""The site file's dns block (dns.targets, dns.reverse, domains.<d>.dns): which zone goes where,
and every mistake named by file, line, column and key with a hint."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.errors import SiteInvalid
from provisioner.site.validate import load_site
from tests.conftest import MINIMAL

KNOT = """
dns:
  targets:
    knot:
      class: octodns_bind.Rfc2136Provider
      host: 127.0.0.1
      port: 5353
      key_name: provision
      key_secret: {env: TSIG_SECRET}
"""


def problems(write_site, text: str) -> list[str]:
    with pytest.raises(SiteInvalid) as caught:
        load_site(write_site(text))
    return [str(p) for p in caught.value.problems]


def test_one_target_is_the_default_and_manual_opts_out(write_site) -> None:
    site = load_site(write_site(MINIMAL + KNOT)).site
    domain = sorted(site.domains)[0]
    assert site.dns_target(domain) == "knot"
    manual = MINIMAL.replace("    aliases: {postmaster: alice}", "    aliases: {postmaster: alice}\n    dns: manual")
    assert load_site(write_site(manual + KNOT)).site.dns_target(domain) is None
    assert load_site(write_site(MINIMAL)).site.dns_target(domain) is None  # no targets: by hand


def test_two_targets_and_no_choice_is_manual(write_site) -> None:
    two = KNOT + "    other:\n      class: octodns_bind.Rfc2136Provider\n      host: 127.0.0.2\n"
    site = load_site(write_site(MINIMAL + two)).site
    assert site.dns_target(sorted(site.domains)[0]) is None


def test_an_unknown_target_name_is_located_with_a_hint(write_site) -> None:
    text = MINIMAL.replace("    aliases: {postmaster: alice}", "    aliases: {postmaster: alice}\n    dns: knto") + KNOT + "  reverse: nowhere\n"
    found = problems(write_site, text)
    assert any(".dns: 'knto' is not a dns.targets name (hint: did you mean knot?)" in p for p in found), found
    assert any("dns.reverse: 'nowhere' is not a dns.targets name (hint: declared targets: knot)" in p for p in found), found
    assert all(p.split(":")[1].isdigit() and p.split(":")[2].isdigit() for p in found)


def test_a_target_needs_a_class_and_credentials_are_references(write_site) -> None:
    text = MINIMAL + "dns:\n  targets:\n    knot:\n      host: 127.0.0.1\n      key_secret: c2VjcmV0\n    manual:\n      class: not a path\n"
    found = problems(write_site, text)
    assert any("dns.targets.knot: a target needs class: its octoDNS provider" in p for p in found), found
    assert any("dns.targets.knot.key_secret: credentials are never written in the site file" in p and "c2VjcmV0" not in p for p in found), found
    assert any("dns.targets.manual: 'manual' means records entered by hand" in p for p in found), found
    assert any("dns.targets.manual.class: 'not a path' is not a Python class path" in p for p in found), found


def test_option_names_and_values_are_checked(write_site) -> None:
    text = MINIMAL + KNOT + "      bad-name: 1\n      nested: {a: 1, b: 2}\n"
    found = problems(write_site, text)
    assert any("dns.targets.knot.bad-name: 'bad-name' is not a provider option name" in p for p in found), found
    assert any("dns.targets.knot.nested: a secret reference has exactly one key" in p for p in found), found


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(categories=("Cc", "Cf", "Zl", "Zp")), min_size=1, max_size=3))
def test_no_provider_option_holds_a_control_or_invisible_character(tmp_path_factory, bad: str) -> None:
    """The class of defect: any control, format or separator character in any option value."""
    import json

    path = tmp_path_factory.mktemp("site") / "site.yaml"
    path.write_text(MINIMAL + KNOT.replace("host: 127.0.0.1", "host: " + json.dumps("127.0.0.1" + bad)), encoding="utf-8")
    with pytest.raises(SiteInvalid) as caught:
        load_site(path)
    assert any("dns.targets.knot.host" in str(p) for p in caught.value.problems)


def test_the_sheet_says_which_zones_are_pushed_and_which_are_by_hand(tmp_path) -> None:
    """Only with dns.targets; the bundled examples (no targets) keep their goldens byte for byte."""
    import shutil

    from provisioner.dns.records import site_records
    from provisioner.dns.sheet import sheet_html
    from provisioner.keys.store import ensure_keys
    from tests.conftest import EXAMPLES, FIXED_DAY

    shutil.copytree(EXAMPLES / "multi-host", tmp_path / "site", ignore=shutil.ignore_patterns("state", "build"))
    path = tmp_path / "site" / "site.yaml"
    plain = load_site(path).site
    keys, _ = ensure_keys(plain, tmp_path / "state", today=FIXED_DAY, workers=1)
    before = sheet_html(plain, site_records(plain, keys, today=FIXED_DAY))
    assert "Pushed automatically" not in before and "Entered by hand" not in before
    text = path.read_text().replace("  legacy.acme.example:\n", "  legacy.acme.example:\n    dns: manual\n")
    path.write_text(text + KNOT + "  reverse: knot\n")
    site = load_site(path).site
    html = sheet_html(site, site_records(site, keys, today=FIXED_DAY))
    assert html.count("Pushed automatically to knot") == 3  # acme.example, 例え.jp, the reverse zones' table
    assert html.count("Entered by hand") == 1  # legacy.acme.example
    ja = sheet_html(site, site_records(site, keys, today=FIXED_DAY), lang="ja")
    assert "手入力" in ja and "knot に自動で登録" in ja
