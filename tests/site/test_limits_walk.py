"""The loader's limit check on parsed data (node count, depth, non-ASCII names) decides exactly as
a value-by-value walk: it is walked one depth at a time for speed, and must not let more through."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.site import loader

_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from(["a", "é", "名前", "xn--abc", ""]))
_DATA = st.recursive(
    _LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["k", "ключ", "キー", "x", "y"]) | st.integers(), inner, max_size=4)),
    max_leaves=60,
)


def value_by_value(data: Any, max_nodes: int, max_depth: int, max_non_ascii: int) -> bool:
    """The reference: every value popped with its depth, limits checked after each."""
    nodes = non_ascii = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if isinstance(value, str) and not value.isascii():
            non_ascii += 1
        if nodes > max_nodes or depth > max_depth or non_ascii > max_non_ascii:
            return False
        if isinstance(value, dict):
            nodes += len(value)
            non_ascii += sum(1 for key in value if isinstance(key, str) and not key.isascii())
            stack.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value)
    return True


@settings(max_examples=300, deadline=None)
@given(data=_DATA, max_nodes=st.integers(1, 80), max_depth=st.integers(0, 6), max_non_ascii=st.integers(0, 10))
def test_limits_decide_as_a_value_by_value_walk(data: Any, max_nodes: int, max_depth: int, max_non_ascii: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loader, "MAX_NODES", max_nodes)
        mp.setattr(loader, "MAX_DEPTH", max_depth)
        mp.setattr(loader, "MAX_NON_ASCII", max_non_ascii)
        assert loader._within_limits(data) is value_by_value(data, max_nodes, max_depth, max_non_ascii)
