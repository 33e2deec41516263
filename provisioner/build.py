"""The main job, as one function: validate, ensure the DKIM keys and self-signed certificates,
render every host, derive the DNS records, write the build directory. `render`, `plan` and `apply` all start here, so what is
planned is exactly what is applied.

A build that fails leaves the state as it found it: the DKIM keys, the digest key and the
self-signed certificates it made are deleted again (a key whose record was never published is no use, and
a later render would otherwise pre-publish a different standby than the one the failed run
talked about). The result carries what the site author must hear (warnings) and what changed in
DNS since the previous build in the same directory."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.dns import dns_directory, note_warnings
from provisioner.dns.diff import RecordDiff, records_diff
from provisioner.dns.records import site_records
from provisioner.errors import SiteInvalid
from provisioner.keys.digest import KEY_FILE as DIGEST_KEY_FILE
from provisioner.keys.digest import state_digest_key
from provisioner.keys.store import ensure_keys, keys_undone_on_failure, state_dir_for
from provisioner.keys.tls import ensure_tls
from provisioner.render import render_site
from provisioner.render.tree import HostTree
from provisioner.render.writer import MARKER, MARKER_TEXT, check_output, write_build
from provisioner.site.advice import site_warnings
from provisioner.site.validate import LoadedSite, load_site

RECORDS = "dns/records.json"
MAX_PREVIOUS_RECORDS = 512 * 1024 * 1024  # a records.json larger than this is not compared


@dataclass(frozen=True)
class Build:
    loaded: LoadedSite
    output: Path
    trees: dict[str, HostTree]
    dns_files: dict[str, bytes]
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)  # for the site author: printed on stderr
    dns_diff: RecordDiff | None = None


def build(
    site: Path,
    output: Path,
    state: Path | None,
    env: Mapping[str, str],
    vault_password: bytes | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Build:
    with _no_cycle_collection():
        return _load_render_write(site, output, state, env, vault_password, progress)


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off while a build runs (reference counting still frees all but
    cycles). A 5,000-domain site holds millions of live objects, and each of the seven full
    collections its allocations trigger walks them all: 3.1 -> 2.6 s of a render, peak memory
    the same (measured: docs/testing.md, Benchmarks)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load_render_write(
    site: Path,
    output: Path,
    state: Path | None,
    env: Mapping[str, str],
    vault_password: bytes | None,
    progress: Callable[[int, int], None] | None,
) -> Build:
    loaded = load_site(site)
    state_dir = state_dir_for(loaded.path, state)
    check_output(output, loaded.path.parent, state_dir)  # before any key is made
    previous = previous_records(output)
    made_by_render = _files_render_may_make(loaded, state_dir)
    before = {path for path in made_by_render if path.exists()}
    try:
        with keys_undone_on_failure(state_dir) as made:
            keys, _ = ensure_keys(loaded.site, state_dir, progress=progress, vault_password=vault_password, made=made)
            ensure_tls(loaded.site, keys, made=made)
            trees = render_site(loaded, keys, state_dir, env)
            records = site_records(loaded.site, keys)
            dns_files = dns_directory(loaded.site, records)
            releases = {name: host.os.value for name, host in loaded.site.hosts.items()}
            manifest = write_build(
                output, trees, dns_files, digest_key=state_digest_key(keys), site_dir=loaded.path.parent, state_dir=state_dir, releases=releases
            )
    except BaseException:
        for path in made_by_render:
            if path not in before:
                path.unlink(missing_ok=True)
        raise
    warnings = site_warnings(loaded.site) + note_warnings(records.notes, str(output / RECORDS))
    return Build(loaded, output, trees, dns_files, manifest, warnings, records_diff(previous, dns_files[RECORDS], records.keys()))


def check_renderable(loaded: LoadedSite, env: Mapping[str, str]) -> None:
    """What render would refuse beyond the site file itself, for `validate`: every secret reference resolved ({env:} set, {file:} readable, a password
    hash where one is needed). Raises SiteInvalid with every problem, positioned in the file;
    reads nothing it would not read to render. (`dns` and `check` need none of this.)"""
    from provisioner.render import resolve_secrets

    problems = []
    try:
        resolve_secrets(loaded, env)
    except SiteInvalid as exc:
        problems += exc.problems
    if problems:
        raise SiteInvalid(problems)


def validate_command(site: Path, env: Mapping[str, str]) -> tuple[LoadedSite, list[str]]:
    """`provision validate`: the site file as render would take it (secrets resolvable, nothing it
    would refuse), and the advice for its author. Raises SiteInvalid with every problem."""
    loaded = load_site(site)
    check_renderable(loaded, env)
    return loaded, site_warnings(loaded.site)


def previous_records(output: Path) -> bytes | None:
    """The records.json of the build in `output`, if it is one of ours (its marker), else None."""
    try:
        if (output / MARKER).read_bytes() != MARKER_TEXT:
            return None
        path = output / RECORDS
        if path.is_symlink() or path.stat().st_size > MAX_PREVIOUS_RECORDS:
            return None
        return path.read_bytes()
    except OSError:  # no build there yet, or unreadable: compared with nothing
        return None


def _files_render_may_make(loaded: LoadedSite, state_dir: Path) -> list[Path]:
    """The files a render may make in the state besides DKIM keys and self-signed certificates
    (those two are undone through keys_undone_on_failure): the digest key (provisioner.keys.digest)."""
    return [state_dir / DIGEST_KEY_FILE]
