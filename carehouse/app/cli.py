"""The `carehouse` command line: services, connection strings, loads and the main job."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from carehouse.core.database import DatabaseUnreachable
from carehouse.core.environment import export_lines, tool_environment
from carehouse.core.settings import ROLES, ServiceNotRunning, Settings, get_settings
from carehouse.ingest.errors import LoadInProgress
from carehouse.ingest.vitals.errors import DrainError
from carehouse.services.process import ServiceStartError
from dlt_sources.files import FileChangedError

if TYPE_CHECKING:
    from carehouse.ingest.summary import LoadSummary

app = typer.Typer(
    help="carehouse: a Postgres-native ELT warehouse for hospital data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
load_app = typer.Typer(help="Load one batch source into raw, by hand.", no_args_is_help=True)
app.add_typer(load_app, name="load")
bench_app = typer.Typer(help="Measure throughput, latency and memory against in-run baselines.")
app.add_typer(bench_app, name="bench")

# Failures a user can act on: one clear line and a non-zero exit, not a traceback.
EXPECTED_FAILURES = (
    DatabaseUnreachable,
    ServiceNotRunning,
    ServiceStartError,
    LoadInProgress,
    FileChangedError,
    DrainError,
)


def _settings() -> Settings:
    return get_settings()


def _fail(err: Exception) -> typer.Exit:
    typer.echo(f"carehouse: {err}", err=True)
    return typer.Exit(code=2)


@app.command()
def up() -> None:
    """Start the embedded services that are not configured externally, and bootstrap."""
    from carehouse.services.lifecycle import status
    from carehouse.services.lifecycle import up as start_services

    try:
        ready = start_services(_settings())
    except EXPECTED_FAILURES as err:
        raise _fail(err) from err
    for row in status(ready):
        typer.echo(_status_line(row.name, row.address, row.up, row.embedded))


@app.command()
def down() -> None:
    """Stop only what `carehouse up` started."""
    from carehouse.services.lifecycle import down as stop_services

    stopped = stop_services(_settings())
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status() -> None:
    """Each service, its address, up or down."""
    from carehouse.services.lifecycle import status as service_status

    rows = service_status(_settings())
    for row in rows:
        typer.echo(_status_line(row.name, row.address, row.up, row.embedded))
    if not all(row.up for row in rows):
        raise typer.Exit(code=1)


def _status_line(name: str, address: str, is_up: bool, embedded: bool) -> str:
    where = "embedded" if embedded else "external"
    return f"{name:<15} {'up' if is_up else 'down':<5} {where:<9} {address}"


@app.command()
def env() -> None:
    """Print `export` lines for dbt, soda, psql and prefect: eval "$(carehouse env)"."""
    try:
        typer.echo(export_lines(tool_environment(_settings())))
    except EXPECTED_FAILURES as err:
        raise _fail(err) from err


@app.command()
def dsn(
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "admin",
) -> None:
    """Print the connection string of one role."""
    known = next((name for name in ROLES if name == role), None)
    if known is None:
        raise _fail(ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}"))
    try:
        typer.echo(_settings().dsn(known))
    except EXPECTED_FAILURES as err:
        raise _fail(err) from err


@load_app.command("admissions")
def load_admissions(
    path: Annotated[str | None, typer.Option(help="A CSV file or a folder of them.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Load admissions CSV files from the landing folder (or --path) into raw."""
    from carehouse.ingest.admissions import load_admissions as run_load

    _load(run_load, path, as_json)


demo_app = typer.Typer(help="A simulated hospital: every feed, deterministic for a seed.")
app.add_typer(demo_app, name="demo")


@demo_app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 42,
    end_date: Annotated[str | None, typer.Option(help="Last day, ISO (default yesterday).")] = None,
    days: Annotated[int, typer.Option(help="Days of data ending at --end-date.")] = 30,
    scale: Annotated[
        float, typer.Option(help="1.0 = 1M admissions, 1M labs, 1M vitals a year.")
    ] = 0.1,
    vitals: Annotated[bool, typer.Option(help="Also send vital signs to Kafka.")] = True,
) -> None:
    """Write admissions, patient-master and lab files, and send vital signs to Kafka."""
    if ctx.invoked_subcommand is not None:
        return
    from datetime import date, timedelta

    from carehouse.demo.hospital import generate_hospital
    from carehouse.services.lifecycle import up as start_services

    last = date.fromisoformat(end_date) if end_date else date.today() - timedelta(days=1)
    try:
        settings = start_services(_settings()) if vitals else _settings()
        output = generate_hospital(
            settings, seed=seed, end_date=last, days=days, scale=scale, vitals=vitals
        )
    except EXPECTED_FAILURES as err:
        raise _fail(err) from err
    typer.echo(f"{output.one_line()} (landing folder {settings.landing_dir})")


@demo_app.command("vitals")
def demo_vitals(
    rate: Annotated[float, typer.Option(help="Messages per second.")] = 100.0,
    duration: Annotated[float, typer.Option(help="Seconds to stream.")] = 60.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """Stream vital signs like bedside monitors, stamped for latency measurements."""
    from carehouse.demo.vitals import stream_vitals

    try:
        sent = stream_vitals(_settings(), rate=rate, duration=duration, seed=seed)
    except EXPECTED_FAILURES as err:
        raise _fail(err) from err
    typer.echo(f"streamed {sent:,} vital-sign messages to {_settings().vitals_topic}")


drain_app = typer.Typer(help="Drain a stream into raw, by hand.", no_args_is_help=True)
app.add_typer(drain_app, name="drain")


@drain_app.command("vitals")
def drain_vitals(
    until_caught_up: Annotated[
        bool, typer.Option("--until-caught-up", help="Stop once every partition is drained.")
    ] = False,
    duration: Annotated[
        float | None, typer.Option(help="Drain continuously for S seconds (default: forever).")
    ] = None,
    scale_out: Annotated[
        bool, typer.Option("--scale-out", help="Join the consumer group beside other drains.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Drain the vital-signs topic into raw_vitals, exactly once (Ctrl-C stops cleanly)."""
    from carehouse.ingest.vitals.drain import drain_vitals as run_drain

    if until_caught_up and duration is not None:
        raise _fail(ValueError("choose --until-caught-up or --duration, not both"))
    try:
        summary = run_drain(
            _settings(), until_caught_up=until_caught_up, duration=duration, scale_out=scale_out
        )
    except EXPECTED_FAILURES as err:
        raise _fail(err) from err
    typer.echo(json.dumps(summary.to_json()) if as_json else summary.one_line())


@load_app.command("patients")
def load_patients(
    path: Annotated[str | None, typer.Option(help="A CSV file or a folder of them.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Load patient-master snapshots from the landing folder (or --path) into raw."""
    from carehouse.ingest.patients import load_patients as run_load

    _load(run_load, path, as_json)


@load_app.command("labs")
def load_labs(
    path: Annotated[str | None, typer.Option(help="An NDJSON/Bundle file or a folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Load FHIR R4 Observation files from the landing folder (or --path) into raw."""
    from carehouse.ingest.labs import load_labs as run_load

    _load(run_load, path, as_json)


def _load(
    run_load: Callable[[Settings, Path | None], LoadSummary], path: str | None, as_json: bool
) -> None:
    settings = _settings()
    try:
        summary = run_load(settings, Path(path) if path else None)
    except EXPECTED_FAILURES as err:
        raise _fail(err) from err
    typer.echo(json.dumps(summary.to_json()) if as_json else summary.one_line())


@app.command()
def run(
    days: Annotated[int, typer.Option(help="Demo days to generate when landing is empty.")] = 30,
    scale: Annotated[float, typer.Option(help="Demo scale (1.0 = 1M admissions a year).")] = 0.1,
) -> None:
    """The main job: start services, make demo data if needed, run the pipeline, summarise."""
    from carehouse.app.runner import main_job

    try:
        code = main_job(_settings(), demo_days=days, demo_scale=scale)
    except EXPECTED_FAILURES as err:
        raise _fail(err) from err
    sys.exit(code)


def _flow(name: str, **parameters: Any) -> None:
    from carehouse.app.runner import flow_job
    from carehouse.quality.freshness import StaleGold
    from carehouse.quality.gates import GateFailed
    from carehouse.warehouse.dbt import DbtError

    try:
        code = flow_job(_settings(), name, **parameters)
    except (*EXPECTED_FAILURES, GateFailed, DbtError, StaleGold) as err:
        # The message names the failed gate's checks, the failed dbt nodes or the stale
        # tables; the run's record and reports hold the rest.
        raise _fail(err) from err
    sys.exit(code)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not a YYYY-MM-DD date: {value!r}") from None


@app.command()
def nightly(
    business_date: Annotated[
        str | None, typer.Option("--date", help="Business date (default: yesterday).")
    ] = None,
) -> None:
    """Run the nightly flow here, for one business date (a failed gate exits non-zero)."""
    _flow("nightly", business_date=_day(business_date) if business_date else None)


@app.command()
def backfill(
    start_date: Annotated[str, typer.Argument(help="First business date, YYYY-MM-DD.")],
    end_date: Annotated[str, typer.Argument(help="Last business date, YYYY-MM-DD.")],
) -> None:
    """Run the nightly for every date of a range, in order (safe to repeat)."""
    _flow("backfill", start_date=_day(start_date), end_date=_day(end_date))


@app.command("full-refresh")
def full_refresh() -> None:
    """Rebuild silver and gold from raw (through gold_next, the gates and publish)."""
    _flow("full-refresh")


@app.command()
def vitals(
    duration: Annotated[
        float | None, typer.Option(help="Seconds to run (default: until Ctrl-C).")
    ] = None,
    until_caught_up: Annotated[bool, typer.Option(help="Stop once the topic is drained.")] = False,
) -> None:
    """Run the vitals stream flow here: drain continuously, refresh gold's NEWS2 alerts."""
    _flow("vitals", duration=duration, until_caught_up=until_caught_up)


@bench_app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    scale: Annotated[
        float, typer.Option(help="1.0 = 1M admissions, 1M labs, 1M vitals (0.01 to 10).")
    ] = 0.1,
    latency_rates: Annotated[
        str, typer.Option(help="Vitals rates (msg/s) for the latency runs, comma-separated.")
    ] = "100,1000,10000",
    latency_seconds: Annotated[
        float, typer.Option(help="Seconds each latency rate streams.")
    ] = 20.0,
    keep_databases: Annotated[
        bool, typer.Option("--keep-databases", help="Keep the carehouse_bench_* databases.")
    ] = False,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="One whole nightly, not three: no plain nightly, no Prefect overhead"
            " (marked 'not measured: quick run'); the Prefect nightly is the busy batch.",
        ),
    ] = False,
) -> None:
    """Every nightly stage beside its baseline, Prefect's overhead, vitals latency.

    Writes results.json, results.md and bench.png under $CAREHOUSE_HOME/bench/<timestamp>/.
    """
    if ctx.invoked_subcommand is not None:
        return
    from datetime import datetime

    from carehouse.bench.suite import run_bench
    from carehouse.services.lifecycle import up as start_services

    try:
        rates = tuple(float(rate) for rate in latency_rates.split(",") if rate.strip())
    except ValueError as err:
        raise _fail(
            ValueError(f"--latency-rates: not a list of numbers: {latency_rates!r}")
        ) from err
    if not rates or any(rate <= 0 for rate in rates) or latency_seconds <= 0:
        raise _fail(ValueError("latency rates and seconds must be positive"))
    try:
        settings = start_services(_settings())
        out_dir = settings.home / "bench" / datetime.now().strftime("%Y%m%dT%H%M%S")
        run_bench(
            settings,
            scale=scale,
            out_dir=out_dir,
            rates=rates,
            latency_seconds=latency_seconds,
            keep_databases=keep_databases,
            quick=quick,
            log=typer.echo,
        )
    except EXPECTED_FAILURES as err:
        raise _fail(err) from err
    typer.echo((out_dir / "results.md").read_text())
    typer.echo(f"figures: {out_dir / 'results.json'}; plot: {out_dir / 'bench.png'}")


@bench_app.command("ingest")
def bench_ingest(
    scale: Annotated[float, typer.Option(help="1.0 = 1M admissions a year.")] = 0.1,
) -> None:
    """Loader throughput and peak memory beside plain COPY, in a separate database."""
    from datetime import datetime

    from carehouse.bench.ingest import bench_ingest as run_bench
    from carehouse.bench.ingest import render
    from carehouse.services.lifecycle import up as start_services

    try:
        settings = start_services(_settings())
        out_dir = settings.home / "bench" / datetime.now().strftime("%Y%m%dT%H%M%S")
        results = run_bench(settings, scale=scale, out_dir=out_dir)
    except EXPECTED_FAILURES as err:
        raise _fail(err) from err
    typer.echo(render(results))
    typer.echo(f"figures: {out_dir / 'ingest.json'}")


@bench_app.command("incremental")
def bench_incremental(
    scale: Annotated[float, typer.Option(help="1.0 = 1M lab results and 1M vitals a year.")] = 1.0,
) -> None:
    """A year of labs and vitals, a full refresh of the facts, then one new day incrementally."""
    from datetime import datetime

    from carehouse.bench.warehouse import bench_incremental as run_bench
    from carehouse.services.lifecycle import up as start_services

    try:
        settings = start_services(_settings())
        out_dir = settings.home / "bench" / datetime.now().strftime("%Y%m%dT%H%M%S")
        figures = run_bench(settings, scale=scale, out_dir=out_dir)
    except EXPECTED_FAILURES as err:
        raise _fail(err) from err
    verdict = "met" if figures.ratio <= 0.15 else "missed"
    full, day = figures.full_refresh, figures.incremental
    typer.echo(
        f"full refresh over {figures.rows_before:,} rows: nodes {full.node_seconds:.1f}s, "
        f"wall {full.wall_seconds:.1f}s; one new day ({figures.rows_new_day:,} rows): nodes "
        f"{day.node_seconds:.1f}s, wall {day.wall_seconds:.1f}s; warehouse work "
        f"{figures.ratio:.1%} of a full refresh (target <= 15%: {verdict}), wall "
        f"{figures.wall_ratio:.1%} with dbt start-up; incremental equals a full refresh: "
        f"{figures.incremental_equals_full_refresh}"
    )
    typer.echo(f"figures: {out_dir / 'incremental.json'}")


if __name__ == "__main__":
    app()
