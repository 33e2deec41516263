"""Issue 12 item 1: which fields take a DNS name (underscore labels) and which a host name (LDH).

`policy.spf.include` takes an RFC 7208 domain-spec: `_spf.isp.example` must be accepted, macros
refused. A DNSBL zone is a looked-up DNS name too. Host names, mail domains, next hops, the
smarthost and the domains of addresses stay LDH (RFC 1123 §2.1, RFC 5321 §4.1.2). The class is
tested with hypothesis: every name made of valid labels within the size limits, every empty
label, every size one past a limit, every invisible character.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from provisioner.dns.records import site_records
from provisioner.errors import SiteInvalid
from provisioner.keys.store import load_state
from provisioner.site.types import to_a_label, to_dns_name, to_u_label
from provisioner.site.validate import load_site
from tests.conftest import FIXED_DAY, MINIMAL

LDH = "abcdefghijklmnopqrstuvwxyz0123456789-"
DNS = LDH + "_"

# An "xn--" label must be a valid A-label: tested on its own below.
ldh_label = st.text(LDH, min_size=1, max_size=63).filter(lambda s: s[0] != "-" and s[-1] != "-" and not s.startswith("xn--"))
dns_label = st.text(DNS, min_size=1, max_size=63).filter(lambda s: not s.startswith("xn--"))
top_label = ldh_label.filter(lambda s: not s.isdigit())


def _joined(labels: list[str], top: str) -> str:
    return ".".join([*labels, top])


dns_names = st.builds(_joined, st.lists(dns_label, min_size=1, max_size=5), top_label).filter(lambda n: len(n) <= 253)
ldh_names = st.builds(_joined, st.lists(ldh_label, min_size=1, max_size=5), top_label).filter(lambda n: len(n) <= 253)


def refused(function, value: str) -> PydanticCustomError:
    with pytest.raises(PydanticCustomError) as caught:
        function(value)
    return caught.value


@settings(max_examples=300)
@given(dns_names)
def test_every_dns_name_within_the_limits_is_accepted_as_written(name: str) -> None:
    assert to_dns_name(name) == name
    assert to_dns_name(name.upper() + ".") == name  # case folded, the root's dot dropped
    if "_" in name:
        error = refused(to_a_label, name)
        assert "'_' is not allowed in a host name" in error.message()


@settings(max_examples=300)
@given(ldh_names)
def test_a_host_name_is_a_dns_name_too(name: str) -> None:
    assert to_a_label(name) == name == to_dns_name(name)


@given(st.lists(dns_label, min_size=1, max_size=4), top_label, st.integers(0, 4), st.sampled_from([to_dns_name, to_a_label]))
def test_an_empty_label_is_refused(labels: list[str], top: str, at: int, function) -> None:
    parts = [*labels, top]
    parts.insert(min(at, len(parts)), "")
    name = ".".join(parts)
    error = refused(function, name if not name.endswith(".") else name + ".")
    assert "not a valid" in error.message()


@pytest.mark.parametrize("function", [to_dns_name, to_a_label])
def test_label_and_name_limits(function) -> None:
    label63, label64 = "a" * 63, "a" * 64
    assert function(f"{label63}.example") == f"{label63}.example"
    assert "63 characters per label" in refused(function, f"{label64}.example").context["hint"]  # type: ignore[index]
    name253 = ".".join(["a" * 61] * 4) + ".abcde"
    assert len(name253) == 253
    assert function(name253) == name253
    assert "at most 253 characters" in refused(function, "b" + name253).context["hint"]  # type: ignore[index]


@given(dns_names, st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Co", "Cn"]), st.integers(0, 300))
def test_invisible_characters_are_refused(name: str, char: str, at: int) -> None:
    at = min(at, len(name))
    bad = name[:at] + char + name[at:]
    for function in (to_dns_name, to_a_label):
        refused(function, bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("_SPF.例え。JP.", "_spf.xn--r8jz45g.jp"),  # UTS 46: case, ideographic full stop; IDN label alone
        ("_spf.ビジネス.jp", "_spf.xn--yckc3dwa.jp"),
        ("_dmarc._spf.google.com", "_dmarc._spf.google.com"),
        ("-odd.example", "-odd.example"),  # RFC 2181 §11: any label; harmless in a TXT record
    ],
)
def test_dns_name_forms(value: str, expected: str) -> None:
    assert to_dns_name(value) == expected


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("_spf.example.123", "top-level domain"),  # RFC 7208 §7.1 toplabel: not all-numeric
        ("_spf.example.t_ld", "top-level domain"),
        ("192.0.2.1", "top-level domain"),
        ("spf", "two labels"),
        ("a b.example", "no spaces"),
        ("spf.example;x", "RFC 2181"),
        ('spf."example', "RFC 2181"),
    ],
)
def test_dns_name_refusals(value: str, hint: str) -> None:
    assert hint in refused(to_dns_name, value).context["hint"]  # type: ignore[index]


def test_an_a_label_that_does_not_decode_is_refused() -> None:
    """Render writes the U-label form of every hosted IDN domain beside its A-label."""
    for function in (to_a_label, to_dns_name):
        assert "not a valid A-label" in refused(function, "xn--zz.jp").message()
    assert to_u_label(to_a_label("ビジネス.jp")) == "ビジネス.jp" and to_u_label("acme.example") == "acme.example"


# ---------------------------------------------------------------------------- through the site file


def test_spf_include_with_underscores_is_published(write_site, tmp_path) -> None:
    path = write_site(MINIMAL + "policy:\n  spf:\n    include: [_spf.isp.example, _SPF.Google.COM]\n  dnsbl: [{zone: _bl.lists.example}]\n")
    site = load_site(path).site
    assert site.policy.spf.include == ("_spf.isp.example", "_spf.google.com")
    assert site.policy.dnsbl[0].zone == "_bl.lists.example"
    records = site_records(site, load_state(tmp_path / "state"), today=FIXED_DAY)
    spf = next(r.value for r in records.records if r.name == "t.example" and r.type == "TXT" and r.value.startswith("v=spf1"))
    assert "include:_spf.isp.example include:_spf.google.com" in spf


def _problems(write_site, text: str) -> list[str]:
    path = write_site(text)
    with pytest.raises(SiteInvalid) as caught:
        load_site(path)
    return [str(p).removeprefix(f"{path}:") for p in caught.value.problems]


@pytest.mark.parametrize("macro", ["%{i}._spf.isp.example", "%{d}.example", "_spf.%%.example"])
def test_spf_macro_is_refused_with_a_hint(write_site, macro: str) -> None:
    problems = _problems(write_site, MINIMAL + f'policy:\n  spf:\n    include: ["{macro}"]\n')
    assert len(problems) == 1
    assert problems[0].startswith("16:15: policy.spf.include[0]: SPF include ")
    assert "contains an SPF macro" in problems[0] and "write the provider's plain domain" in problems[0]


# Each field that names a host or the domain of an address, with '_' in it: refused, and the
# message names the field and says why (a host name, RFC 1123).
HOST_FIELDS = {
    "hosts.mx1.fqdn": MINIMAL.replace("fqdn: mx1.t.example", "fqdn: _mx1.t.example"),
    "domains._t.example": MINIMAL.replace("  t.example:", "  _t.example:"),
    "aliases target domain": MINIMAL.replace("{postmaster: alice}", "{postmaster: alice, info: someone@_x.example}"),
    "dmarc rua": MINIMAL + "policy:\n  dmarc:\n    rua: [mailto:d@_r.example]\n",
    "tls_rpt rua": MINIMAL + "policy:\n  tls_rpt:\n    rua: [mailto:d@_r.example]\n",
    "transport key": MINIMAL + "relay:\n  transports:\n    _p.example: 'smtp:[mx.p.example]:25'\n",
    "transport next hop": MINIMAL + "relay:\n  transports:\n    p.example: 'smtp:[_mx.p.example]:25'\n",
    "smarthost": MINIMAL + "relay:\n  smarthost: {host: _smtp.isp.example, username: u, password: {env: P}}\n",
}


@pytest.mark.parametrize("text", HOST_FIELDS.values(), ids=HOST_FIELDS.keys())
def test_host_names_and_mail_domains_stay_ldh(write_site, text: str) -> None:
    problems = _problems(write_site, text)
    assert problems, text
    assert any("'_' is not allowed in a host name" in p or "not an accepted transport" in p for p in problems), problems
