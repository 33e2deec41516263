"""An Ansible inventory from the site's hosts and their `ansible:` blocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from provisioner.site.model import Site


def site_inventory(site: Site, build_dir: Path) -> dict[str, Any]:
    """YAML-inventory data: one host per site host, named as in the site (and the build).

    A host without an `ansible:` block is reached at its fqdn over SSH as the current user.
    """
    hosts: dict[str, dict[str, Any]] = {}
    for name, host in sorted(site.hosts.items()):
        target = host.ansible
        variables: dict[str, Any] = {"ansible_host": (target.host if target and target.host else host.fqdn)}
        if target and target.user:
            variables["ansible_user"] = target.user
        if target and target.port:
            variables["ansible_port"] = target.port
        if target and target.connection:
            variables["ansible_connection"] = target.connection
        hosts[name] = variables
    return {"all": {"hosts": hosts, "vars": {"mailhost_build_dir": str(build_dir.absolute())}}}


def write_inventory(data: dict[str, Any], path: Path) -> Path:
    path.write_text("# Written by provisioner from the site file.\n" + yaml.safe_dump(data, sort_keys=True, allow_unicode=True))
    return path
