"""The main job, as one function: validate, ensure keys, render every host, derive the DNS
records, write the build directory. `render`, `plan` and `apply` all start here, so what is
planned is exactly what is applied."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.dns import build_outputs
from provisioner.dns.records import site_records
from provisioner.keys.digest import state_digest_key
from provisioner.keys.store import ensure_keys, state_dir_for
from provisioner.render import render_site
from provisioner.render.tree import HostTree
from provisioner.render.writer import check_output, write_build
from provisioner.site.validate import LoadedSite, load_site


@dataclass(frozen=True)
class Build:
    loaded: LoadedSite
    output: Path
    trees: dict[str, HostTree]
    dns_files: dict[str, bytes]
    manifest: dict[str, Any]


def build(
    site: Path,
    output: Path,
    state: Path | None,
    env: Mapping[str, str],
    vault_password: bytes | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Build:
    loaded = load_site(site)
    state_dir = state_dir_for(loaded.path, state)
    check_output(output, loaded.path.parent, state_dir)  # before any key is made
    keys, _ = ensure_keys(loaded.site, state_dir, progress=progress, vault_password=vault_password)
    trees = render_site(loaded, keys, state_dir, env)
    dns_files = build_outputs(loaded.site, site_records(loaded.site, keys))
    manifest = write_build(output, trees, dns_files, digest_key=state_digest_key(keys), site_dir=loaded.path.parent, state_dir=state_dir)
    return Build(loaded, output, trees, dns_files, manifest)
