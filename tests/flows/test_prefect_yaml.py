"""prefect.yaml stays true: every entrypoint imports and is a flow."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from prefect import Flow

from carehouse.settings import PROJECT_ROOT

DEPLOYMENTS = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_entrypoint_imports_a_flow(deployment: dict[str, str]) -> None:
    path, name = deployment["entrypoint"].split(":")
    spec = importlib.util.spec_from_file_location(Path(path).stem, PROJECT_ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(getattr(module, name), Flow)


def test_deployments_run_on_the_carehouse_pool() -> None:
    assert {d["work_pool"]["name"] for d in DEPLOYMENTS} == {"carehouse"}
