"""The layers, enforced over the import graph (issue 17): every `import` of every module of the
package, at module level or inside a function (the lazy imports that keep startup cheap are
dependencies too), read with `ast`, followed transitively. A rule is a row of FORBIDDEN; a
violation names the chain of modules that leads to it."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "provisioner"

BELOW_APPLY = ("provisioner.site", "provisioner.keys", "provisioner.render", "provisioner.dns", "provisioner.check", "provisioner.inspect", "provisioner.build")

# (importer prefix, forbidden prefix, reason). A prefix is a dotted module name and matches it
# and everything below it.
FORBIDDEN: list[tuple[str, str, str]] = [
    ("provisioner.inspect", "provisioner.check", "inspect and check share only provisioner.mailauth"),
    ("provisioner.check", "provisioner.inspect", "inspect and check share only provisioner.mailauth"),
    *[
        ("provisioner.mailauth", layer, "mailauth is shared below check and inspect: it must not reach up or into the site's record builders")
        for layer in ("provisioner.check", "provisioner.inspect", "provisioner.render", "provisioner.dns", "provisioner.apply", "provisioner.cli")
    ],
    # site -> keys -> render/dns -> check -> apply -> cli: what render builds on never reaches up to it
    *[
        (low, "provisioner.render", "render is a pure function of site + state: nothing it builds on imports it")
        for low in (
            "provisioner.site",
            "provisioner.keys",
            "provisioner.files",
            "provisioner.templating",
            "provisioner.layout",
            "provisioner.mailauth",
            "provisioner.errors",
            "provisioner.textsafe",
            "provisioner.secrets",
        )
    ],
    *[(low, "provisioner.apply", "only the CLI drives Ansible") for low in BELOW_APPLY],
    *[(module, "provisioner.cli", "the CLI is the top: nothing imports it") for module in (*BELOW_APPLY, "provisioner.apply", "provisioner.mailauth")],
]

# What provisioner.cli may import directly: one entry point per command (its `command` or `flow`
# module, or build for render), the report modules that show results, and the few helpers every
# command shares (errors, the vault password, the secrets environment, text escaping).
CLI_MAY_IMPORT = {
    "provisioner",
    "provisioner.errors",
    "provisioner.textsafe",
    "provisioner.secrets",
    "provisioner.passwd",
    "provisioner.build",
    "provisioner.keys",
    "provisioner.keys.command",
    "provisioner.keys.store",  # store: vault_password_from, state_dir_for
    "provisioner.statelock",  # one writing command at a time per state directory, around the entry point
    "provisioner.dns",
    "provisioner.dns.command",
    "provisioner.dns.diff",  # diff: render's lines about changed records
    "provisioner.dns.push",  # dns push: its entry point and its report
    "provisioner.check",
    "provisioner.check.command",
    "provisioner.check.report",
    "provisioner.inspect",
    "provisioner.inspect.command",
    "provisioner.inspect.report",
    "provisioner.apply",
    "provisioner.apply.flow",
    "provisioner.apply.plan",
    "provisioner.apply.report",  # plan: the result types
    "provisioner.site",
    "provisioner.site.schema",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the module's package, one level up per extra dot
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    # `from pkg import name`: name is a submodule or an attribute of pkg
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports directly (with the packages above each, whose
    __init__ runs first)."""
    paths = sorted((ROOT / PACKAGE).rglob("*.py"))
    known = {_module_name(p) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        module = _module_name(path)
        edges: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for name in _imported(node, module, path.name == "__init__.py", known):
                    parts = name.split(".")
                    edges.update(p for p in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if p in known)
        edges.discard(module)
        graph[module] = edges
    return graph


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(graph: Mapping[str, set[str]], rules: list[tuple[str, str, str]]) -> list[str]:
    """Each (importer, forbidden) pair reachable in `graph`, with the shortest chain."""
    found = []
    for importer_prefix, forbidden_prefix, reason in rules:
        for start in sorted(m for m in graph if _within(m, importer_prefix)):
            chain = {start: [start]}
            queue = [start]
            while queue:
                current = queue.pop(0)
                for target in sorted(graph.get(current, ())):
                    if target in chain:
                        continue
                    chain[target] = [*chain[current], target]
                    if _within(target, forbidden_prefix) and not _within(target, importer_prefix):
                        found.append(f"{' -> '.join(chain[target])}: {reason}")
                        queue.clear()
                        break
                    queue.append(target)
    return found


GRAPH = import_graph()


def test_the_graph_sees_module_level_function_level_and_package_imports() -> None:
    # if the reader missed a kind of import, every rule would pass vacuously
    assert "provisioner.mailauth.spf" in GRAPH["provisioner.check.run"]  # module level
    assert "provisioner.check.command" in GRAPH["provisioner.cli"]  # inside a command function
    assert "provisioner.check.report" in GRAPH["provisioner.cli"]  # from a submodule, in a function
    assert "provisioner.mailauth" in GRAPH["provisioner.inspect.verify"]  # the package's __init__ runs first
    assert all(prefix in GRAPH or any(_within(m, prefix) for m in GRAPH) for rule in FORBIDDEN for prefix in rule[:2])


def test_a_forbidden_import_is_reported_with_its_chain() -> None:
    graph = {"p.low": {"p.mid"}, "p.mid": {"p.high.x"}, "p.high.x": set(), "p.other": set()}
    assert violations(graph, [("p.low", "p.high", "low stays low")]) == ["p.low -> p.mid -> p.high.x: low stays low"]
    assert violations(graph, [("p.other", "p.high", "r")]) == []


@pytest.mark.parametrize(("importer", "forbidden", "reason"), FORBIDDEN, ids=[f"{a} -/-> {b}" for a, b, _ in FORBIDDEN])
def test_layer(importer: str, forbidden: str, reason: str) -> None:
    assert violations(GRAPH, [(importer, forbidden, reason)]) == []


def test_the_cli_imports_only_command_entry_points() -> None:
    """cli.py parses options, calls one function of the command's module and prints: it does not
    assemble pipelines from the modules below (issue 17 item 5)."""
    assert sorted(GRAPH["provisioner.cli"] - CLI_MAY_IMPORT) == []
