"""`provision plan` and `provision apply` as one call each: render into the build directory (the
same build either way, so what was planned is what is applied), then plan, ask, apply.

The question is the caller's (`confirm` gets the plan and says yes or no); everything else, the
order of the steps and when to stop, is decided here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from provisioner.apply.plan import ApplyResult, PlanResult, TaskListener, apply, plan
from provisioner.build import Build, build


@dataclass(frozen=True)
class ApplyOutcome:
    built: Build
    planned: PlanResult | None  # None with --yes: applied without a plan shown
    result: ApplyResult | None  # None when nothing was applied (see `why`)
    why: str = ""  # "plan failed" | "nothing to change" | "not confirmed" when result is None


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


def apply_command(
    target: Target,
    confirm: Callable[[PlanResult], bool] | None = None,
    listener: TaskListener | None = None,
    key_progress: Callable[[int, int], None] | None = None,
    built: Callable[[Build], None] | None = None,
) -> ApplyOutcome:
    """Render, then (with `confirm`) plan and ask, then apply. Without `confirm` (--yes) it
    applies straight away. A plan that fails, or changes nothing, is not followed by an apply."""
    done = target.render(key_progress, built)
    planned = None
    if confirm is not None:
        planned = plan(target.site, target.build_dir, target.inventory, target.limit)
        if planned.exit_code == 1:
            return ApplyOutcome(done, planned, None, "plan failed")
        if planned.exit_code == 0:
            return ApplyOutcome(done, planned, None, "nothing to change")
        if not confirm(planned):
            return ApplyOutcome(done, planned, None, "not confirmed")
    return ApplyOutcome(done, planned, apply(target.site, target.build_dir, target.inventory, target.limit, progress=listener, serial=target.serial))
