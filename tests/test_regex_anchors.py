"""The class behind issue 11 item 5: Python's `$` also matches before a trailing newline, so a
pattern anchored with `$` lets `sales\n` pass as `sales`. No regular expression in the package
may end with `$`; whole values are matched with `fullmatch` (or `\\Z`). Pydantic's `pattern=`
runs on Rust's regex engine, where `$` is the end of the text, so those are not Python's `re`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from provisioner.mailauth.grammar import Invalid, parse_spf

PACKAGE = Path(__file__).resolve().parent.parent / "provisioner"
_RE_CALLS = {"compile", "match", "search", "fullmatch", "sub", "split", "findall", "finditer"}


def _dollar_anchored_patterns() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _RE_CALLS):
                continue
            if not (isinstance(node.func.value, ast.Name) and node.func.value.id == "re") or not node.args:
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, (str, bytes)):
                text = first.value if isinstance(first.value, str) else first.value.decode("latin-1")
                if text.endswith("$") and not text.endswith("\\$"):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {text!r}")
    return found


def test_no_python_regex_in_the_package_is_anchored_with_dollar() -> None:
    assert _dollar_anchored_patterns() == []


@pytest.mark.parametrize("term", ["include:_spf.example.net\n", "redirect=_spf.example.net\n", "a:mail.example.net\n", "include:a.example\tb.example", "ip4:192.0.2.1\r"])
def test_an_spf_term_with_a_control_character_makes_the_record_invalid(term: str) -> None:
    assert isinstance(parse_spf(f"v=spf1 {term} -all"), Invalid)
    assert not isinstance(parse_spf("v=spf1 include:_spf.example.net -all"), Invalid)
