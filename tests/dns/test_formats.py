"""Record views: TXT splitting, zone files dnspython parses, octoDNS accepting its YAML, JSON shape."""

from __future__ import annotations

import json
from pathlib import Path

import dns.zone
import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.dns.formats import json_doc, json_lines, octodns_zone, rdata, records_json, txt_strings, zone_text
from provisioner.dns.records import Level, Note, Purpose, Record, RecordSet, mta_sts_id, mta_sts_policy, reverse_zone, site_records
from provisioner.keys.store import ensure_keys
from provisioner.mailauth.grammar import LOOKUP_MECHANISMS, Invalid, parse_spf
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    site = load_site(EXAMPLES / "multi-host/site.yaml").site
    keys, _ = ensure_keys(site, tmp_path_factory.mktemp("state"), today=FIXED_DAY, workers=1)
    return site, site_records(site, keys, today=FIXED_DAY)


@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters='"\\'), max_size=1200))
def test_txt_split_joins_back_without_spaces(value: str) -> None:
    chunks = txt_strings(value)
    assert "".join(chunks) == value
    assert all(len(c.encode()) <= 255 for c in chunks)


def test_long_dkim_key_is_one_record_of_several_strings(multi) -> None:
    _, rs = multi
    record = next(r for r in rs.records if r.name.startswith("s202611a._domainkey.acme.example"))
    assert len(record.value) > 255
    text = rdata(record)
    assert text.count('" "') == len(txt_strings(record.value)) - 1
    zone = dns.zone.from_text(f"$ORIGIN acme.example.\n@ 3600 IN SOA ns. h. 1 1 1 1 1\n@ 3600 IN NS ns.\n{record.name}. 3600 IN TXT {text}\n", relativize=False)
    rdataset = zone.find_rdataset(record.name + ".", "TXT")
    assert len(rdataset) == 1
    assert b"".join(next(iter(rdataset)).strings).decode() == record.value


def test_every_zone_parses_with_dnspython(multi) -> None:
    _, rs = multi
    for zone in rs.zones():
        parsed = dns.zone.from_text(zone_text(rs, zone, standalone=True), origin=zone, relativize=False)
        assert len(list(parsed.iterate_rdatas())) == len(rs.in_zone(zone)) + 2  # + SOA, NS


def test_records_the_issue_names(multi) -> None:
    _, rs = multi
    by = {(r.name, r.type, r.value) for r in rs.records}
    assert ("acme.example", "MX", "10 mx1.acme.example.") in by
    assert ("acme.example", "MX", "20 mx2.acme.example.") in by
    assert ("acme.example", "TXT", "v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 ip4:192.0.2.20 ip4:192.0.2.11 -all") in by
    assert ("_dmarc.acme.example", "TXT", "v=DMARC1; p=reject; rua=mailto:dmarc@acme.example; adkim=r; aspf=r") in by
    assert ("_dmarc.xn--r8jz45g.jp", "TXT", "v=DMARC1; p=quarantine; rua=mailto:dmarc@acme.example; adkim=r; aspf=r") in by
    assert ("xn--r8jz45g.jp._report._dmarc.acme.example", "TXT", "v=DMARC1") in by
    assert ("10.2.0.192.in-addr.arpa", "PTR", "mx1.acme.example.") in by
    assert ("_imap._tcp.acme.example", "SRV", "0 0 0 .") in by
    assert ("_submissions._tcp.acme.example", "SRV", "0 1 465 mx1.acme.example.") in by
    assert ("mx2.acme.example", "TXT", "v=spf1 ip4:192.0.2.20 -all") in by
    dkim = [r for r in rs.records if "._domainkey.acme.example" in r.name]
    assert {r.name.split(".")[0] for r in dkim} == {"s202611a", "s202611a-ed", "s202611b", "s202611b-ed"}
    assert all(r.level is Level.REQUIRED for r in dkim if r.name.startswith("s202611a"))
    ed = next(r for r in dkim if r.name.startswith("s202611a-ed"))
    assert ed.value.startswith("v=DKIM1; k=ed25519; p=") and len(ed.value.split("p=")[1]) == 44  # 32 bytes
    ptr = next(r for r in rs.records if r.type == "PTR")
    assert ptr.at_provider and "hosting/IP provider" in ptr.purpose.en
    assert any("_report._dmarc" in n.en or "smarthost" in n.en for n in rs.notes)


def test_dmarc_tags_order_and_no_pct(multi) -> None:
    _, rs = multi
    for r in rs.records:
        if r.name.startswith("_dmarc."):
            tags = [t.split("=")[0] for t in r.value.split("; ")]
            assert tags[:2] == ["v", "p"] and "pct" not in tags


def test_mta_sts_id_changes_exactly_when_the_policy_changes(multi) -> None:
    site, _ = multi
    policy = site.policy.mta_sts
    text = mta_sts_policy(site, policy)
    assert text == "version: STSv1\r\nmode: testing\r\nmx: mx1.acme.example\r\nmx: mx2.acme.example\r\nmax_age: 604800\r\n"
    assert mta_sts_id(text) == mta_sts_id(mta_sts_policy(site, policy))
    assert mta_sts_id(text) != mta_sts_id(mta_sts_policy(site, policy.model_copy(update={"max_age": 86400})))


def test_reverse_zones() -> None:
    import ipaddress

    assert reverse_zone(ipaddress.ip_address("192.0.2.10")) == "2.0.192.in-addr.arpa"
    assert reverse_zone(ipaddress.ip_address("2001:db8::10")) == "0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"


@pytest.mark.parametrize(
    ("value", "count"),
    [
        ("v=spf1 ip4:1.2.3.4 -all", 0),
        ("v=spf1 a mx include:x.example -all", 3),
        ("v=spf1 ip6:::1 redirect=y.example", 1),
        ("v=spf1 +a/24 ~mx:z.example/24 exists:%{i}.x ptr -all", 4),
    ],
)
def test_spf_lookup_counting(value: str, count: int) -> None:
    """The one list of terms that cost a lookup (RFC 7208 §4.6.4) is provisioner.mailauth's."""
    record = parse_spf(value)
    assert not isinstance(record, Invalid)
    assert sum(term.name in LOOKUP_MECHANISMS for term in record.mechanisms) + (record.redirect is not None) == count


def test_octodns_accepts_every_zone(multi, tmp_path: Path) -> None:
    """octoDNS's own YamlProvider loads and validates the files (it raises on invalid records)."""
    from octodns.provider.yaml import YamlProvider
    from octodns.zone import Zone

    _, rs = multi
    for zone in rs.zones():
        (tmp_path / f"{zone}.yaml").write_text(octodns_zone(rs, zone))
    provider = YamlProvider("generated", str(tmp_path), enforce_order=False, supports_root_ns=False, escaped_semicolons=True)
    for zone_name in rs.zones():
        zone = Zone(zone_name + ".", [])
        provider.populate(zone)
        assert len(zone.records) == len({(r.relative_name, r.type) for r in rs.in_zone(zone_name)})
        for record in zone.records:
            if record._type == "TXT":
                for value in record.values:
                    assert value.replace("\\;", ";") in {r.value for r in rs.in_zone(zone_name)}


def test_json_has_every_field(multi) -> None:
    _, rs = multi
    doc = json.loads(json.dumps(json_doc(rs)))
    assert doc["version"] == 1 and len(doc["records"]) == len(rs.records)
    first = doc["records"][0]
    assert set(first) == {"zone", "name", "relative_name", "type", "ttl", "value", "strings", "level", "purpose", "at_provider"}
    assert set(first["purpose"]) == {"en", "ja"}


def test_record_relative_names() -> None:
    r = Record("acme.example", "_dmarc.acme.example", "TXT", "v=DMARC1; p=none", 3600, Level.REQUIRED, Purpose("", ""))
    assert r.relative_name == "_dmarc"
    assert Record("acme.example", "acme.example", "MX", "0 .", 3600, Level.REQUIRED, Purpose("", "")).relative_name == "@"


_TEXT = st.text(max_size=300)  # any code point: quotes, backslashes, controls, Japanese, surrogates
_RECORD = st.builds(
    Record,
    zone=_TEXT,
    name=_TEXT,
    type=st.sampled_from(["TXT", "MX", "A", "SRV", "CNAME", "PTR"]),
    value=_TEXT,
    ttl=st.integers(0, 2**31),
    level=st.sampled_from(list(Level)),
    purpose=st.builds(Purpose, en=_TEXT, ja=_TEXT),
    at_provider=st.booleans(),
)
_NOTE = st.builds(Note, domain=_TEXT, en=_TEXT, ja=_TEXT)


@given(records=st.lists(_RECORD, max_size=8), notes=st.lists(_NOTE, max_size=3))
def test_records_json_is_the_json_document_one_record_a_line(records: list[Record], notes: list[Note]) -> None:
    """records.json is put together by hand for speed: byte for byte what json.dumps writes."""
    rs = RecordSet(records, notes, {})
    assert records_json(rs) == json_lines(json_doc(rs), "records")


def test_records_json_of_a_real_site(multi) -> None:
    _, rs = multi
    assert records_json(rs) == json_lines(json_doc(rs), "records")
    assert json.loads(records_json(rs)) == json.loads(json.dumps(json_doc(rs)))
