"""One test network for the whole package (test_network.py, test_inbound.py): built once, torn down after the last test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.network.test_network import Testnet, network


@pytest.fixture(scope="package")
def testnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    yield from network(tmp_path_factory)
