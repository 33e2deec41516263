"""A re-render writes the build in place: only what changed, what vanished removed, and a render
that stops anywhere leaves a build that plan/bundle refuse until the next render completes it
(issue 12, "A build that is fast on a real disk")."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.apply.bundle import read_manifest, write_bundles
from provisioner.apply.plan import plan
from provisioner.build import build
from provisioner.errors import ProvisionError
from provisioner.render.tree import HostTree
from provisioner.render.writer import DIGEST_KEYS, HOST_FILES, INCOMPLETE, MANIFEST, MARKER, host_file, write_build
from tests.conftest import ROOT
from tests.loaders import load_file

KEY = b"k" * 32  # a fixed digest key: equal trees give equal manifests
FIXED = {MARKER, MANIFEST, DIGEST_KEYS}


def gen_site(domains: int) -> str:
    text: str = load_file(ROOT / "bench" / "gen_site.py").generate(domains, 3, 2)
    return text


def files(root: Path) -> dict[str, tuple[int, int, bytes, int]]:
    """relative path -> (inode, mtime_ns, bytes, mode) of every file under root (lstat)."""
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            info = os.lstat(path)
            found[str(path.relative_to(root))] = (info.st_ino, info.st_mtime_ns, path.read_bytes(), stat.S_IMODE(info.st_mode))
    return found


def test_rerender_rewrites_only_the_changed_domains_files_and_removes_a_vanished_domains(tmp_path: Path) -> None:
    site, out, state = tmp_path / "site.yaml", tmp_path / "build", tmp_path / "state"
    text = gen_site(8)
    site.write_text(text)
    build(site, out, state, {})
    before = files(out)
    dirs_before = {d: os.stat(d).st_mtime_ns for d, _, _ in os.walk(out)}

    build(site, out, state, {})  # nothing changed: nothing is touched, not even a directory
    assert files(out) == before
    assert {d: os.stat(d).st_mtime_ns for d, _, _ in os.walk(out)} == dirs_before

    # d00002 gains an alias; d00003 is gone.
    lines = text.splitlines()
    start = lines.index("  d00003.bench.example:")
    end = lines.index("  d00004.bench.example:")
    lines = lines[:start] + lines[end:]  # drop d00003's block
    lines.insert(lines.index("      team01: [user01, user02]", lines.index("  d00002.bench.example:")) + 1, "      team99: [user00]")
    site.write_text("\n".join(lines) + "\n")
    build(site, out, state, {})
    after = files(out)

    assert not [rel for rel in after if INCOMPLETE in rel or ".provisioner-new" in rel]
    vanished = sorted(set(before) - set(after))
    assert vanished and all("d00003" in rel for rel in vanished)  # its DKIM keys and zones
    rewritten = sorted(rel for rel in after if rel in before and after[rel][0] != before[rel][0])
    for rel in after:
        if rel in before and after[rel][2:] == before[rel][2:]:
            assert after[rel][:2] == before[rel][:2], f"{rel} is unchanged but was written again"
        elif rel in before:
            assert after[rel][0] != before[rel][0], f"{rel} changed in place, not replaced by a rename"
    # What changed: the site-wide tables and sheets that list the alias or the domain gone, and
    # the manifest; no file of a single domain (its DKIM keys, its zone) is rewritten.
    assert MANIFEST in rewritten and [rel for rel in rewritten if b"team99" in after[rel][2]]
    assert not [rel for rel in rewritten if ".bench.example" in rel], rewritten
    read_manifest(out)
    write_bundles(out)  # the manifest describes the files on disk


def test_a_file_edited_by_hand_is_written_again_and_a_hard_link_keeps_the_old_bytes(tmp_path: Path) -> None:
    out, backup = tmp_path / "build", tmp_path / "backup"

    def tree(master: bytes) -> dict[str, HostTree]:
        mx1 = HostTree("mx1")
        mx1.add("etc/postfix/main.cf", b"myhostname = mx1.example\n", 0o644)
        mx1.add("etc/postfix/master.cf", master, 0o644)
        return {"mx1": mx1}

    write_build(out, tree(b"smtp inet n - y - - smtpd\n"), digest_key=KEY)
    main_cf = out / "mx1/etc/postfix/main.cf"
    main_cf.write_bytes(b"myhostname = mx1.exampl!\n")  # the same size, other bytes
    backup.mkdir()
    os.link(out / "mx1/etc/postfix/master.cf", backup / "master.cf")  # `cp -al build backup`
    write_build(out, tree(b"smtp inet n - y - - postscreen\n"), digest_key=KEY)
    assert main_cf.read_bytes() == b"myhostname = mx1.example\n"
    assert (out / "mx1/etc/postfix/master.cf").read_bytes() == b"smtp inet n - y - - postscreen\n"
    assert (backup / "master.cf").read_bytes() == b"smtp inet n - y - - smtpd\n"


# --------------------------------------------------------------------------- property


PATHS = ["etc/a", "etc/a/b", "etc/c", "etc/sub/d", "top"]  # etc/a is a file in one tree, a directory in another
CONTENTS = [b"", b"one\n", b"two\n", b"x" * 5000]
MODES = [0o644, 0o600, 0o640]


@st.composite
def trees(draw: st.DrawFn) -> dict[str, HostTree]:
    result = {}
    for host in draw(st.sets(st.sampled_from(["mx1", "mx2"]), min_size=1)):
        paths = draw(st.sets(st.sampled_from(PATHS), min_size=1))
        if "etc/a/b" in paths:
            paths.discard("etc/a")
        tree = HostTree(host)
        for path in sorted(paths):
            mode = draw(st.sampled_from(MODES))
            tree.add(path, draw(st.sampled_from(CONTENTS)), mode, secret=mode != 0o644)
        result[host] = tree
    return result


def expected(host_trees: dict[str, HostTree], extra: dict[str, bytes]) -> dict[str, tuple[bytes, int]]:
    want = {f"{host}/{f.path}": (f.content, f.mode) for host, tree in host_trees.items() for f in tree.files.values()}
    return want | {rel: (content, 0o644) for rel, content in extra.items()}


def assert_is_build_of(out: Path, host_trees: dict[str, HostTree], extra: dict[str, bytes]) -> None:
    found = files(out)
    on_disk = {rel: (content, mode) for rel, (_, _, content, mode) in found.items() if rel not in FIXED and not rel.startswith((".bundles/", f"{HOST_FILES}/"))}
    assert on_disk == expected(host_trees, extra)
    # each host's own file (what the role reads): exactly one per host, its manifest entry, 0600
    own = {rel: (json.loads(content), mode) for rel, (_, _, content, mode) in found.items() if rel.startswith(f"{HOST_FILES}/")}
    manifest = read_manifest(out)
    assert own == {host_file(h): ({**own[host_file(h)][0], "manifest": manifest["hosts"][h]}, 0o600) for h in host_trees}
    for directory, _, _ in os.walk(out):
        assert directory.endswith("/.bundles") or stat.S_IMODE(os.stat(directory).st_mode) == 0o755, directory
    write_bundles(out)  # every file matches the manifest's digest


EXTRAS = st.dictionaries(st.sampled_from(["dns/a.zone", "dns/b.zone", "records.json"]), st.sampled_from(CONTENTS), max_size=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(series=st.lists(st.tuples(trees(), EXTRAS), min_size=2, max_size=4))
def test_any_series_of_renders_leaves_exactly_the_last_build_touching_only_what_changed(
    tmp_path_factory: pytest.TempPathFactory, series: list[tuple[dict[str, HostTree], dict[str, bytes]]]
) -> None:
    out = tmp_path_factory.mktemp("series") / "build"
    previous: dict[str, tuple[int, int, bytes, int]] = {}
    for host_trees, extra in series:
        write_build(out, host_trees, extra, digest_key=KEY)
        assert_is_build_of(out, host_trees, extra)
        now = files(out)
        for rel, (ino, mtime, content, mode) in now.items():
            if rel in previous and previous[rel][2:] == (content, mode):
                assert previous[rel][:2] == (ino, mtime), f"{rel} was written again with the same bytes"
        previous = now


# ------------------------------------------------------------------------------ crashes


class Crash(BaseException):
    """A render killed in the middle: not an OSError, so no cleanup of ours converts it."""


MUTATING = ("open", "replace", "unlink", "rmdir", "mkdir", "write", "fchmod", "fsync")


@contextmanager
def crash_after(calls: int) -> Iterator[list[int]]:
    """Every file-system call of os after the first `calls` raises Crash (cleanups fail too, as after a kill)."""
    seen = [0]
    real = {name: getattr(os, name) for name in MUTATING}

    def wrap(name: str):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            seen[0] += 1
            if seen[0] > calls:
                raise Crash(name)
            return real[name](*args, **kwargs)

        return call

    for name in MUTATING:
        setattr(os, name, wrap(name))
    try:
        yield seen
    finally:
        for name, function in real.items():
            setattr(os, name, function)


def two_trees() -> tuple[dict[str, HostTree], dict[str, HostTree]]:
    old, new = HostTree("mx1"), HostTree("mx1")
    for i in range(4):
        old.add(f"etc/keys/k{i}.pem", f"old {i}\n".encode(), 0o600, secret=True)
        old.add(f"etc/postfix/t{i}", f"old {i}\n".encode(), 0o644)
        new.add(f"etc/keys/k{i + 2}.pem", f"new {i}\n".encode(), 0o600, secret=True)  # k0, k1 vanish; k2, k3 change; k4, k5 new
        new.add(f"etc/postfix/t{i}", (f"old {i}\n" if i % 2 else f"new {i}\n").encode(), 0o644)
    return {"mx1": old}, {"mx1": new, "mx2": new}  # mx2: a host that appears, with the same files


def test_a_render_stopped_at_any_point_is_refused_by_plan_and_bundle_or_still_whole_and_the_next_render_completes_it(tmp_path: Path) -> None:
    old, new = two_trees()

    def previous(out: Path, kind: str) -> None:
        if kind == "warm":
            write_build(out, new, {"dns/a.zone": b"a\n"}, digest_key=KEY)

    refused = runs = 0
    for kind in ("cold", "warm"):
        (tmp_path / kind).mkdir()  # each run's parent exists, as the probe's does
        previous(tmp_path / kind / "probe", kind)
        with crash_after(10**6) as total:
            write_build(tmp_path / kind / "probe", old, digest_key=KEY)
        assert total[0] > 15
        for n in range(total[0]):
            runs += 1
            out = tmp_path / kind / str(n)
            previous(out, kind)
            with pytest.raises(Crash), crash_after(n):
                write_build(out, old, digest_key=KEY)
            if (out / INCOMPLETE).exists():
                refused += 1
                with pytest.raises(ProvisionError, match="is incomplete: a render into it stopped"):
                    write_bundles(out)
            elif (out / MANIFEST).exists():
                write_bundles(out)  # untouched (or not yet marked): the manifest still describes the files
            write_build(out, old, digest_key=KEY)  # the next render completes it
            assert_is_build_of(out, old, {})
            assert not (out / INCOMPLETE).exists()
    assert refused > runs // 2


def test_os_replace_failing_after_n_files_leaves_a_build_plan_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = two_trees()
    out = tmp_path / "build"
    write_build(out, old, digest_key=KEY)
    real_replace, calls = os.replace, [0]

    def replace(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] > 2:
            raise OSError(28, "No space left on device")
        return real_replace(*args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ProvisionError, match="No space left on device .*marked incomplete"):
        write_build(out, new, digest_key=KEY)
    monkeypatch.setattr(os, "replace", real_replace)
    assert not [p for p in out.rglob("*") if p.name.endswith(".provisioner-new")]  # its temporary is cleaned up
    for refuse in (read_manifest, write_bundles, lambda build_dir: plan(None, build_dir)):
        with pytest.raises(ProvisionError, match="is incomplete"):
            refuse(out)
    write_build(out, new, digest_key=KEY)
    assert_is_build_of(out, new, {})


def test_leftovers_are_ours_only_while_the_build_is_marked_incomplete_and_only_those_a_manifest_names(tmp_path: Path) -> None:
    old, new = two_trees()
    out, other = tmp_path / "build", tmp_path / "other"
    write_build(out, old, digest_key=KEY)
    write_build(other, new, digest_key=KEY)
    stray = out / "mx1/etc/postfix/.t0.provisioner-new"
    stray.write_bytes(b"half")
    with pytest.raises(ProvisionError, match="did not write"):
        write_build(out, old, digest_key=KEY)  # no render stopped here: not ours
    half = out / "mx1/etc/keys/k5.pem"  # listed by `new` only
    half.write_bytes(b"half")
    (out / INCOMPLETE).write_bytes(b"{damaged")  # a render stopped while writing the marker
    with pytest.raises(ProvisionError, match=r"holds 1 name .*\(mx1/etc/keys/k5.pem\)"):
        write_build(out, old, digest_key=KEY)  # an unreadable marker vouches for nothing of its own
    (out / INCOMPLETE).write_bytes((other / MANIFEST).read_bytes())  # the render to `new` had begun
    write_build(out, old, digest_key=KEY)
    assert not stray.exists() and not half.exists() and not (out / INCOMPLETE).exists()
    assert_is_build_of(out, old, {})


def test_a_directory_of_the_build_with_another_mode_is_set_back_to_0755(tmp_path: Path) -> None:
    old, _ = two_trees()
    out = tmp_path / "build"
    write_build(out, old, digest_key=KEY)
    for rel in ("", "mx1", "mx1/etc/keys"):
        (out / rel).chmod(0o700)
    before = files(out)
    write_build(out, old, digest_key=KEY)
    assert files(out) == before  # no file written again
    assert_is_build_of(out, old, {})  # and every directory 0755
