from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.server import KaonServer, start_kaon_server
from tests.web.support import Caller


@pytest.fixture(scope="package")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    with start_kaon_server(tmp_path_factory.mktemp("web"), auth_strategy="kaon") as srv:
        yield srv


@pytest.fixture(scope="package")
def admin(web_server: KaonServer) -> Iterator[Caller]:
    caller = Caller(web_server, "admin", "admin")
    yield caller
    caller.close()


@pytest.fixture(scope="package")
def demo(web_server: KaonServer) -> Iterator[Caller]:
    caller = Caller(web_server, "demo", "demo")
    yield caller
    caller.close()
