"""`provision plan` and `provision apply` as one call each: render into the build directory (the
same build either way, so what was planned is what is applied), then plan, ask, apply.

The question is the caller's (`confirm` gets the plan and says yes or no); everything else, the
order of the steps and when to stop, is decided here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.apply.plan import ApplyResult, PlanResult, TaskListener, apply, plan
from provisioner.build import Build, build

if TYPE_CHECKING:
    from provisioner.dns.push import PushResult


@dataclass(frozen=True)
class ApplyOutcome:
    built: Build
    planned: PlanResult | None  # None with --yes: applied without a plan shown
    result: ApplyResult | None  # None when nothing was applied (see `why`)
    why: str = ""  # "plan failed" | "nothing to change" | "not confirmed" when result is None
    dns_planned: PushResult | None = None  # the DNS part of the plan (sites with dns.targets)
    dns: list[PushResult] = field(default_factory=list)  # what was pushed: additions first, then (after the hosts) removals


@dataclass(frozen=True)
class Target:
    """What plan and apply work on: the site, where it is rendered, and which hosts."""

    site: Path
    build_dir: Path
    state: Path | None
    env: Mapping[str, str]  # for the site's {env:} secrets
    vault_password: bytes | None = None
    inventory: Path | None = None
    limit: str | None = None
    serial: int | None = None  # apply only: the MX hosts this many at a time (plan ignores it)

    def render(self, key_progress: Callable[[int, int], None] | None, built: Callable[[Build], None] | None) -> Build:
        """The build plan and apply both start from; `built(build)` is told when it is written
        (the caller ends its key progress display there: the rest takes Ansible's time)."""
        done = build(self.site, self.build_dir, self.state, self.env, self.vault_password, progress=key_progress)
        if built is not None:
            built(done)
        return done


def plan_command(target: Target, key_progress: Callable[[int, int], None] | None = None, built: Callable[[Build], None] | None = None) -> PlanResult:
    """Render, then plan (Ansible check mode)."""
    target.render(key_progress, built)
    return plan(target.site, target.build_dir, target.inventory, target.limit)


def _dns(target: Target, done: Build | None, dry_run: bool, withhold_removals: bool = False) -> PushResult | None:
    """The DNS step of plan and apply for a site with dns.targets (docs/dns-push.md), else None."""
    if not isinstance(done, Build) or not done.loaded.site.dns.targets:
        return None
    from provisioner.dns.push import push_loaded

    return push_loaded(done.loaded, target.state, target.vault_password, target.env, dry_run=dry_run, withhold_removals=withhold_removals)


def plan_all(
    target: Target, key_progress: Callable[[int, int], None] | None = None, built: Callable[[Build], None] | None = None
) -> tuple[PlanResult, PushResult | None]:
    """`provision plan`: render, then the hosts' plan (Ansible check mode) and the DNS plan (what
    a push would change at each target; None without dns.targets)."""
    done = target.render(key_progress, built)
    return plan(target.site, target.build_dir, target.inventory, target.limit), _dns(target, done, dry_run=True)


def apply_command(
    target: Target,
    confirm: Callable[[PlanResult], bool] | None = None,
    listener: TaskListener | None = None,
    key_progress: Callable[[int, int], None] | None = None,
    built: Callable[[Build], None] | None = None,
    show_dns: Callable[[PushResult], None] | None = None,
) -> ApplyOutcome:
    """Render, then (with `confirm`) plan and ask, then apply. Without `confirm` (--yes) it
    applies straight away. A plan that fails, or changes nothing, is not followed by an apply.

    With dns.targets the order is safe for mail: records are added and changed first (a new
    DKIM standby or MX is in DNS before a host uses it), then the hosts, then withdrawn records
    are removed (an old key only after no host signs with it). `show_dns` sees the DNS plan
    before `confirm` is asked."""
    done = target.render(key_progress, built)
    planned = dns_planned = None
    if confirm is not None:
        planned = plan(target.site, target.build_dir, target.inventory, target.limit)
        dns_planned = _dns(target, done, dry_run=True)
        if dns_planned is not None and show_dns is not None:
            show_dns(dns_planned)
        if planned.exit_code == 1:
            return ApplyOutcome(done, planned, None, "plan failed", dns_planned)
        if planned.exit_code == 0 and (dns_planned is None or not dns_planned.changed):
            return ApplyOutcome(done, planned, None, "nothing to change", dns_planned)
        if not confirm(planned):
            return ApplyOutcome(done, planned, None, "not confirmed", dns_planned)
    pushed = [p for p in [_dns(target, done, dry_run=False, withhold_removals=True)] if p is not None]
    result = apply(target.site, target.build_dir, target.inventory, target.limit, progress=listener, serial=target.serial)
    if pushed and result.exit_code == 0:
        pushed += [p for p in [_dns(target, done, dry_run=False)] if p is not None]
    return ApplyOutcome(done, planned, result, dns_planned=dns_planned, dns=pushed)
