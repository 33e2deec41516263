"""Push the site's records to its DNS providers through octoDNS (docs/dns-push.md).

octoDNS is the engine: its Manager reads our records (formats.octodns_zone, in a temporary
config directory), asks the site's provider what it serves, plans, checks its safety thresholds
and applies. What we add is ownership by VALUE (ValueOwnership below): octoDNS's own
OwnershipProcessor owns whole record sets (a name and a type), and the apex TXT set is shared
by our SPF and others' site verifications; it would delete theirs. Secrets reach the provider
through an in-memory octoDNS secret handler: never in the config file, the environment or a
message.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provisioner.dns.formats import octodns_zone
from provisioner.dns.records import RecordSet
from provisioner.errors import ProvisionError
from provisioner.secrets import resolve
from provisioner.site.model import Site
from provisioner.site.types import SecretRef
from provisioner.site.validate import Issue, LoadedSite, raise_issues

OWNER_PREFIX = "_provision"  # the ownership marker: one TXT set per zone, at _provision.<zone>
OWNER_TAG = "provision-owned"  # one of the marker's values; the others are h=<hash> of each value we wrote
MARKER_TTL = 3600
WORKERS = 8  # zones planned at once (octoDNS manager.max_workers): each waits on a zone transfer
SOURCE = "_provision_records"  # octoDNS provider id of our records (a target name is [a-z0-9-]+)
_OUTPUT = "provision"
_OWNER = "provision-owner"
PUSHED_FILE = "dns-pushed.json"  # in the state directory: target -> the zones push published there
PUSHED_LIMIT = 4 << 20  # bytes; the file of a 10,000-domain site is ~300 KiB
_ZONE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*")  # an A-label zone (RFC 1035 2.3.1)
_TARGET = re.compile(r"[a-z0-9-]{1,63}")


# ---------------------------------------------------------------------------- which zones go where


def pushed_zones(site: Site, rs: RecordSet) -> dict[str, str]:
    """zone -> dns.targets name, for every zone of `rs` that is pushed (the rest are entered by hand)."""
    zones: dict[str, str] = {}
    for zone in rs.zones():
        records = rs.in_zone(zone)
        if zone in site.domains:
            target = site.dns_target(zone)
        elif records and all(r.at_provider for r in records):  # a reverse zone (PTR)
            target = site.dns.reverse
        else:
            target = None  # a host's zone outside the site's domains: not ours to push
        if target is not None:
            zones[zone] = target
    return zones


# ---------------------------------------------------------------------------- zones we published before


def read_pushed(path: Path) -> dict[str, list[str]]:
    """target -> zones, as the last push left it in `path` ({} when there is no file). The file
    is ours, but it is read as any input: bounded, every name checked (a zone becomes a file name)."""
    hint = "fix it or remove it (push then forgets which zones it published before; docs/dns-push.md#removed-domains)"
    try:
        with path.open("rb") as handle:
            data = handle.read(PUSHED_LIMIT + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ProvisionError(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) > PUSHED_LIMIT:
        raise ProvisionError(f"{path}: over {PUSHED_LIMIT} bytes; {hint}")
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProvisionError(f"{path}: not UTF-8; {hint}") from None
    except json.JSONDecodeError as exc:
        raise ProvisionError(f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}); {hint}") from None
    targets = doc.get("targets") if isinstance(doc, dict) and doc.get("version") == 1 else None
    if not isinstance(targets, dict):
        raise ProvisionError(f'{path}: expected {{"version": 1, "targets": {{TARGET: [ZONE, ...]}}}}; {hint}')
    out: dict[str, list[str]] = {}
    for target, zones in targets.items():
        if not _TARGET.fullmatch(target) or not isinstance(zones, list):
            raise ProvisionError(f"{path}: targets.{target!r}: not a target name with a list of zones; {hint}")
        for zone in zones:
            if not isinstance(zone, str) or len(zone) > 253 or not _ZONE.fullmatch(zone):
                raise ProvisionError(f"{path}: targets.{target}: {zone!r} is not a zone name; {hint}")
        out[target] = sorted(set(zones))
    return out


def write_pushed(path: Path, pushed: Mapping[str, list[str] | set[str]]) -> None:
    """Replace `path` whole (atomic_write): names only, never a secret, so 0644 like dkim.yaml."""
    from provisioner.files import atomic_write
    from provisioner.keys.store import STATE_DIR_MODE

    body = {"version": 1, "targets": {t: sorted(z) for t, z in sorted(pushed.items()) if z}}
    atomic_write(path, json.dumps(body, indent=2, sort_keys=True) + "\n", 0o644, STATE_DIR_MODE)


@dataclass(frozen=True)
class Withdrawal:
    """A zone push published to `target` before and no longer does: our values there go."""

    zone: str
    target: str
    reason: str
    clear: bool  # the site removed what the records were for; else (a move, `manual`) only with --force


def withdrawals(site: Site, rs: RecordSet, zones: Mapping[str, str], before: Mapping[str, list[str]]) -> list[Withdrawal]:
    """The zones of `before` (the state file) that are no longer published to their target, with
    why. Targets no longer declared are not reachable: their zones are left (and kept in the file)."""
    out = []
    for target, names in sorted(before.items()):
        if target not in site.dns.targets:
            continue
        for zone in names:
            if zones.get(zone) == target:
                continue
            now = zones.get(zone)
            if zone in site.domains:
                reason = f"domain now pushed to target {now}" if now else "domain now entered by hand (manual)"
                out.append(Withdrawal(zone, target, reason, clear=False))
            elif zone.endswith((".in-addr.arpa", ".ip6.arpa")) and zone not in rs.zones() and site.dns.reverse == target:
                out.append(Withdrawal(zone, target, "no host address left in this reverse zone", clear=True))
            elif zone.endswith((".in-addr.arpa", ".ip6.arpa")):
                reason = f"reverse zones now pushed to target {now}" if now else "reverse zones no longer pushed (dns.reverse)"
                out.append(Withdrawal(zone, target, reason, clear=False))
            else:
                out.append(Withdrawal(zone, target, "domain no longer in the site", clear=True))
    return out


# ---------------------------------------------------------------------------- the plan we report


@dataclass(frozen=True)
class RecordChange:
    action: str  # create | update | delete
    name: str  # absolute owner name, A-label, no trailing dot
    type: str
    old: tuple[str, ...]  # values before (empty for create), presentation form
    new: tuple[str, ...]  # values after (empty for delete)
    ttl: tuple[int | None, int | None] = (None, None)


@dataclass(frozen=True)
class ZonePlan:
    zone: str
    target: str
    changes: list[RecordChange]
    markers: int = 0  # ownership markers written or removed with them (not listed)
    withdrawn: str = ""  # why our values here go (a zone no longer published to this target), else ""


@dataclass(frozen=True)
class PushResult:
    zones: list[ZonePlan]  # zones with changes only
    pushed: list[str]  # every zone pushed (with or without changes)
    manual: list[str]  # zones entered by hand (the sheet)
    dry_run: bool
    conflicts: list[str] = field(default_factory=list)  # others' records we left alone where ours would go
    held: list[str] = field(default_factory=list)  # withdrawals refused without --force (what stays, and why)

    @property
    def changed(self) -> bool:
        return bool(self.zones)

    @property
    def exit_code(self) -> int:
        """dns push --dry-run (and plan): 0 clean, 2 changes; a push that ran: 0, or 1 when it held
        back a withdrawal that needs --force."""
        return 2 if self.dry_run and self.changed else 1 if self.held and not self.dry_run else 0


# ---------------------------------------------------------------------------- octoDNS parts


def _value_text(value: Any) -> str:
    """A value as one string, the same whether it came from our YAML or the provider's answer."""
    if isinstance(value, str):  # A, AAAA, CNAME, PTR, TXT (octoDNS's form: `;` escaped)
        return str(value)
    to_text = getattr(value, "to_rdata_text", None)  # MX, SRV: their zone-file form
    return str(to_text() if callable(to_text) else value)


def _shown(rtype: str, value: Any) -> str:
    """A value as records.json has it: TXT without octoDNS's escaped semicolons."""
    text = _value_text(value)
    return text.replace("\\;", ";") if rtype == "TXT" else text


def _values(record: Any) -> list[Any]:
    return list(record.values) if hasattr(record, "values") else [record.value]


def value_hash(name: str, rtype: str, value: Any) -> str:
    """What the marker holds for one value we wrote: a hash of its name, type and value."""
    return "h=" + hashlib.sha256(f"{name} {rtype} {_value_text(value)}".encode()).hexdigest()[:20]


def _marked(record: Any) -> bool:
    """Whether `record` is our ownership marker (the zone's `_provision` TXT with our tag)."""
    return bool(record._type == "TXT" and record.name == OWNER_PREFIX and OWNER_TAG in record.values)  # octoDNS sorts values


def _octodns() -> Any:
    try:
        from octodns.processor.base import BaseProcessor
    except ImportError as exc:  # the dependency is declared; a broken install still gets a sentence
        raise ProvisionError(f"octoDNS is not installed ({exc.name}): pip install octodns octodns-bind") from None
    return BaseProcessor


class ValueOwnership(_octodns()):  # type: ignore[misc]
    """Ownership of each VALUE we wrote: one marker TXT set per zone (`_provision`) holds our tag
    and a hash of the name, type and value of each.

    Values we did not write are never removed or changed: an update keeps them beside ours, a
    delete removes only ours, a record set with no value of ours is not touched at all. (One
    marker per zone rather than octoDNS's one per record set: half the records to transfer and
    compare, docs/dns-push.md.)"""

    def process_source_zone(self, desired: Any, sources: Any, lenient: bool = False) -> Any:
        from octodns.record import Record

        if desired.name in self.withdrawn:  # nothing of ours stays: no marker either
            return desired
        hashes = {value_hash(r.name, r._type, v) for r in desired.records if not _marked(r) for v in _values(r)}
        marker = Record.new(desired, OWNER_PREFIX, {"type": "TXT", "ttl": MARKER_TTL, "values": [OWNER_TAG, *sorted(hashes)]}, lenient=True)
        desired.add_record(marker, lenient=True, replace=True)
        return desired

    def process_plan(self, plan: Any, sources: Any, target: Any, lenient: bool = False) -> Any:
        from octodns.provider.plan import Plan
        from octodns.record import Create, Delete, Record, Update

        if not plan:
            return plan
        owned: set[str] = set()
        for record in plan.existing.records:
            if _marked(record):
                owned = set(record.values) - {OWNER_TAG}
        changes = []
        for change in plan.changes:
            if _marked(change.record):  # our marker: always ours
                if self.withhold_removals and isinstance(change, Update):
                    # values whose removal waits stay ours until then (a stale hash names nothing)
                    values = sorted(set(change.existing.values) | set(change.new.values))
                    if values != sorted(change.existing.values):
                        changes.append(Update(change.existing, Record.new(plan.desired, OWNER_PREFIX, _data(change.new, values, MARKER_TTL), lenient=True)))
                elif not (self.withhold_removals and isinstance(change, Delete)):
                    changes.append(change)
                continue
            if isinstance(change, Create):
                changes.append(change)
                continue
            old = change.existing
            mine = [v for v in _values(old) if value_hash(old.name, old._type, v) in owned]
            foreign = [v for v in _values(old) if v not in mine]
            if isinstance(change, Delete):
                if not mine or self.withhold_removals:
                    continue  # never ours
                if foreign:
                    kept = Record.new(plan.desired, old.name, _data(old, foreign, old.ttl), lenient=True)
                    changes.append(Update(old, kept))
                else:
                    changes.append(change)
                continue
            new = change.new
            if not hasattr(new, "values"):  # one value (CNAME, ALIAS): ours replaces only ours
                if foreign:
                    self.conflicts.append(f"{old.fqdn.rstrip('.')} {old._type}: {_shown(old._type, old.value)} is not ours; left as it is")
                    continue
                changes.append(change)
                continue
            merged = list(new.values) + [v for v in foreign if v not in new.values]
            if sorted(map(_value_text, merged)) == sorted(map(_value_text, _values(old))) and new.ttl == old.ttl:
                continue
            changes.append(Update(old, Record.new(plan.desired, new.name, _data(new, merged, new.ttl), lenient=True)))
        if not changes:
            return None
        thresholds = (plan.update_pcent_threshold, plan.delete_pcent_threshold)
        if plan.desired.name in self.withdrawn:
            if not self.withdrawn[plan.desired.name] and self.hold:  # a move or `manual`: the records may still be wanted
                self.held[plan.desired.name.rstrip(".")] = sum(not _marked(c.record) for c in changes)
                return None
            # all of ours goes: octoDNS's percentages say nothing here. A removal from the site is
            # the intent; the other kinds are held above (push without --force) or shown (a plan).
            thresholds = (1.0, 1.0)
        return Plan(plan.existing, plan.desired, changes, plan.exists, *thresholds)

    def __init__(self, name: str, withhold_removals: bool = False, withdrawn: Mapping[str, bool] | None = None, hold: bool = False, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.conflicts: list[str] = []
        # apply's first step: create and update record sets; withdrawn sets are deleted after the hosts
        self.withhold_removals = withhold_removals
        # zones (with the dot) published here before and no longer -> whether the site clearly removed them
        self.withdrawn = dict(withdrawn or {})
        self.hold = hold  # a push without --force: a withdrawal that is not clear is held, not made
        self.held: dict[str, int] = {}  # zone -> record sets of ours it would have changed


def _data(record: Any, values: list[Any], ttl: int) -> dict[str, Any]:
    """A record's data for Record.new with other values (octoDNS values give their own data)."""
    return {"type": record._type, "ttl": ttl, "values": [v.data if hasattr(v, "data") else v for v in values]}


class PlanCapture:
    """An octoDNS plan output that keeps the plans (the Manager otherwise only logs them)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.plans: list[tuple[Any, Any]] = []

    def run(self, plans: list[tuple[Any, Any]], *args: Any, **kwargs: Any) -> None:
        self.plans = list(plans)


_VAULT: dict[str, Any] = {}  # token -> resolved secret, only while a push runs
_VAULT_LOCK = threading.Lock()


class SecretVault:
    """An octoDNS secret handler (`provision/<token>`) serving the secrets we resolved, from memory."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fetch(self, name: str, source: Any) -> Any:
        return _VAULT[name]


@contextmanager
def _quiet() -> Iterator[None]:
    """octoDNS logs as it works; nothing below the CLI prints, and a log line may carry a value."""
    before = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(before)


# ---------------------------------------------------------------------------- config


def _provider_options(loaded: LoadedSite, target: str, env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The target's options for octoDNS with each secret put in the vault (the config names its
    token), and the secret values (to scrub from messages)."""
    options: dict[str, Any] = {}
    secrets: list[str] = []
    issues: list[Issue] = []
    for option, value in loaded.site.dns.targets[target].items():
        if isinstance(value, SecretRef):
            resolved, issue = resolve(value, loaded.base_dir, env, ("dns", "targets", target, option))
            if issue is not None:
                issues.append(issue)
                continue
            assert resolved is not None
            token = f"{target}.{option}"
            _VAULT[token] = resolved
            secrets.append(resolved)
            options[option] = f"provision/{token}"
        else:
            options[option] = list(value) if isinstance(value, tuple) else value
    raise_issues(loaded, issues)
    return options, secrets


def _check_class(target: str, path: str) -> None:
    """The provider class imports (octoDNS's own message is a traceback's worth)."""
    module, _, name = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name, None)
    except Exception as exc:  # noqa: BLE001 - any import failure of the user's package is theirs to fix
        raise ProvisionError(f"dns target {target}: cannot import {module} ({type(exc).__name__}): install the provider's package, e.g. pip install octodns-bind") from None
    if found is None:
        raise ProvisionError(f"dns target {target}: {module} has no {name}: check dns.targets.{target}.class")


def write_config(
    directory: Path,
    rs: RecordSet,
    zones: Mapping[str, str],
    providers: Mapping[str, dict[str, Any]],
    withhold_removals: bool = False,
    withdrawn: Sequence[Withdrawal] = (),
    hold: bool = False,
) -> Path:
    """An octoDNS config directory: our zones as YamlProvider files, a config naming the targets.
    A withdrawn zone is an empty file: octoDNS plans the removal of all of it, ValueOwnership
    keeps what is not ours."""
    records = directory / "zones"
    records.mkdir(mode=0o700)
    for zone in zones:
        (records / f"{zone}.yaml").write_text(octodns_zone(rs, zone), encoding="utf-8")
    for gone in withdrawn:
        (records / f"{gone.zone}.yaml").write_text("--- {}\n", encoding="utf-8")
    options: dict[str, Any] = {"withhold_removals": True} if withhold_removals else {}
    if withdrawn:
        options |= {"withdrawn": {f"{w.zone}.": w.clear for w in withdrawn}, "hold": hold}
    every = {**zones, **{w.zone: w.target for w in withdrawn}}
    config = {
        "manager": {"max_workers": WORKERS, "plan_outputs": {_OUTPUT: {"class": f"{__name__}.PlanCapture"}}},
        "secret_handlers": {"provision": {"class": f"{__name__}.SecretVault"}},
        "providers": {
            SOURCE: {
                "class": "octodns.provider.yaml.YamlProvider",
                "directory": str(records),
                "enforce_order": False,
                "supports_root_ns": False,
                "escaped_semicolons": True,
            },
            **{name: dict(options) for name, options in sorted(providers.items())},
        },
        "processors": {_OWNER: {"class": f"{__name__}.ValueOwnership", **options}},
        "zones": {f"{zone}.": {"sources": [SOURCE], "targets": [target], "processors": [_OWNER]} for zone, target in sorted(every.items())},
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=True, allow_unicode=True), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- push


def _record_changes(plan: Any) -> tuple[list[RecordChange], int]:
    from octodns.record import Create, Delete

    out, markers = [], 0
    for change in plan.changes:
        record = change.record
        if _marked(record):
            markers += 1
            continue
        old = () if isinstance(change, Create) else tuple(_shown(record._type, v) for v in _values(change.existing))
        new = () if isinstance(change, Delete) else tuple(_shown(record._type, v) for v in _values(change.new))
        action = "create" if isinstance(change, Create) else "delete" if isinstance(change, Delete) else "update"
        ttl = (None if isinstance(change, Create) else change.existing.ttl, None if isinstance(change, Delete) else change.new.ttl)
        out.append(RecordChange(action, record.fqdn.rstrip("."), record._type, old, new, ttl))
    out.sort(key=lambda c: (c.name, c.type, c.action))
    return out, markers


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[secret]")
    return text


def push(
    loaded: LoadedSite,
    rs: RecordSet,
    env: Mapping[str, str],
    dry_run: bool = True,
    force: bool = False,
    withhold_removals: bool = False,
    state_dir: Path | None = None,
) -> PushResult:
    """Plan (dry_run) or push the pushed zones of `rs`, target by target. Refuses an unsafe plan
    (octoDNS's thresholds) without `force`; a provider's failure names the target.
    `withhold_removals`: add and change only (apply's first step; removals follow the hosts).
    `state_dir`: where PUSHED_FILE remembers the zones published to each target, so a zone no
    longer published there is visited and our values in it are withdrawn (docs/dns-push.md)."""
    zones = pushed_zones(loaded.site, rs)
    manual = [z for z in rs.zones() if z not in zones]
    memory = state_dir / PUSHED_FILE if state_dir is not None else None
    before = read_pushed(memory) if memory is not None else {}
    gone = [] if withhold_removals else withdrawals(loaded.site, rs, zones, before)
    targets = sorted(set(zones.values()) | {w.target for w in gone})
    if not targets:
        return PushResult([], [], manual, dry_run)
    from octodns.manager import Manager
    from octodns.provider.plan import UnsafePlan

    published: dict[str, set[str]] = {t: set(z) for t, z in before.items()}
    for zone, target in zones.items():
        published.setdefault(target, set()).add(zone)
    if memory is not None and not dry_run and published != {t: set(z) for t, z in before.items()}:
        write_pushed(memory, published)  # before the first write: a push that stops halfway still remembers them
    plans: list[ZonePlan] = []
    conflicts: list[str] = []
    held: list[str] = []
    reasons = {(w.zone, w.target): w.reason + ("" if w.clear else "; push needs --force") for w in gone}
    with _VAULT_LOCK, tempfile.TemporaryDirectory(prefix="provision-push-") as tmp, _quiet():
        try:
            providers: dict[str, dict[str, Any]] = {}
            secrets: list[str] = []
            for target in targets:
                options, found = _provider_options(loaded, target, env)
                _check_class(target, str(options["class"]))
                providers[target], secrets = options, secrets + found
            for target in targets:
                (Path(tmp) / target).mkdir(mode=0o700)  # one config per target: a zone moved between two is in both
                mine = {z: t for z, t in zones.items() if t == target}
                leaving = [w for w in gone if w.target == target]
                config = write_config(Path(tmp) / target, rs, mine, {target: providers[target]}, withhold_removals, leaving, hold=not (dry_run or force))
                try:
                    manager = Manager(str(config))
                    manager.sync(eligible_targets=[target], dry_run=dry_run, force=force)
                except UnsafePlan as exc:
                    raise ProvisionError(
                        f"dns target {target}: {_scrub(str(exc), secrets)}: refused (octoDNS's safety threshold); review with --dry-run, then push with --force"
                    ) from None
                except Exception as exc:  # noqa: BLE001 - a provider's failure, whatever its class, is reported with the target's name
                    raise ProvisionError(f"dns target {target}: {type(exc).__name__}: {_scrub(str(exc), secrets) or 'failed'}") from None
                for _, plan in manager.plan_outputs[_OUTPUT].plans:
                    changes, markers = _record_changes(plan)
                    zone = plan.desired.name.rstrip(".")
                    plans.append(ZonePlan(zone, target, changes, markers, reasons.get((zone, target), "")))
                owner = manager.processors[_OWNER]
                conflicts += owner.conflicts
                held += [f"zone {z} (target {target}): {n} record set(s) of ours stay ({reasons[(z, target)]})" for z, n in sorted(owner.held.items())]
                if not dry_run and not withhold_removals:  # withdrawn zones are done, except those held back
                    published[target] = set(mine) | {w.zone for w in leaving if w.zone in owner.held}
        finally:
            _VAULT.clear()
    if memory is not None and not dry_run:
        write_pushed(memory, published)
    plans.sort(key=lambda p: (p.zone, p.target))
    visited = sorted(set(zones) | {w.zone for w in gone})
    return PushResult(plans, visited, manual, dry_run, sorted(set(conflicts)), held)


def push_command(
    site_path: Path,
    state: Path | None,
    vault_password: bytes | None,
    env: Mapping[str, str],
    dry_run: bool = False,
    force: bool = False,
) -> PushResult:
    """`provision dns push`: the records of every pushed zone to its dns.targets provider, or with
    `dry_run` only the plan. Missing DKIM keys are made first (their public keys are records)."""
    from provisioner.site.validate import load_site

    loaded = load_site(site_path)
    if not loaded.site.dns.targets:
        raise ProvisionError(f"{site_path}: no dns.targets declared, nothing to push (docs/dns-push.md)")
    return push_loaded(loaded, state, vault_password, env, dry_run=dry_run, force=force)


def push_loaded(
    loaded: LoadedSite,
    state: Path | None,
    vault_password: bytes | None,
    env: Mapping[str, str],
    dry_run: bool = False,
    force: bool = False,
    withhold_removals: bool = False,
) -> PushResult:
    """push() for a loaded site: its records from the key state (plan and apply call this after render)."""
    from provisioner.dns.records import site_records
    from provisioner.keys.store import ensure_keys, state_dir_for

    ks, _ = ensure_keys(loaded.site, state_dir_for(loaded.path, state), vault_password=vault_password)
    return push(
        loaded, site_records(loaded.site, ks), env, dry_run=dry_run, force=force, withhold_removals=withhold_removals, state_dir=state_dir_for(loaded.path, state)
    )


# ---------------------------------------------------------------------------- reports

SHOWN_VALUE = 100  # a longer value is cut in text (JSON has it whole)


def _cut(value: str) -> str:
    return value if len(value) <= SHOWN_VALUE else f"{value[: SHOWN_VALUE - 20]}... ({len(value)} characters)"


def change_lines(change: RecordChange, esc: Callable[[str], str] = str) -> list[str]:
    """One change as text lines: `+ NAME TYPE VALUE`, `- ...`, `~ NAME TYPE OLD -> NEW`; `esc`
    quotes the name and each value (others' data) for where the lines go."""
    head = f"{esc(change.name)} {change.type}"

    def _short(value: str) -> str:
        return esc(_cut(value))

    if change.action == "create":
        return [f"  + {head} {_short(v)}" for v in change.new]
    if change.action == "delete":
        return [f"  - {head} {_short(v)}" for v in change.old]
    removed = [v for v in change.old if v not in change.new]
    added = [v for v in change.new if v not in change.old]
    lines = [f"  ~ {head} {_short(a)} -> {_short(b)}" for a, b in zip(removed, added, strict=False)]
    lines += [f"  ~ {head} + {_short(v)}" for v in added[len(removed) :]]
    lines += [f"  ~ {head} - {_short(v)}" for v in removed[len(added) :]]
    if not lines and change.ttl[0] != change.ttl[1]:
        lines.append(f"  ~ {head} TTL {change.ttl[0]} -> {change.ttl[1]}")
    return lines


def push_lines(result: PushResult) -> list[str]:
    """The per-zone plan (or what was pushed) as text; callers escape each line (textsafe)."""
    verb = "would change" if result.dry_run else "changed"
    lines: list[str] = []
    for plan in result.zones:
        counts = {a: sum(c.action == a for c in plan.changes) for a in ("create", "update", "delete")}
        lines.append(
            f"zone {plan.zone} (target {plan.target}): {counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete"
            + (f", {plan.markers} ownership marker(s)" if plan.markers else "")
            + (f"; withdrawn: {plan.withdrawn}" if plan.withdrawn else "")
        )
        for change in plan.changes:
            lines += change_lines(change)
    for conflict in result.conflicts:
        lines.append(f"not ours, left alone: {conflict}")
    for kept in result.held:
        lines.append(f"held, not withdrawn without --force: {kept}")
    clean = len(set(result.pushed) - {p.zone for p in result.zones})
    lines.append(f"DNS: {len(result.zones)} zone(s) {verb}, {clean} already as declared" + (f"; {len(result.manual)} zone(s) entered by hand (the sheet)" if result.manual else ""))
    return lines


def push_json(result: PushResult) -> dict[str, Any]:
    return {
        "dry_run": result.dry_run,
        "changed": result.changed,
        "exit_code": result.exit_code,
        "pushed": result.pushed,
        "manual": result.manual,
        "conflicts": result.conflicts,
        "held": result.held,
        "zones": [
            {
                "zone": p.zone,
                "target": p.target,
                "markers": p.markers,
                "withdrawn": p.withdrawn,
                "changes": [{"action": c.action, "name": c.name, "type": c.type, "old": list(c.old), "new": list(c.new), "ttl": list(c.ttl)} for c in p.changes],
            }
            for p in result.zones
        ],
    }
