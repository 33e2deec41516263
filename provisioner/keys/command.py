"""`provision keys` without --rotate: every domain of the site file has its DKIM keys.

(--rotate is provisioner.dns.command.rotate_command: it reports the DNS work a rotation asks for.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from provisioner.keys.store import ensure_keys, state_dir_for
from provisioner.site.validate import load_site


def keys_command(
    site_path: Path,
    state: Path | None,
    vault_password: bytes | None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, int]:
    """Make the missing keys; returns the state directory and how many keys were made."""
    loaded = load_site(site_path)
    state_dir = state_dir_for(loaded.path, state)
    _, made = ensure_keys(loaded.site, state_dir, progress=progress, vault_password=vault_password)
    return state_dir, made
