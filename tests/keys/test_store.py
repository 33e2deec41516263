"""DKIM key store: two selectors from day one, rotation, retirement, names never reused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key

from provisioner.keys.store import RETIRED_DAYS, KeyStatus, ensure_keys, load_state, rotate
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY


def statuses(state: Path, domain: str) -> list[tuple[str, str]]:
    return [(g.name, g.status.value) for g in load_state(state).domains[domain]]


def test_active_and_standby_from_day_one(tmp_path: Path) -> None:
    site = load_site(EXAMPLES / "all-in-one/site.yaml").site
    ks, made = ensure_keys(site, tmp_path, today=FIXED_DAY, workers=1)
    assert made == 2
    assert statuses(tmp_path, "smallco.example") == [("s202611a", "active"), ("s202611b", "standby")]
    key = load_pem_private_key(ks.signing_keys("smallco.example")[0].path.read_bytes(), None)
    assert key.key_size == 2048  # type: ignore[union-attr]
    assert "standby" in (tmp_path / "dkim.yaml").read_text()  # human-readable state


def test_rotation_walks_active_retired_withdrawn(tmp_path: Path) -> None:
    site = load_site(EXAMPLES / "all-in-one/site.yaml").site
    ensure_keys(site, tmp_path, today=FIXED_DAY, workers=1)
    standby_key = (tmp_path / "dkim/smallco.example/s202611b.pem").read_bytes()
    rotate(site, tmp_path, ["smallco.example"], today=FIXED_DAY + dt.timedelta(days=3))
    assert statuses(tmp_path, "smallco.example") == [("s202611a", "retired"), ("s202611b", "active"), ("s202611c", "standby")]
    # the standby key was pre-published: it becomes active unchanged
    assert (tmp_path / "dkim/smallco.example/s202611b.pem").read_bytes() == standby_key
    later = FIXED_DAY + dt.timedelta(days=3 + RETIRED_DAYS)
    ensure_keys(site, tmp_path, today=later, workers=1)
    assert statuses(tmp_path, "smallco.example")[0] == ("s202611a", KeyStatus.WITHDRAWN.value)
    assert not (tmp_path / "dkim/smallco.example/s202611a.pem").exists()
    # next month, names continue and never come back
    rotate(site, tmp_path, ["smallco.example"], today=dt.date(2026, 12, 2))
    names = [n for n, _ in statuses(tmp_path, "smallco.example")]
    assert names == ["s202611a", "s202611b", "s202611c", "s202612a"]
    assert len(set(names)) == len(names)
