"""Incremental de-duplication of labs and vitals: a day's run reads a day's rows, and equals a
full refresh.

History is committed days "ago" (vitals with their own ingestion instants, lab loads moved
back as the loader's owner would see them after days of nightly loads), built once; then a
new batch arrives that changes kept rows in every way the staging tables must follow:

- vitals: a duplicate of a kept set arriving a day later at a higher offset (ignored), a copy
  with a lower offset arriving later in the same partition (replaces the kept copy), a valid
  replay on another topic sorting before an implausible kept copy (the set leaves
  quarantine for the fact), and a new set;
- labs: a result re-sent unchanged in a later load, a quarantined result corrected (enters
  the fact), a valid result amended into the wrong unit (leaves the fact for quarantine).

The vitals batch goes through the streaming selection (`tag:vitals_stream`), which must
touch only the new and changed sets; then the whole chain runs incrementally. Staging,
quarantine and gold must then equal a `--full-refresh` over the same raw rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from carehouse.core.settings import Settings
from carehouse.ingest.labs import load_labs
from carehouse.warehouse.dbt import DbtError, DbtResult, run_dbt
from tests.support.clinical import (
    GLUCOSE,
    Vital,
    insert_vitals,
    observation,
    observation_set_id,
    table_checksums,
)
from tests.support.warehouse import isolated_warehouse, node_name

pytestmark = pytest.mark.slow

SELECTION = ["--select", "+news2_alerts", "+fct_lab_results", "--indirect-selection", "cautious"]
STREAM = ["run", "--select", "tag:vitals_stream"]
DAY = timedelta(days=1)
TOPIC = "patient-vitals"


def vital(
    name: str,
    offset: int,
    device: str,
    at: str,
    heart_rate: float,
    *,
    partition: int = 0,
    topic: str = TOPIC,
    ago: timedelta | None = None,
) -> Vital:
    """A plausible message (but for `heart_rate`) on `device` at `at`."""
    return Vital(name, topic, partition, offset, device, "MRN-2001", at, heart_rate, 16, 120,
                 80, 97, 1, False, "A", 37.0, ago)  # fmt: skip


# History, committed days ago: staggered, so only the newest is within the lookback.
HISTORY = (
    vital("a1", 0, "MON-X", "2026-05-01T10:00:00Z", 70, ago=5 * DAY),
    # Implausible: quarantined until a valid replay sorts before it.
    vital("b1", 0, "MON-Y", "2026-05-01T10:00:00Z", 900, partition=1, ago=4 * DAY),
    vital("c1", 5, "MON-Z", "2026-05-01T10:00:00Z", 80, partition=2, ago=3 * DAY),
    vital("e1", 1, "MON-X", "2026-05-01T10:30:00Z", 72, ago=2 * DAY),
)
NEW_BATCH = (
    # A day late, at a higher offset: a producer retry of a1 with another value; a1 stays.
    vital("a1-late-duplicate", 7, "MON-X", "2026-05-01T10:00:00Z", 75),
    # Another topic, partition 0 offset 0: sorts before b1 (partition 1), and is plausible.
    vital("b1-replay", 0, "MON-Y", "2026-05-01T10:00:00Z", 65, topic="patient-vitals-replay"),
    # Lower offset than the kept c1, arriving later: the lowest offset wins wherever it comes.
    vital("c1-lower-offset", 2, "MON-Z", "2026-05-01T10:00:00Z", 85, partition=2),
    vital("d1", 8, "MON-X", "2026-05-01T11:00:00Z", 74),
)


def lab(observation_id: str, value: float, unit: str, status: str = "final") -> dict[str, Any]:
    """A glucose result of MRN-2001."""
    return observation(observation_id, "MRN-2001", GLUCOSE, "2026-05-01T08:00:00Z",
                       value=value, unit=unit, status=status)  # fmt: skip


LAB_HISTORY = [
    lab("lab-1", 80, "mg/dL"),
    lab("lab-2", 5.0, "mmol/L"),  # UNIT_MISMATCH
    lab("lab-3", 100, "mg/dL"),
]
LAB_NEW = [
    lab("lab-1", 80, "mg/dL"),  # re-sent unchanged
    lab("lab-2", 90, "mg/dL", status="corrected"),  # now valid
    lab("lab-3", 5.5, "mmol/L", status="amended"),  # now UNIT_MISMATCH
]


def write_labs(folder: Path, name: str, resources: list[dict[str, Any]]) -> Path:
    """One NDJSON lab file in a new folder; returns the folder."""
    folder.mkdir(parents=True)
    text = "".join(json.dumps(resource) + "\n" for resource in resources)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def move_lab_loads_back(settings: Settings, ago: timedelta) -> None:
    """Date every lab row loaded so far `ago` earlier, as days of nightly loads would have."""
    with psycopg.connect(settings.dsn("admin")) as conn:
        conn.execute("update raw_labs.observations set _ingested_at = _ingested_at - %s", (ago,))


def compared_relations() -> list[tuple[str, str]]:
    """Every relation of the chain whose content must not depend on how it was built."""
    return [
        ("staging", "base_vitals__vitals"),
        ("staging", "base_labs__observations"),
        ("staging", "stg_vitals__vitals"),
        ("staging", "stg_labs__observations"),
        ("quarantine", "vitals_rejected"),
        ("quarantine", "labs_rejected"),
        ("gold", "fct_vitals"),
        ("gold", "fct_lab_results"),
        ("gold", "news2_alerts"),
    ]


class Runs:
    """The module's dbt runs and the checksums taken after them."""

    def __init__(self) -> None:
        self.results: dict[str, DbtResult] = {}
        self.checksums: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def warehouse(settings: Settings) -> Iterator[Settings]:
    """A database of the module's own."""
    with isolated_warehouse(settings, "incremental") as isolated:
        yield isolated


@pytest.fixture(scope="module")
def runs(warehouse: Settings, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """History and a full build; a stream run and an incremental build; a full refresh."""
    folder = tmp_path_factory.mktemp("labs")
    done = Runs()
    insert_vitals(warehouse, HISTORY, "history")
    load_labs(warehouse, write_labs(folder / "1", "labs_2026-05-01.ndjson", LAB_HISTORY))
    move_lab_loads_back(warehouse, 3 * DAY)
    done.results["first"] = run_dbt(warehouse, ["build", *SELECTION])

    insert_vitals(warehouse, NEW_BATCH, "new")
    done.results["stream"] = run_dbt(warehouse, STREAM)
    done.checksums["stream"] = table_checksums(warehouse, [("gold", "fct_vitals")])
    load_labs(warehouse, write_labs(folder / "2", "labs_2026-05-02.ndjson", LAB_NEW))
    done.results["incremental"] = run_dbt(warehouse, ["build", *SELECTION])
    done.checksums["incremental"] = table_checksums(warehouse, compared_relations())
    done.results["full_refresh"] = run_dbt(warehouse, ["build", *SELECTION, "--full-refresh"])
    done.checksums["full_refresh"] = table_checksums(warehouse, compared_relations())
    return done


def query(
    settings: Settings, statement: str, params: tuple[object, ...] = ()
) -> list[tuple[Any, ...]]:
    """Rows of a query as the transformer."""
    with psycopg.connect(settings.dsn("transformer")) as conn:
        return conn.execute(statement, params).fetchall()


def set_id(name: str) -> str:
    """The observation_set_id of a message of this module, by name."""
    return observation_set_id(next(item for item in (*HISTORY, *NEW_BATCH) if item.name == name))


def test_the_stream_selection_refreshes_only_the_new_and_changed_sets(runs: Runs) -> None:
    nodes = {node_name(node.unique_id): node for node in runs.results["stream"].nodes}
    assert {name for name in nodes if not name.startswith("carehouse-on-run-start")} == {
        "base_vitals__vitals",
        "fct_vitals",
    }
    # b1 (now valid), c1 (new kept copy) and d1 (new) are written, in staging and in gold;
    # a1's late duplicate loses to the kept copy, and e1, read again because it lies within
    # the lookback of the newest set, is unchanged: neither is written again.
    assert nodes["base_vitals__vitals"].rows_affected == 3
    assert nodes["fct_vitals"].rows_affected == 3
    # The stream run leaves fct_vitals as the whole incremental build does.
    assert (
        runs.checksums["stream"]["gold.fct_vitals"]
        == (runs.checksums["incremental"]["gold.fct_vitals"])
    )


def test_incremental_equals_a_full_refresh_from_staging_to_gold(runs: Runs) -> None:
    for name in ("first", "incremental", "full_refresh"):
        assert runs.results[name].success, name
    statuses = {
        node_name(node.unique_id): node.status for node in runs.results["incremental"].nodes
    }
    assert statuses["assert_vitals_staged_plus_quarantined_equal_raw"] == "pass"
    assert statuses["assert_labs_staged_plus_quarantined_equal_raw"] == "pass"
    assert runs.checksums["incremental"] == runs.checksums["full_refresh"]


def test_vitals_keep_the_lowest_offset_wherever_it_arrives(warehouse: Settings, runs: Runs) -> None:
    facts = dict(query(warehouse, "select observation_set_id, heart_rate from gold.fct_vitals"))
    assert facts == {
        set_id("a1"): 70,  # the late duplicate at a higher offset changed nothing
        set_id("b1"): 65,  # the replay sorts first and is plausible: out of quarantine
        set_id("c1"): 85,  # the lower offset arrived later and won
        set_id("d1"): 74,
        set_id("e1"): 72,
    }
    assert query(warehouse, "select count(*) from quarantine.vitals_rejected") == [(0,)]
    # a1's kept copy is still the first one: its offset and its days-old ingestion instant.
    assert query(
        warehouse,
        "select kafka_offset, ingested_at < now() - interval '4 days'"
        " from staging.base_vitals__vitals where observation_set_id = %s",
        (set_id("a1"),),
    ) == [(0, True)]


def test_lab_versions_follow_the_latest_load(warehouse: Settings, runs: Runs) -> None:
    assert query(
        warehouse, "select observation_id, value, status from gold.fct_lab_results order by 1"
    ) == [("lab-1", 80, "final"), ("lab-2", 90, "corrected")]
    assert query(warehouse, "select observation_id, reason from quarantine.labs_rejected") == [
        ("lab-3", "UNIT_MISMATCH")
    ]


def test_vitals_reconcile_with_raw_while_the_stream_drains(warehouse: Settings, runs: Runs) -> None:
    """Raw vitals grow while staging is built and tested: the settled sets must reconcile.

    Last in the module: it changes staging behind dbt's back.
    """
    reconcile = ["test", "--select", "assert_vitals_staged_plus_quarantined_equal_raw"]
    # Drained after staging was built: not staged yet, and not a loss.
    insert_vitals(warehouse, (vital("f1", 9, "MON-X", "2026-05-01T12:00:00Z", 76),), "after")
    assert run_dbt(warehouse, reconcile).success
    # A set ingested days ago and missing from staging is a loss, and fails the test.
    with psycopg.connect(warehouse.dsn("admin")) as conn:
        conn.execute(
            "delete from staging.base_vitals__vitals where observation_set_id = %s",
            (set_id("a1"),),
        )
    with pytest.raises(DbtError, match="assert_vitals_staged_plus_quarantined_equal_raw"):
        run_dbt(warehouse, reconcile)
