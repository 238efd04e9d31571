"""The multi-process layout, started once for the end-to-end tests that share it (they are kept
on one xdist worker by `xdist_group("services")`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import _template
from tests.e2e.serving import Cluster, cluster
from tests.support import Template


@pytest.fixture(scope="session")
def services(
    tmp_path_factory: pytest.TempPathFactory, templates: dict[str, Template]
) -> Iterator[Cluster]:
    template = _template("postgresql", templates, tmp_path_factory.mktemp("template"))
    with cluster(tmp_path_factory.mktemp("services"), template.location) as running:
        yield running
