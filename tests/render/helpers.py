"""Render the bundled examples into a temp directory, the way `provision render` does."""

from __future__ import annotations

from pathlib import Path

from provisioner.keys.store import ensure_keys
from provisioner.keys.tls import ensure_tls
from provisioner.render import render_site
from provisioner.render.tree import HostTree
from provisioner.render.writer import write_build
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY

ENV = {"SMARTHOST_PASSWORD": "example-smarthost-secret", "NETTEST_SMARTHOST_PASSWORD": "network-smarthost-secret"}


def render_example(name: str, tmp_path: Path, site_path: Path | None = None) -> tuple[dict[str, HostTree], Path]:
    loaded = load_site(site_path or EXAMPLES / name / "site.yaml")
    state = tmp_path / "state"
    keys, _ = ensure_keys(loaded.site, state, today=FIXED_DAY, workers=1)
    ensure_tls(loaded.site, keys)
    trees = render_site(loaded, keys, state, ENV)
    out = tmp_path / "build"
    write_build(out, trees)
    return trees, out


def text(trees: dict[str, HostTree], host: str, path: str) -> str:
    return trees[host].files[path].content.decode()


def main_cf(trees: dict[str, HostTree], host: str) -> dict[str, str]:
    params = {}
    for line in text(trees, host, "etc/postfix/main.cf").splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(" = ")
            params[key] = value
    return params
