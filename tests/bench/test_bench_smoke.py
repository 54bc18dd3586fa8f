"""`carehouse bench --quick` at scale 0.01: the harness runs end to end, reports every figure.

Speed is not asserted (that is what the benchmark reports); the shape of what it
writes is, and the facts that hold whatever the machine: each baseline read the
same records as the stage it is the baseline of, the whole nightly loaded what
the stages loaded, every message streamed through the `vitals` flow was
accounted for, and what a quick run skips says so instead of carrying a figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from carehouse.app.cli import app
from carehouse.bench.latency import percentiles
from carehouse.bench.suite import NOT_MEASURED, STAGE_PLAN, run_bench
from carehouse.core.settings import Settings

pytestmark = pytest.mark.slow

STAGES = [name for name, _ in STAGE_PLAN] + ["dbt_incremental", "nightly_plain", "nightly_prefect"]
SKIPPED = {"nightly_plain"}  # by a quick run
MEASURED = [name for name in STAGES if name not in SKIPPED]
BASELINES = {
    "admissions_copy": "admissions_load",
    "admissions_to_sql": "admissions_load",
    "vitals_consume_only": "vitals_drain",
    "vitals_consume_copy": "vitals_drain",
    "gold_sql_direct": "dbt_build_gold",
    "nightly_plain": "nightly_prefect",
}
TARGETS = {
    "admissions load vs COPY",
    "vitals drain",
    "labs load",
    "produce -> news2_alerts (idle)",
    "produce -> news2_alerts (busy)",
    "nightly at scale 1",
    "nightly scale 10 vs 1",
    "incremental day vs full refresh",
    "Prefect overhead",
    "peak memory of any process",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bench_run(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out_dir = tmp_path_factory.mktemp("bench") / "20260101T000000"
    results = run_bench(
        settings,
        scale=0.01,
        out_dir=out_dir,
        rates=(100.0,),
        latency_seconds=3.0,
        quick=True,
        log=print,
    )
    return out_dir, results


def test_writes_json_table_and_png(bench_run: tuple[Path, Any]) -> None:
    out_dir, results = bench_run
    assert json.loads((out_dir / "results.json").read_text()) == json.loads(
        json.dumps(results, default=str)
    )
    table = (out_dir / "results.md").read_text()
    for stage in STAGES:
        assert f"| {stage} |" in table
    assert "| target | wanted | is | met |" in table
    assert (out_dir / "bench.png").read_bytes().startswith(PNG_SIGNATURE)


def test_machine_and_versions(bench_run: tuple[Path, Any]) -> None:
    _, results = bench_run
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["memory_gib"] > 0
    assert len(machine["loadavg_start"]) == 3 and len(machine["loadavg_end"]) == 3
    assert set(results["versions"]) >= {"postgres", "dbt-core", "dlt", "prefect", "soda-core"}


def test_every_stage_with_its_figures(bench_run: tuple[Path, Any]) -> None:
    _, results = bench_run
    stages = results["stages"]
    assert set(stages) == set(STAGES)
    for name in SKIPPED:
        assert stages[name]["note"] == NOT_MEASURED
        assert "seconds" not in stages[name] and "rows" not in stages[name]
        assert stages[name]["baseline_of"] == BASELINES.get(name)
    for name in MEASURED:
        figures = stages[name]
        assert figures["seconds"] > 0, name
        assert figures["rows"] > 0, name
        assert figures["records_per_second"] == pytest.approx(figures["rows"] / figures["seconds"])
        assert figures["mb_per_second"] is not None and figures["mb_per_second"] > 0, name
        assert 0 < figures["peak_rss_mib"] < 4096, name
        assert figures["baseline_of"] == BASELINES.get(name)
        # dbt stages: the time dbt reports for their nodes, as `bench incremental` does.
        assert ("node_seconds" in figures) == name.startswith("dbt_"), name
        if name.startswith("dbt_"):
            assert figures["node_seconds"] > 0, name
    ratios = results["ratios"]
    assert ratios["incremental_vs_full_refresh"] == pytest.approx(
        stages["dbt_incremental"]["node_seconds"] / stages["dbt_full_refresh"]["node_seconds"]
    )


def test_baselines_read_what_their_stage_read(bench_run: tuple[Path, Any]) -> None:
    _, results = bench_run
    stages = results["stages"]
    assert (
        stages["admissions_copy"]["rows"]
        == stages["admissions_to_sql"]["rows"]
        == stages["admissions_load"]["rows"]
    )
    assert (
        stages["vitals_consume_only"]["rows"]
        == stages["vitals_consume_copy"]["rows"]
        == stages["vitals_drain"]["rows"]
        == results["data"]["vitals_messages"]
    )
    # The whole nightly loaded what the stages loaded, source by source.
    loaded = ("patients_load", "admissions_load", "labs_load", "vitals_drain")
    assert stages["nightly_prefect"]["rows"] == sum(stages[name]["rows"] for name in loaded)
    assert set(results["ratios"]) >= {
        "admissions_load_vs_copy",
        "admissions_load_vs_to_sql",
        "vitals_drain_vs_consume_only",
        "vitals_drain_vs_consume_copy",
        "dbt_gold_build_vs_direct_sql",
        "incremental_vs_full_refresh",
        "incremental_vs_full_refresh_wall",
        "prefect_overhead",
        "busy_nightly_vs_prefect_nightly",
    }
    # Without a plain nightly there is no overhead figure, and it says why.
    assert results["ratios"]["prefect_overhead"] == NOT_MEASURED
    assert results["ratios"]["busy_nightly_vs_prefect_nightly"] == NOT_MEASURED


def test_latency_idle_and_busy(bench_run: tuple[Path, Any]) -> None:
    _, results = bench_run
    for mode in ("idle", "busy"):
        run = results["latency"][mode]["100"]
        assert run["sent"] > 0
        # Nothing lost: every message is in raw or in the dead letters.
        assert run["all_accounted"] is True
        assert run["raw_rows"] + run["dead_letters"] == run["sent"]
        # The flow exited 0 after SIGTERM: its last refresh put everything it drained in gold.
        assert run["gold_refreshed_after_last"] is True
        assert run["flow_loaded"] == run["raw_rows"] > 0
        # The alerts view was there on every poll (no alert could be missed for want of it).
        assert run["polls_without_alerts_view"] == 0
        assert run["refresh_cycles"] >= 1 and run["refresh_mean_seconds"] > 0
        assert set(run["raw"]) == set(run["news2_alerts"]) == {"p50", "p95", "p99"}
        assert run["raw"]["p50"] is not None and run["raw"]["p50"] > 0
        assert run["raw"]["p50"] <= run["raw"]["p95"] <= run["raw"]["p99"]
    # A quick run's busy batch is the Prefect nightly itself, and its figures say so.
    assert results["latency"]["busy_nightly"]["same_as"] == "nightly_prefect"
    assert (
        results["latency"]["busy_nightly"]["rows"] == results["stages"]["nightly_prefect"]["rows"]
    )


def test_every_target_reported(bench_run: tuple[Path, Any]) -> None:
    _, results = bench_run
    targets = {t["target"]: t for t in results["targets"]}
    assert set(targets) == TARGETS
    for target in targets.values():
        assert target["verdict"] == "n/a" or target["verdict"].startswith(("yes", "no"))
    # Scale-specific targets are not judged at another scale.
    assert targets["nightly at scale 1"]["met"] is None
    assert targets["peak memory of any process"]["met"] is None
    assert targets["Prefect overhead"]["is"] == NOT_MEASURED


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert percentiles([3.0]) == {"p50": 3.0, "p95": 3.0, "p99": 3.0}
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}


def test_cli_refuses_bad_latency_rates() -> None:
    result = CliRunner().invoke(app, ["bench", "--latency-rates", "fast"])
    assert result.exit_code == 2
    assert "--latency-rates" in result.output
