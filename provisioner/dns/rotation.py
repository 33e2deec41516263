"""What a DKIM rotation asks of the person who keeps DNS: which records to publish now, which to
keep until when, which to revoke and remove, with dates (docs/keys.md, "Selectors and rotation").

The dates follow the key state's rules (provisioner.keys.store): a retired generation stays
published RETIRED_DAYS, then is published revoked for WITHDRAWN_DAYS, then removed; a standby can
be rotated to PUBLISH_GRACE_DAYS after it was made. Lines of text for the command line, in the
order a person acts on them; values whole (a DNS panel takes the value as one string).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from provisioner.dns.authoritative import Served, ServerAnswer
from provisioner.dns.records import REVOKED_DKIM, dkim_value
from provisioner.errors import ProvisionError
from provisioner.files import atomic_write
from provisioner.keys.store import RETIRED_DAYS, STATE_DIR_MODE, WITHDRAWN_DAYS, DkimKey, KeyState, KeyStatus, standby_ready
from provisioner.mailauth.grammar import DkimRecord, parse_dkim


def _day(since: str, days: int) -> str:
    return (dt.date.fromisoformat(since) + dt.timedelta(days=days)).isoformat()


def rotation_report(keys: KeyState, domain: str, today: dt.date) -> list[str]:
    """The DNS work for `domain` after a rotation on `today`, one instruction or record a line."""
    gens = keys.domains.get(domain, [])
    lines = [f"{domain}:"]
    signing = ", ".join(k.selector for k in keys.signing_keys(domain))
    lines.append(f"  signing now with {signing}: its record was published as the standby; keep it")
    standby = keys.keys(domain, (KeyStatus.STANDBY,))
    if standby:
        ready = min(standby_ready(g) for g in gens if g.status is KeyStatus.STANDBY).isoformat()
        lines.append(f"  publish now (the new standby, not signing; the next rotation is allowed from {ready}):")
        lines += [f"    {k.selector}._domainkey.{domain} TXT {dkim_value(keys, k)}" for k in standby]
    for gen in gens:
        names = [f"{gen.selector(a)}._domainkey.{domain}" for a in sorted(gen.algorithms)]
        if gen.status is KeyStatus.RETIRED:
            until = _day(gen.since, RETIRED_DAYS)
            lines.append(
                f"  keep until {until} (retired {gen.since}: mail signed before may still be verified), "
                f'then publish it revoked (TXT "{REVOKED_DKIM}") until {_day(until, WITHDRAWN_DAYS)}, then remove it:'
            )
            lines += [f"    {name}" for name in names]
        elif gen.status is KeyStatus.WITHDRAWN:
            age = (today - dt.date.fromisoformat(gen.since)).days
            if age < WITHDRAWN_DAYS:
                lines.append(f'  publish revoked (TXT "{REVOKED_DKIM}") until {_day(gen.since, WITHDRAWN_DAYS)}, then remove it:')
                lines += [f"    {name} TXT {REVOKED_DKIM}" for name in names]
            elif age < 2 * WITHDRAWN_DAYS:  # recently expired: say so once more, then forget it
                lines.append(f"  remove (revoked since {gen.since}, no longer listed):")
                lines += [f"    {name}" for name in names]
    lines.append("  then: provision render (build/dns/ holds every record) and provision apply")
    return lines


# ---------------------------------------------------------------------------- the DNS gate
#
# `keys --rotate` signs with the standby only when every authoritative server of its zone has
# served exactly the standby's public key for at least the record's TTL + GRACE: before that a
# verifier may get no key (not yet published, or a secondary that lags) or, where an older value
# stood at the name, the old one from a cache (RFC 1035 §3.2.1: TTL is how long it may be cached).
# "Served since" is what this machine saw: the first time a rotation attempt found every server
# serving the key is kept in SERVED_FILE; any attempt that finds a server not serving it forgets it.

GRACE = dt.timedelta(hours=1)  # beyond the TTL: anycast nodes and hidden secondaries that lag
SERVED_FILE = "dkim-served.json"
SERVED_VERSION = 1
SHOWN_CHARS = 120  # of a foreign value in a message


class GateVerdict(StrEnum):
    READY = "ready"
    WAIT = "wait"  # served by every server, for less than TTL + grace
    NOT_SERVED = "not-served"  # some server has no record, or gives no authoritative answer
    DIFFERENT = "different-key"  # some server serves another key (or several) at the selector


@dataclass(frozen=True)
class GateResult:
    domain: str
    selector: str
    verdict: GateVerdict
    first_seen: dt.datetime | None  # every server served the key since then (None: not now)
    ready_at: dt.datetime | None
    ttl: int
    problems: tuple[str, ...]  # one per server that does not serve the key: "SERVER: what"


def _key_id(value: str) -> str:
    """A short fingerprint of a DKIM record's key (k= and p=), for the served-state file."""
    parsed = parse_dkim(value)
    key = f"{parsed.key_type}:{parsed.public_key}" if isinstance(parsed, DkimRecord) else value
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _shown(value: str) -> str:
    return repr(value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "...")


def served_as(ours: DkimRecord, answer: ServerAnswer) -> str:
    """What one server's answer is, against our key: "match", "absent", "no-answer" or "different: ..."."""
    if answer.outcome is Served.NO_ANSWER:
        return "no-answer"
    keys = [v for v in answer.values if "p=" in v or v.startswith("v=DKIM1")]
    if answer.outcome is Served.ABSENT or not keys:
        return "absent"
    if len(keys) > 1:  # RFC 6376 §3.6.2.2: several records at a selector make its key unusable
        return f"different: {len(keys)} DKIM records ({', '.join(_shown(k) for k in keys[:3])})"
    seen = parse_dkim(keys[0])
    if isinstance(seen, DkimRecord) and not seen.revoked and seen.key_type == ours.key_type and seen.key_bytes() == ours.key_bytes():
        return "match"
    return f"different: {_shown(keys[0])}"


def judge_standby(
    domain: str, selector: str, ours: str, answers: Sequence[ServerAnswer], first_seen: dt.datetime | None, now: dt.datetime, grace: dt.timedelta
) -> GateResult:
    """The gate's decision for one standby selector from every authoritative server's answer."""
    want = parse_dkim(ours)
    assert isinstance(want, DkimRecord)
    if not answers:
        return GateResult(domain, selector, GateVerdict.NOT_SERVED, None, None, 0, ("no authoritative server to ask",))
    verdicts = [(a, served_as(want, a)) for a in answers]
    different = tuple(f"{a.server} serves {v.removeprefix('different: ')}" for a, v in verdicts if v.startswith("different"))
    ttl = max(a.ttl for a in answers)
    if different:
        return GateResult(domain, selector, GateVerdict.DIFFERENT, None, None, ttl, different)
    missing = tuple(
        f"{a.server}: {'no record' if v == 'absent' else 'no authoritative answer'}{f' ({a.detail})' if a.detail else ''}" for a, v in verdicts if v != "match"
    )
    if missing:
        return GateResult(domain, selector, GateVerdict.NOT_SERVED, None, None, ttl, missing)
    since = first_seen if first_seen is not None and first_seen <= now else now
    ready = since + dt.timedelta(seconds=ttl) + grace
    return GateResult(domain, selector, GateVerdict.READY if now >= ready else GateVerdict.WAIT, since, ready, ttl, ())


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{seconds} s" if seconds or not (hours or minutes) else ""]
    return " ".join(p for p in parts if p)


def refusal(result: GateResult, grace: dt.timedelta, site: str) -> str:
    """Why rotating `result.domain` now is refused, when it will be possible, and what to run."""
    name = f"{result.selector}._domainkey.{result.domain}"
    again = f"provision keys {site} --rotate {result.domain}"
    if result.verdict is GateVerdict.DIFFERENT:
        return (
            f"{result.domain}: the standby selector {result.selector} is served with a different key than the state's standby "
            f"({'; '.join(result.problems)}): mail signed with the standby would fail DKIM. Replace the TXT record at {name} "
            f"with the one `provision dns {site}` shows (or `provision apply {site}` for a pushed domain), then run `{again}` again"
        )
    if result.verdict is GateVerdict.NOT_SERVED:
        return (
            f"{result.domain}: the standby selector {result.selector} is not yet served by every authoritative server "
            f"({'; '.join(result.problems)}). Publish it: `provision apply {site}` for a pushed domain, or enter the TXT record "
            f"at {name} that `provision dns {site}` shows; then run `{again}`: it records when every server serves it, and "
            f"rotation is possible the record's TTL + {_duration(grace)} later"
        )
    assert result.first_seen is not None and result.ready_at is not None
    return (
        f"{result.domain}: the standby selector {result.selector} is served by every authoritative server since "
        f"{_utc(result.first_seen)}; resolvers may still hold an older answer for its TTL ({_duration(dt.timedelta(seconds=result.ttl))}) "
        f"+ {_duration(grace)}. Rotation is possible from {_utc(result.ready_at)}: run `{again}` then"
    )


# ---------------------------------------------------------------------------- served since


def load_served(state_dir: Path) -> dict[str, dict[str, object]]:
    """SERVED_FILE: {DKIM name: {"key": fingerprint, "first_seen": ISO UTC, "ttl": s, "servers": [...]}}."""
    path = state_dir / SERVED_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ProvisionError(
            f"{path}: cannot read the record of when DNS served each standby ({exc}); delete the file: the next `keys --rotate` starts observing again"
        ) from None
    served = data.get("served") if isinstance(data, dict) else None
    if not isinstance(served, dict) or not all(isinstance(v, dict) for v in served.values()):
        raise ProvisionError(f'{path}: not a record of served standbys (no "served" mapping); delete the file: the next `keys --rotate` starts observing again')
    return served


def _first_seen(entry: dict[str, object] | None, key: str) -> dt.datetime | None:
    if not entry or entry.get("key") != key or not isinstance(entry.get("first_seen"), str):
        return None
    try:
        moment = dt.datetime.fromisoformat(str(entry["first_seen"]))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def save_served(state_dir: Path, served: dict[str, dict[str, object]]) -> None:
    body = {"version": SERVED_VERSION, "served": dict(sorted(served.items()))}
    atomic_write(state_dir / SERVED_FILE, json.dumps(body, indent=2, sort_keys=True) + "\n", 0o644, STATE_DIR_MODE)


Ask = Callable[[str], list[ServerAnswer]]  # a DKIM name -> every authoritative server's answer


def dns_gate(
    keys: KeyState,
    domains: Sequence[str],
    ask_for: Callable[[str], Ask],
    site: str,
    now: dt.datetime,
    grace: dt.timedelta = GRACE,
    concurrency: int = 16,
) -> list[GateResult]:
    """Ask about every standby selector of `domains` (`ask_for(domain)` gives the asker of that
    domain's zone), record when each was first served by every server (SERVED_FILE), and refuse
    with every domain's reason at once unless all are ready. Returns the results when all are."""
    standby: list[DkimKey] = [k for d in domains for k in keys.keys(d, (KeyStatus.STANDBY,))]
    askers = {d: ask_for(d) for d in domains}
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(standby) or 1))) as pool:
        answers = list(pool.map(lambda k: askers[k.domain](f"{k.selector}._domainkey.{k.domain}"), standby))
    served = load_served(keys.state_dir)
    before = json.dumps(served, sort_keys=True)
    results = []
    for key, seen in zip(standby, answers, strict=True):
        name = f"{key.selector}._domainkey.{key.domain}"
        ours = dkim_value(keys, key)
        fingerprint = _key_id(ours)
        result = judge_standby(key.domain, key.selector, ours, seen, _first_seen(served.get(name), fingerprint), now, grace)
        if result.first_seen is None:
            served.pop(name, None)
        else:
            served[name] = {
                "key": fingerprint,
                "first_seen": result.first_seen.astimezone(dt.UTC).isoformat(),
                "ttl": result.ttl,
                "servers": [a.server for a in seen],
            }
        results.append(result)
    current = {f"{k.selector}._domainkey.{k.domain}" for k in standby}
    for name in [n for n in served if n not in current and any(n.endswith(f"._domainkey.{d}") for d in domains)]:
        del served[name]  # no longer a standby (rotated to, or gone)
    if json.dumps(served, sort_keys=True) != before:
        save_served(keys.state_dir, served)
    refused = [r for r in results if r.verdict is not GateVerdict.READY]
    if refused:
        raise RotationRefused([refusal(r, grace, site) for r in refused])
    return results


class RotationRefused(ProvisionError):
    """The DNS gate's refusal: one reason a line (a domain's standby selector each)."""

    FORCE = "--force rotates anyway: only when you know every authoritative server serves the standby"

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join([*reasons, self.FORCE]))
