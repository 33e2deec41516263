"""Apply rendered host trees with Ansible: inventory from the site, plan (check mode) and apply.

Layer: after render. Reads a build directory (manifest.json + <host>/ trees), never renders.
"""

from provisioner.apply.bundle import write_bundles
from provisioner.apply.inventory import site_inventory
from provisioner.apply.plan import ApplyResult, FileChange, HostPlan, PlanResult, TaskEvent, apply, plan
from provisioner.apply.report import apply_json, plan_json, plan_markdown

__all__ = [
    "ApplyResult",
    "FileChange",
    "HostPlan",
    "PlanResult",
    "TaskEvent",
    "apply",
    "apply_json",
    "plan",
    "plan_json",
    "plan_markdown",
    "site_inventory",
    "write_bundles",
]
