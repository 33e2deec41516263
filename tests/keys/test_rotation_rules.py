"""Rotation refuses a standby younger than the publication grace (unless forced), says what to
publish, keep, revoke and remove with dates, and a failed run leaves no new key behind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.dns.records import REVOKED_DKIM, dkim_value, site_records
from provisioner.dns.rotation import rotation_report
from provisioner.errors import ProvisionError
from provisioner.keys.store import (
    PUBLISH_GRACE_DAYS,
    RETIRED_DAYS,
    WITHDRAWN_DAYS,
    KeyStatus,
    ensure_keys,
    keys_undone_on_failure,
    load_state,
    rotate,
)
from provisioner.site.model import Site
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY

DOMAIN = "smallco.example"


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(EXAMPLES / "all-in-one/site.yaml").site


def _files(state: Path) -> dict[str, bytes]:
    return {str(p.relative_to(state)): p.read_bytes() for p in sorted(state.rglob("*")) if p.is_file()}


@settings(max_examples=25, deadline=None)
@given(age=st.integers(min_value=0, max_value=PUBLISH_GRACE_DAYS + 3))
def test_rotation_to_a_young_standby_is_refused_and_changes_nothing(site: Site, tmp_path_factory: pytest.TempPathFactory, age: int) -> None:
    state = tmp_path_factory.mktemp("state")
    ensure_keys(site, state, today=FIXED_DAY, workers=1)
    before = _files(state)
    day = FIXED_DAY + dt.timedelta(days=age)
    if age < PUBLISH_GRACE_DAYS:
        with pytest.raises(ProvisionError, match=rf"standby s202611b was made on 2026-11-01.*rotate on or after 2026-11-0{1 + PUBLISH_GRACE_DAYS}; --force"):
            rotate(site, state, [DOMAIN], today=day)
        assert _files(state) == before  # nothing rotated, no key made
        rotate(site, state, [DOMAIN], today=day, force=True)  # the author knows it is published
    else:
        rotate(site, state, [DOMAIN], today=day)
    gens = {g.name: g.status for g in load_state(state).domains[DOMAIN]}
    assert gens == {"s202611a": KeyStatus.RETIRED, "s202611b": KeyStatus.ACTIVE, "s202611c": KeyStatus.STANDBY}


def test_three_rotations_in_a_minute_stop_at_the_second(site: Site, tmp_path: Path) -> None:
    ensure_keys(site, tmp_path, today=FIXED_DAY, workers=1)
    day = FIXED_DAY + dt.timedelta(days=10)
    rotate(site, tmp_path, [DOMAIN], today=day)  # s202611b was published for 10 days
    with pytest.raises(ProvisionError, match=r"s202611c was made on 2026-11-11"):
        rotate(site, tmp_path, [DOMAIN], today=day)  # s202611c was made a moment ago
    later = day + dt.timedelta(days=PUBLISH_GRACE_DAYS)
    rotate(site, tmp_path, [DOMAIN], today=later)


def test_the_report_names_every_record_to_publish_keep_revoke_and_remove_with_dates(site: Site, tmp_path: Path) -> None:
    ks, _ = ensure_keys(site, tmp_path, today=FIXED_DAY, workers=1)
    rotate(site, tmp_path, [DOMAIN], today=dt.date(2026, 11, 5))
    ensure_keys(site, tmp_path, today=dt.date(2026, 11, 5) + dt.timedelta(days=RETIRED_DAYS), workers=1)  # s202611a withdrawn
    today = dt.date(2026, 11, 25)
    ks = rotate(site, tmp_path, [DOMAIN], today=today)
    lines = rotation_report(ks, DOMAIN, today)
    text = "\n".join(lines)
    assert lines[0] == f"{DOMAIN}:"
    assert "signing now with s202611c: its record was published as the standby; keep it" in text
    standby = ks.keys(DOMAIN, (KeyStatus.STANDBY,))[0]
    assert standby.selector == "s202611d"
    ready = (today + dt.timedelta(days=PUBLISH_GRACE_DAYS)).isoformat()
    assert f"publish now (the new standby, not signing; the next rotation is allowed from {ready}):" in text
    assert f"    s202611d._domainkey.{DOMAIN} TXT {dkim_value(ks, standby)}" in lines  # the value whole
    # s202611b retired today: kept 14 days, then revoked 30 days, then removed
    keep = (today + dt.timedelta(days=RETIRED_DAYS)).isoformat()
    gone = (today + dt.timedelta(days=RETIRED_DAYS + WITHDRAWN_DAYS)).isoformat()
    assert f'  keep until {keep} (retired {today}: mail signed before may still be verified), then publish it revoked (TXT "{REVOKED_DKIM}") until {gone}, then remove it:' in lines
    assert f"    s202611b._domainkey.{DOMAIN}" in lines
    # s202611a withdrawn on 2026-11-19: revoked until 2026-12-19
    assert f'  publish revoked (TXT "{REVOKED_DKIM}") until 2026-12-19, then remove it:' in lines
    assert f"    s202611a._domainkey.{DOMAIN} TXT {REVOKED_DKIM}" in lines
    # Every DKIM record the DNS list holds for the domain is named in the report, and nothing else.
    dkim = {r.name for r in site_records(site, ks, today=today).records if "._domainkey." in r.name}
    named = {line.split()[0] for line in lines if line.startswith("    ")}
    assert named | {f"s202611c._domainkey.{DOMAIN}"} == dkim  # the active one is on the "signing now" line


def test_a_failed_block_removes_the_keys_it_made_and_restores_the_state_file(site: Site, tmp_path: Path) -> None:
    ensure_keys(site, tmp_path, today=FIXED_DAY, workers=1)
    before = _files(tmp_path)
    bigger = site.model_copy(update={"domains": {**site.domains, "new.example": site.domains[DOMAIN]}})
    with pytest.raises(RuntimeError, match="render failed"), keys_undone_on_failure(tmp_path) as made:
        ensure_keys(bigger, tmp_path, today=FIXED_DAY, workers=1, made=made)
        assert len(made) == 2 and (tmp_path / "dkim/new.example").is_dir()
        raise RuntimeError("render failed")
    assert _files(tmp_path) == before
    assert not (tmp_path / "dkim/new.example").exists()


def test_a_failed_first_run_leaves_no_state_file(site: Site, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with pytest.raises(ProvisionError), keys_undone_on_failure(state) as made:
        ensure_keys(site, state, today=FIXED_DAY, workers=1, made=made)
        raise ProvisionError("no")
    assert not state.exists() or _files(state) == {}
