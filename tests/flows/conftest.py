"""One warehouse for the flow tests: built once by a first nightly, shared by the package.

Flow runs are slow (dbt, three gates): every test here starts from the same isolated
database, landing folder and vitals topic, exported the way a deployment's worker sees them,
and each test leaves it consistent for the next (a failed run is a state a real warehouse
must survive too).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from carehouse.core.settings import Settings
from tests.support.feeds import write_landing_csvs, write_other_feeds
from tests.support.flows import BUSINESS_DATE
from tests.support.warehouse import isolated_warehouse


@pytest.fixture(scope="package")
def flow_env(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """An isolated warehouse with tonight's feeds landed, exported to this process."""
    with isolated_warehouse(settings, "flows") as warehouse, pytest.MonkeyPatch.context() as env:
        landing = tmp_path_factory.mktemp("flows") / "landing"
        topic = f"flows-vitals-{secrets.token_hex(4)}"
        env.setenv("CAREHOUSE_LANDING_DIR", str(landing))
        env.setenv("CAREHOUSE_DATABASE_URL", warehouse.admin_dsn)
        for role in ("loader", "transformer", "bi"):
            env.setenv(f"CAREHOUSE_{role.upper()}_PASSWORD", warehouse.role_password(role))
        env.setenv("CAREHOUSE_VITALS_TOPIC", topic)
        ready = warehouse.model_copy(update={"landing_dir": landing, "vitals_topic": topic})
        write_landing_csvs(landing)
        write_other_feeds(ready, landing)
        yield ready


@pytest.fixture(scope="package")
def first_night(flow_env: Settings) -> object:
    """The first nightly of the shared warehouse (the tests that need gold start after it)."""
    from flows.nightly import nightly

    state = nightly(business_date=BUSINESS_DATE, return_state=True)
    assert state.is_completed(), state.message
    return state.result()
