"""The deployment path as documented: `prefect deploy --all`, then run 'nightly/nightly'.

The flow run is executed by the session's embedded process worker (started by `carehouse
up`), in a subprocess of its own, pointed at the shared test warehouse by job variables.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from carehouse.core.settings import PROJECT_ROOT, Settings
from carehouse.services.prefect_server import prefect_executable
from tests.support.flows import BUSINESS_DATE, rows
from tests.support.warehouse import EXPECTED_GOLD, fetch_gold

pytestmark = pytest.mark.slow

TIMEZONE = "Europe/London"
FINAL_STATE_LIMIT_SECONDS = 900


def job_env(settings: Settings) -> dict[str, str]:
    """What the worker's flow run needs to find the test warehouse instead of the session's."""
    env = {
        "CAREHOUSE_DATABASE_URL": settings.admin_dsn,
        # The worker was started with everything embedded; the database is not, here.
        "CAREHOUSE_EMBEDDED": "kafka,prefect",
        "CAREHOUSE_LANDING_DIR": str(settings.landing_dir),
        "CAREHOUSE_VITALS_TOPIC": settings.vitals_topic,
    }
    for role in ("loader", "transformer", "bi"):
        env[f"CAREHOUSE_{role.upper()}_PASSWORD"] = settings.role_password(role)
    return env


def test_deploy_all_then_run_the_nightly_deployment_on_the_worker(
    flow_env: Settings, first_night: object
) -> None:
    deploy = subprocess.run(
        [prefect_executable(), "--no-prompt", "deploy", "--all"],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "PREFECT_API_URL": flow_env.prefect_api,
            "CAREHOUSE_PROJECT_DIR": str(PROJECT_ROOT),
            "CAREHOUSE_HOSPITAL_TIMEZONE": TIMEZONE,
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]

    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("nightly/nightly")
        names = {
            deployment.name
            for deployment in client.read_deployments()
            if deployment.work_pool_name == "carehouse"
        }
    assert names >= {"nightly", "vitals", "backfill", "full-refresh"}
    (schedule,) = nightly.schedules
    assert getattr(schedule.schedule, "cron", None) == "0 2 * * *"
    assert getattr(schedule.schedule, "timezone", None) == TIMEZONE

    started = run_deployment(
        "nightly/nightly",
        parameters={"business_date": BUSINESS_DATE.isoformat()},
        job_variables={"env": job_env(flow_env)},
        timeout=0,
    )
    assert isinstance(started, FlowRun)
    run = started
    deadline = time.monotonic() + FINAL_STATE_LIMIT_SECONDS
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(run.id)
            if run.state is not None and run.state.is_final():
                break
            assert time.monotonic() < deadline, f"still {run.state_name} after the limit"
            time.sleep(2)
    assert run.state is not None and run.state.is_completed(), run.state
    assert fetch_gold(flow_env) == EXPECTED_GOLD
    assert rows(
        flow_env,
        "select status, business_date, is_every_gate_passed from gold.pipeline_run_audit"
        " where run_id = %s",
        (str(run.id),),
    ) == [("succeeded", BUSINESS_DATE, True)]
