"""Plan and apply results as JSON and Markdown (one result, several renderings).

Only paths, reasons, service and task names: secret files are marked, never shown. Host names,
task names and messages come from the inventory and the hosts: in Markdown each line has their
controls made visible (provisioner.textsafe); JSON carries the exact text.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from provisioner.apply.plan import ApplyResult, HostPlan, PlanResult
from provisioner.textsafe import visible

if TYPE_CHECKING:
    from provisioner.dns.push import PushResult


def _host_data(host: HostPlan) -> dict[str, Any]:
    data = asdict(host)
    del data["listed_tasks"]  # a rendering detail: changed_tasks has them all
    data["changed"] = host.changed
    data["ok"] = host.ok
    return data


def plan_exit(result: PlanResult, dns: PushResult | None = None) -> int:
    """plan's exit code: 1 when the hosts' plan failed, 2 when hosts or DNS would change, else 0."""
    if result.exit_code == 1 or dns is None:
        return result.exit_code
    return 2 if result.exit_code == 2 or dns.changed else 0


def plan_json(result: PlanResult, dns: PushResult | None = None) -> str:
    data: dict[str, Any] = {"changed": result.changed, "ok": result.ok, "exit_code": result.exit_code, "hosts": [_host_data(h) for h in result.hosts]}
    if dns is not None:  # a site with dns.targets; without, the document is as it always was
        from provisioner.dns.push import push_json

        data["dns"] = push_json(dns)
        data["changed"] = result.changed or dns.changed
        data["exit_code"] = plan_exit(result, dns)
    return json.dumps(data, indent=2, sort_keys=True)


_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#"})


def dns_markdown(dns: PushResult) -> str:
    """The DNS plan per zone: `+` create, `-` delete, `~` update (old -> new); values of the
    provider are others' data: Markdown characters escaped, controls made visible."""
    from provisioner.dns.push import change_lines

    lines = []
    for zone in dns.zones:
        withdrawn = f"; withdrawn: {zone.withdrawn}" if zone.withdrawn else ""  # a zone no longer published there
        lines += [f"## DNS {zone.zone} (target {zone.target}): changes{withdrawn}", ""]
        lines += ["- " + line.strip() for change in zone.changes for line in change_lines(change, lambda text: text.translate(_MARKDOWN))]
        if zone.markers:
            lines.append(f"- {zone.markers} ownership marker(s)")
        lines.append("")
    for conflict in dns.conflicts:
        lines.append("- not ours, left alone: " + conflict.translate(_MARKDOWN))
    lines.append(f"DNS: {len(dns.zones)} of {len(dns.pushed)} zone(s) would change.")
    return "\n".join(visible(line) for line in lines) + "\n"


def apply_json(result: ApplyResult) -> str:
    return json.dumps(
        {"ok": result.ok, "exit_code": result.exit_code, "stats": result.stats, "hosts": [_host_data(h) for h in result.hosts]},
        indent=2,
        sort_keys=True,
    )


def plan_markdown(result: PlanResult, title: str = "Plan", dns: PushResult | None = None) -> str:
    lines = [f"# {title}", ""]
    if not result.hosts:
        lines += ["No host matched.", ""]
    for host in result.hosts:
        state = "unreachable" if host.unreachable else "failed" if host.failures else "changes" if host.changed else "no changes"
        lines += [f"## {host.host}: {state}", ""]
        for failure in host.failures:
            lines.append(f"- **failed** at `{failure.task}`: {failure.message or 'see the Ansible log'}")
        if host.files:
            lines += ["| file | why |", "|---|---|"]
            lines += [f"| `{f.path}`{' (secret)' if f.secret else ''} | {f.why} |" for f in host.files]
            lines.append("")
        if host.tables:
            lines.append("- lookup tables to compile: " + ", ".join(f"`{t}`" for t in host.tables))
        if host.restart:
            lines.append("- services to restart: " + ", ".join(host.restart))
        if host.reload:
            lines.append("- services to reload: " + ", ".join(host.reload))
        if host.start:
            lines.append("- services to start or enable: " + ", ".join(host.start))
        if host.packages:
            lines.append("- packages: " + " ".join(host.packages.split()))
        other = [t for t in host.changed_tasks if t not in host.listed_tasks]
        if other:
            lines.append("- other changes: " + "; ".join(other))
        lines.append("")
    total = sum(1 for h in result.hosts if h.changed)
    lines.append(f"{total} of {len(result.hosts)} host(s) would change." if result.ok else "The plan failed; nothing was changed.")
    text = "\n".join(visible(line) for line in lines) + "\n"
    return text if dns is None else text + "\n" + dns_markdown(dns)
