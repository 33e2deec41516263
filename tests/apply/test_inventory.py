"""provisioner.apply.inventory: the Ansible inventory a site implies."""

from __future__ import annotations

from pathlib import Path

import yaml

from provisioner.apply import site_inventory
from provisioner.site.validate import load_site

REPO = Path(__file__).resolve().parents[2]


def test_inventory_from_the_multi_host_example_matches_inventories_example() -> None:
    site = load_site(REPO / "examples/multi-host/site.yaml").site
    data = site_inventory(site, Path("/b"))
    shipped = yaml.safe_load((REPO / "inventories/example/hosts.yml").read_text())
    assert data["all"]["hosts"] == shipped["all"]["hosts"]
    assert data["all"]["vars"] == {"mailhost_build_dir": "/b"}


def test_host_without_an_ansible_block_is_reached_at_its_fqdn() -> None:
    site = load_site(REPO / "examples/all-in-one/site.yaml").site
    assert site_inventory(site, Path("/b"))["all"]["hosts"] == {"mail": {"ansible_host": "mail.smallco.example"}}
