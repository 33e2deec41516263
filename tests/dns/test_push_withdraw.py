"""A zone push published to and no longer does (a domain removed from the site, switched to
`manual`, a reverse zone with no address left) is visited and only our values there are deleted,
against the real Knot of tests/dns/knot.py; and the state file that remembers those zones is
read as hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.dns.push import PUSHED_FILE, read_pushed, write_pushed
from provisioner.errors import ProvisionError
from tests.dns.test_push import Pushed, foreign_intact, pushed_fixture  # noqa: F401 - the fixture `pushed`

LEGACY = '  legacy.acme.example:\n    relay_to: "smtp:[mail.legacy.acme.example]:25"\n'
IDN = "xn--r8jz45g.jp"


def add_foreign(pushed: Pushed, zone: str) -> None:
    """Others' records in `zone`: an A and a TXT at the apex (beside our SPF), a subdomain
    without mail (an A and a TXT)."""
    pushed.knot.knsupdate(
        f"zone {zone}.\n"
        f"update add {zone}. 3600 A 192.0.2.99\n"
        f'update add {zone}. 3600 TXT "their-verification={zone}"\n'
        f"update add shop.{zone}. 3600 A 192.0.2.98\n"
        f'update add shop.{zone}. 3600 TXT "shop text"'
    )


def theirs_intact(pushed: Pushed, zone: str) -> None:
    knot = pushed.knot
    assert knot.query(zone, "A") == ["192.0.2.99"]
    assert f"their-verification={zone}" in knot.txt(zone)
    assert knot.query(f"shop.{zone}", "A") == ["192.0.2.98"] and knot.txt(f"shop.{zone}") == ["shop text"]
    assert knot.query(f"shop.{zone}", "MX") == []


def ours_gone(pushed: Pushed, zone: str) -> None:
    knot = pushed.knot
    assert knot.query(zone, "MX") == []
    assert [v for v in knot.txt(zone) if v.startswith("v=spf1")] == []
    assert knot.txt(f"_dmarc.{zone}") == [] and knot.txt(f"s202611a._domainkey.{zone}") == []
    assert knot.txt(f"_provision.{zone}") == []  # the marker goes with the last value of ours


def remembered(pushed: Pushed) -> list[str]:
    return read_pushed(pushed.site.parent / "state" / PUSHED_FILE).get("knot", [])


def test_a_domain_removed_from_the_site_is_withdrawn_and_theirs_stay(pushed: Pushed) -> None:
    assert pushed.push().returncode == 0
    assert "legacy.acme.example" in remembered(pushed)
    add_foreign(pushed, "legacy.acme.example")
    assert pushed.knot.query("legacy.acme.example", "MX")
    site = pushed.site.read_text()
    assert LEGACY in site
    pushed.site.write_text(site.replace(LEGACY, ""))
    plan = pushed.push("--dry-run")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    # the apex TXT set keeps their value (an update), the other eight sets of ours go, and the marker
    assert "zone legacy.acme.example (target knot): 0 to create, 1 to update, 8 to delete, 1 ownership marker(s); withdrawn" in plan.stdout
    assert "withdrawn: domain no longer in the site" in plan.stdout and "- legacy.acme.example MX" in plan.stdout, plan.stdout
    doc = json.loads(pushed.push("--dry-run", "--format", "json").stdout)
    zone = next(z for z in doc["zones"] if z["zone"] == "legacy.acme.example")
    assert zone["withdrawn"] == "domain no longer in the site" and zone["markers"] == 1
    assert {c["action"] for c in zone["changes"]} <= {"delete", "update"}  # an update keeps theirs beside
    assert not any("192.0.2.9" in v for c in zone["changes"] if c["action"] == "delete" for v in c["old"])
    # Over octoDNS's threshold (all of ours in a zone of 10+ sets), yet no --force: the site removed it.
    done = pushed.push()
    assert done.returncode == 0, done.stdout + done.stderr
    ours_gone(pushed, "legacy.acme.example")
    theirs_intact(pushed, "legacy.acme.example")
    foreign_intact(pushed.knot)
    assert "legacy.acme.example" not in remembered(pushed) and "acme.example" in remembered(pushed)
    again = pushed.push("--dry-run")
    assert again.returncode == 0 and "0 zone(s) would change" in again.stdout, again.stdout
    assert pushed.push("--format", "json").returncode == 0
    theirs_intact(pushed, "legacy.acme.example")


def test_a_domain_switched_to_manual_is_withdrawn_only_with_force(pushed: Pushed) -> None:
    assert pushed.push().returncode == 0
    add_foreign(pushed, IDN)
    pushed.site.write_text(pushed.site.read_text().replace("  例え.jp:\n", "  例え.jp:\n    dns: manual\n", 1))
    plan = pushed.push("--dry-run")
    assert plan.returncode == 2 and f"zone {IDN} (target knot)" in plan.stdout
    assert "withdrawn: domain now entered by hand (manual); push needs --force" in plan.stdout, plan.stdout
    held = pushed.push()
    assert held.returncode == 1 and f"held, not withdrawn without --force: zone {IDN} (target knot)" in held.stdout, held.stdout
    assert pushed.knot.query(IDN, "MX") and IDN in remembered(pushed)  # nothing withdrawn, still remembered
    done = pushed.push("--force")
    assert done.returncode == 0, done.stdout + done.stderr
    ours_gone(pushed, IDN)
    theirs_intact(pushed, IDN)
    foreign_intact(pushed.knot)
    assert IDN not in remembered(pushed)
    again = pushed.push("--dry-run")
    assert again.returncode == 0 and "0 zone(s) would change" in again.stdout, again.stdout


def test_a_reverse_zone_with_no_address_left_is_withdrawn(pushed: Pushed) -> None:
    nibble = "0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    ptr = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0." + nibble
    assert pushed.push().returncode == 0
    assert pushed.knot.query(ptr, "PTR") == ["mx1.acme.example."]
    pushed.knot.knsupdate(f"zone {nibble}.\nupdate add 2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.{nibble}. 3600 PTR www.acme.example.")
    pushed.site.write_text(pushed.site.read_text().replace("    ipv6: [2001:db8::10]\n", "", 1))
    plan = pushed.push("--dry-run")
    assert plan.returncode == 2 and f"zone {nibble} (target knot)" in plan.stdout and "withdrawn: no host address left in this reverse zone" in plan.stdout
    assert pushed.push().returncode == 0
    assert pushed.knot.query(ptr, "PTR") == [] and pushed.knot.txt(f"_provision.{nibble}") == []
    assert pushed.knot.query(f"2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.{nibble}", "PTR") == ["www.acme.example."]
    assert nibble not in remembered(pushed)
    assert pushed.push("--dry-run").returncode == 0


def test_a_dry_run_writes_no_state_and_a_site_never_pushed_withdraws_nothing(pushed: Pushed) -> None:
    assert pushed.push("--dry-run").returncode == 2
    assert not (pushed.site.parent / "state" / PUSHED_FILE).exists()
    pushed.site.write_text(pushed.site.read_text().replace(LEGACY, ""))
    done = pushed.push("--format", "json")
    assert done.returncode == 0
    assert all(z["withdrawn"] == "" for z in json.loads(done.stdout)["zones"])
    assert (pushed.site.parent / "state" / PUSHED_FILE).stat().st_mode & 0o777 == 0o644  # names only, no secret


# ---------------------------------------------------------------------------- the state file


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"version": 1, "targets": {"knot": ["../../etc/passwd"]}}', "is not a zone name"),
        ('{"version": 1, "targets": {"knot": ["a/b"]}}', "is not a zone name"),
        ('{"version": 1, "targets": {"knot": ["evil.example\\n"]}}', "is not a zone name"),
        ('{"version": 1, "targets": {"knot": ["-x.example"]}}', "is not a zone name"),
        ('{"version": 1, "targets": {"knot": [7]}}', "is not a zone name"),
        ('{"version": 1, "targets": {"Bad Target": []}}', "not a target name"),
        ('{"version": 1, "targets": {"knot": "acme.example"}}', "not a target name with a list"),
        ('{"version": 2, "targets": {}}', "expected"),
        ("[]", "expected"),
        ('{"version": 1,\n "targets": {', ":2:14: not JSON"),
        ("\udcff", "not UTF-8"),
    ],
)
def test_a_bad_state_file_is_a_clear_error(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / PUSHED_FILE
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ProvisionError) as raised:
        read_pushed(path)
    assert str(raised.value).startswith(f"{path}") and says in str(raised.value) and "remove it" in str(raised.value)


def test_a_huge_state_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / PUSHED_FILE
    path.write_bytes(b" " * (5 << 20))
    with pytest.raises(ProvisionError, match="over"):
        read_pushed(path)


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
ZONE = st.lists(LABEL, min_size=1, max_size=4).map(".".join)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True), st.lists(ZONE, max_size=5), max_size=4))
def test_what_is_written_is_read_back(tmp_path_factory: pytest.TempPathFactory, pushed_map: dict[str, list[str]]) -> None:
    path = tmp_path_factory.mktemp("state") / PUSHED_FILE
    write_pushed(path, pushed_map)
    assert read_pushed(path) == {t: sorted(set(z)) for t, z in pushed_map.items() if z}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_give_a_map_or_a_provision_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("state") / PUSHED_FILE
    path.write_bytes(data)
    try:
        found = read_pushed(path)
    except ProvisionError:
        return
    assert all(isinstance(z, str) and "/" not in z and ".." not in z for zones in found.values() for z in zones)


def test_a_domain_moved_to_another_target_is_published_there_and_withdrawn_here_with_force(pushed: Pushed, tmp_path: Path) -> None:
    """Two providers: the zone is created at the new one at once; the old one keeps ours until
    --force (the delegation may still point there during a move)."""
    from tests.dns.knot import KEY_NAME, knot_server

    second = knot_server(tmp_path / "knot2", {IDN: ""}, address="127.0.0.165")
    try:
        assert pushed.push().returncode == 0
        add_foreign(pushed, IDN)
        site = pushed.site.read_text()
        site = site.replace("domains:\n  acme.example:\n", "domains:\n  acme.example:\n    dns: knot\n", 1)
        site = site.replace("  legacy.acme.example:\n", "  legacy.acme.example:\n    dns: knot\n", 1).replace("  例え.jp:\n", "  例え.jp:\n    dns: knot2\n", 1)
        site = site.replace(
            "  reverse: knot\n",
            "    knot2:\n      class: octodns_bind.Rfc2136Provider\n"
            f"      host: {second.address}\n      port: {second.port}\n"
            f"      key_name: {KEY_NAME}\n      key_secret: {{env: TSIG_SECRET2}}\n      key_algorithm: hmac-sha256\n  reverse: knot\n",
        )
        pushed.site.write_text(site)
        env = {"TSIG_SECRET2": second.secret}
        plan = pushed.push("--dry-run", env=env)
        assert plan.returncode == 2, plan.stdout + plan.stderr
        assert f"zone {IDN} (target knot2): " in plan.stdout and f"zone {IDN} (target knot): " in plan.stdout
        assert "withdrawn: domain now pushed to target knot2; push needs --force" in plan.stdout
        held = pushed.push(env=env)
        assert held.returncode == 1 and f"zone {IDN} (target knot)" in held.stdout, held.stdout + held.stderr
        assert second.query(IDN, "MX") == pushed.knot.query(IDN, "MX") != []  # served by both during the move
        assert pushed.push("--force", env=env).returncode == 0
        ours_gone(pushed, IDN)
        theirs_intact(pushed, IDN)
        assert second.query(IDN, "MX") != [] and second.txt(f"_provision.{IDN}") != []
        assert read_pushed(pushed.site.parent / "state" / PUSHED_FILE)["knot2"] == [IDN] and IDN not in remembered(pushed)
        assert pushed.push("--dry-run", env=env).returncode == 0
        foreign_intact(pushed.knot)
    finally:
        second.stop()
