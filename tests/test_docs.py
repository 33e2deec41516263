"""The docs stand on their own: rule ids explained in docs/rules.md, links that stay in the
repository, generated comments that say the rule in words, and commands in the going-live
chapter that exist with the options it uses."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import typer

from provisioner.cli import app
from provisioner.keys.store import ensure_keys
from provisioner.keys.tls import ensure_tls
from provisioner.render import render_site
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY, ROOT
from tests.render.helpers import ENV

# Any id shaped like the catalogue's (two to six capitals, a hyphen, two digits), also the short forms
# "PF-06/07" and "PTR-01..03". SHA-256, UTF-8, ISO-2022 have no two-digit number and a boundary.
RULE_REF = re.compile(r"\b([A-Z]{2,6})-(\d{2})((?:/\d{2})*)(?:\.\.(\d{2}))?\b")
RULES_MD = ROOT / "docs" / "rules.md"
ENTRY = re.compile(r"^### ([A-Z]{2,6}-\d{2})\n", re.MULTILINE)
TEXT_SUFFIXES = {".py", ".j2", ".md", ".yml", ".yaml", ".toml", ".json", ".cfg", ".sh", ".txt", ".html", ".ini", ""}
GENERATED_CONFIGS = ("etc/postfix/main.cf", "etc/postfix/master.cf", "etc/dovecot/dovecot.conf", "etc/opendkim.conf")


def rule_ids(text: str) -> set[str]:
    found = set()
    for match in RULE_REF.finditer(text):
        prefix, first, more, last = match.groups()
        numbers = [int(first)] + [int(n) for n in more.split("/") if n]
        if last:
            numbers += range(int(first), int(last) + 1)
        found |= {f"{prefix}-{n:02d}" for n in numbers}
    return found


def repository_files() -> list[Path]:
    """Every file a clone has (tracked, or new and not ignored), text only."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    paths = [ROOT / p for p in out.stdout.decode().split("\0") if p]
    this = Path(__file__).resolve()  # its examples are not citations
    return [p for p in paths if p.is_file() and p.suffix in TEXT_SUFFIXES and "golden" not in p.parts and p != this]


def catalogue() -> dict[str, str]:
    """id -> its entry's text."""
    text = RULES_MD.read_text()
    parts = ENTRY.split(text)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every generated config of both examples: 'example/host/path' -> text."""
    out = {}
    for example in ("all-in-one", "multi-host"):
        loaded = load_site(EXAMPLES / example / "site.yaml")
        state = tmp_path_factory.mktemp(example) / "state"
        keys, _ = ensure_keys(loaded.site, state, today=FIXED_DAY, workers=1)
        ensure_tls(loaded.site, keys)
        trees = render_site(loaded, keys, state, ENV)
        for host, tree in trees.items():
            for path in GENERATED_CONFIGS:
                if path in tree.files:
                    out[f"{example}/{host}/{path}"] = tree.files[path].content.decode()
    return out


def test_rule_id_parser_reads_every_form() -> None:
    assert rule_ids("PF-06/07, PTR-01..03, DKIM-14; SHA-256 UTF-8 ISO-2022-JP CVE-2021") == {
        "PF-06",
        "PF-07",
        "PTR-01",
        "PTR-02",
        "PTR-03",
        "DKIM-14",
    }


def test_every_catalogue_entry_has_rule_reason_and_reference() -> None:
    entries = catalogue()
    assert len(entries) >= 30
    for rule, body in entries.items():
        for part in ("**Rule:**", "**Why:**", "**Reference:**"):
            assert part in body, f"docs/rules.md {rule}: no {part}"
    assert len(entries) == len(ENTRY.findall(RULES_MD.read_text())), "an id is listed twice"


def test_every_rule_id_in_the_repository_is_in_the_catalogue() -> None:
    known = set(catalogue())
    missing: dict[str, str] = {}
    for path in repository_files():
        if path == RULES_MD:
            continue
        for rule in rule_ids(path.read_text(errors="replace")) - known:
            missing.setdefault(rule, str(path.relative_to(ROOT)))
    assert not missing, f"rule ids without an entry in docs/rules.md: {missing}"


def test_every_rule_id_in_rendered_output_is_in_the_catalogue(rendered: dict[str, str]) -> None:
    known = set(catalogue())
    used = {rule for text in rendered.values() for rule in rule_ids(text)}
    assert used, "the generated configs cite no rule at all"
    assert used <= known, f"not in docs/rules.md: {sorted(used - known)}"


def test_the_catalogue_lists_only_rules_the_product_uses(rendered: dict[str, str]) -> None:
    used = {rule for text in rendered.values() for rule in rule_ids(text)}
    for path in repository_files():
        if path != RULES_MD:
            used |= rule_ids(path.read_text(errors="replace"))
    unused = set(catalogue()) - used
    assert not unused, f"docs/rules.md lists ids nothing cites: {sorted(unused)}"


def test_generated_comments_say_the_rule_in_words(rendered: dict[str, str]) -> None:
    """A comment that cites a rule also says what it is: not `# PF-13` alone."""
    for name, text in rendered.items():
        for line in text.splitlines():
            stripped = line.strip()
            if not stripped.startswith("#") or not RULE_REF.search(stripped):
                continue
            words = re.findall(r"[A-Za-z]{2,}", RULE_REF.sub("", stripped))
            assert len(words) >= 3, f"{name}: {stripped!r} names a rule without saying it"


def test_postfix_comments_are_whole_lines(rendered: dict[str, str]) -> None:
    """postconf reads '#' as a comment only at the start of a line (postconf(5))."""
    for name, text in rendered.items():
        if "/postfix/" not in name:
            continue
        for line in text.splitlines():
            assert "#" not in line or line.lstrip().startswith("#"), f"{name}: {line!r}"


def test_nothing_points_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|shared/reference|shared/site-format|/work/shared|mail-standards")
    offenders = [str(p.relative_to(ROOT)) for p in repository_files() if outside.search(p.read_text(errors="replace"))]
    assert not offenders, f"references to files a clone does not have: {offenders}"


# Names that are not documents of the repository: the GitOps pipeline writes plan.md; the
# certificates chapter (issue 12, item 7) is written in parallel and lands with its own change.
NOT_IN_REPOSITORY = {"plan.md": "pipeline output", "step-summary.md": "the GitOps test's stand-in for the job summary"}


def test_every_document_named_exists() -> None:
    """A `something.md` in code, docs or messages names a file a clone has (testbed.md did not)."""
    names = {p.name for p in repository_files() if p.suffix == ".md"} | {RULES_MD.name}
    unknown = {}
    for path in repository_files():
        for name in set(re.findall(r"[\w.-]+\.md\b", path.read_text(errors="replace"))) - names - set(NOT_IN_REPOSITORY):
            unknown[name] = str(path.relative_to(ROOT))
    assert not unknown, f"documents named but not in the repository: {unknown}"


MD_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", sorted(p.relative_to(ROOT).as_posix() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]))
def test_doc_links_resolve_inside_the_repository(doc: str) -> None:
    source = ROOT / doc
    for target in MD_LINK.findall(source.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        resolved = (source.parent / path).resolve() if path else source
        assert resolved.is_relative_to(ROOT), f"{doc}: {target} leaves the repository"
        assert resolved.exists(), f"{doc}: {target} does not exist"
        if fragment and resolved.suffix == ".md":
            anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", resolved.read_text(), re.MULTILINE)}
            assert fragment in anchors, f"{doc}: {target}: no such heading"


def _commands_in(doc: Path) -> list[list[str]]:
    """`provision ...` command lines in the fenced blocks of a doc (continuations joined)."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", doc.read_text(), re.MULTILINE | re.DOTALL)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    out = []
    for line in lines:
        line = line.split(" #", 1)[0]
        if "provision " in line:
            words = shlex.split(line[line.index("provision ") :])
            out.append(words)
    return out


def test_going_live_commands_exist_with_their_options() -> None:
    subcommands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    commands = _commands_in(ROOT / "docs" / "going-live.md")
    assert len(commands) >= 6
    for words in commands:
        name = words[1]
        assert name in subcommands, f"going-live.md: provision {name} does not exist"
        options = {o for p in subcommands[name].params for o in [*p.opts, *p.secondary_opts]}
        for word in words[2:]:
            if word.startswith("-"):
                assert word.split("=", 1)[0] in options, f"going-live.md: provision {name} has no {word}"
