"""prefect.yaml stays true: every entrypoint loads, the way a worker loads it, as a flow."""

from __future__ import annotations

import os

import pytest
import yaml
from prefect import Flow
from prefect.flows import load_flow_from_entrypoint

from carehouse.core.settings import PROJECT_ROOT

DEPLOYMENTS = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_entrypoint_loads_a_flow(deployment: dict[str, str]) -> None:
    cwd = os.getcwd()
    os.chdir(PROJECT_ROOT)
    try:
        flow: object = load_flow_from_entrypoint(deployment["entrypoint"])
    finally:
        os.chdir(cwd)
    assert isinstance(flow, Flow)


def test_deployments_run_on_the_carehouse_pool() -> None:
    assert {d["work_pool"]["name"] for d in DEPLOYMENTS} == {"carehouse"}


def test_the_four_deployments_and_the_nightly_schedule() -> None:
    by_name = {d["name"]: d for d in DEPLOYMENTS}
    assert set(by_name) == {"nightly", "vitals", "backfill", "full-refresh"}
    (schedule,) = by_name["nightly"]["schedules"]
    assert schedule["cron"] == "0 2 * * *"
    # The hospital's timezone, from the environment at deploy time (carehouse env exports it).
    assert schedule["timezone"] == "{{ $CAREHOUSE_HOSPITAL_TIMEZONE }}"
    assert "schedules" not in by_name["backfill"] and "schedules" not in by_name["full-refresh"]
