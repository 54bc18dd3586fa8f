"""Loading a folder of landed files with dlt, exactly once per file content."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import dlt
import psycopg
from dlt.common.runtime import telemetry
from dlt.common.runtime.run_context import active as active_run_context

from carehouse.core.database import connect
from carehouse.core.settings import Settings
from carehouse.ingest import ledger
from carehouse.ingest.summary import FileSummary, LoadSummary
from dlt_sources.files import (
    FileBatch,
    FileChangedError,
    FileOutcome,
    LandedFile,
    discover,
)

log = logging.getLogger(__name__)

_E = TypeVar("_E", bound=BaseException)

# COPY jobs dlt runs at once; Postgres parses each COPY on one core.
LOAD_WORKERS = 4


@dataclass(frozen=True)
class FileSource:
    """A source that arrives as files in a landing folder."""

    name: str
    dataset: str  # raw schema
    table: str  # the raw table the dlt source fills
    quarantine_table: str  # in the quarantine schema
    landing_subdir: str
    pattern: str | tuple[str, ...]  # glob(s) of the source's files in its landing folder
    dlt_source: Callable[[FileBatch], Any]  # builds the dlt source for a batch
    # Why a file's name makes it unloadable (the dlt source then quarantines it whole), or
    # None. Such a rejection is about the name, not the content: a copy of the same bytes
    # under a usable name later replaces it instead of being skipped as already seen.
    name_error: Callable[[str], str | None] | None = None
    # The raw column holding the ledger's file_id (CSV sources), or None when raw rows
    # carry their `_dlt_load_id` instead (labs).
    file_key: str | None = None

    def name_ok(self, name: str) -> bool:
        """True unless the source rejects files by this name."""
        return self.name_error is None or self.name_error(name) is None


def configure_dlt() -> None:
    """Keep dlt off the network (no telemetry, even unset in the environment) and tidy."""
    dlt.config["runtime.dlthub_telemetry"] = False
    # Loaded part files are a copy of what is now in raw: do not keep them.
    dlt.config["load.delete_completed_jobs"] = True
    # The runtime configuration was resolved when dlt was imported: resolve it again.
    telemetry.stop_telemetry()
    active_run_context().initialize_runtime()


def pipeline_for(settings: Settings, source: FileSource) -> dlt.Pipeline:
    """The source's dlt pipeline, as the loader role, with its state under CAREHOUSE_HOME."""
    return dlt.pipeline(
        pipeline_name=f"carehouse_{source.name}",
        pipelines_dir=str(settings.home / "dlt"),
        destination=dlt.destinations.postgres(
            credentials=settings.dsn("loader"), create_indexes=False
        ),
        dataset_name=source.dataset,
    )


def load_files(settings: Settings, source: FileSource, path: Path | None = None) -> LoadSummary:
    """Load the files at `path` (default: the source's landing folder) not loaded before."""
    started = time.monotonic()
    configure_dlt()
    landing = settings.landing_dir / source.landing_subdir
    if path is None and not landing.exists():
        # Nothing has arrived from this source yet: an empty load, not an error. A --path
        # that does not exist is still an error (discover raises).
        files = []
    else:
        files = discover(path or landing, source.pattern)
    with (
        connect(settings, "loader", autocommit=True) as conn,
        ledger.exclusive(conn, source.name),
    ):
        ledger.ensure_tables(conn, source.dataset, source.quarantine_table)
        pipeline = pipeline_for(settings, source)
        _recover(conn, pipeline, source)
        known = ledger.loaded_files(conn, source.dataset, source.name, {f.sha256 for f in files})
        to_load, skipped, superseded = _partition(source, files, known)
        load_id: str | None = None
        outcomes: list[FileSummary] = []
        if to_load:
            load_id, outcomes = _load(conn, pipeline, settings, source, to_load, superseded)
    summaries = {f.name: f for f in [*outcomes, *skipped]}
    summary = LoadSummary.of(
        source.name, [summaries[f.name] for f in files], load_id, time.monotonic() - started
    )
    log.info("%s", summary.one_line())
    return summary


def _partition(
    source: FileSource, files: list[LandedFile], known: dict[str, str]
) -> tuple[list[LandedFile], list[FileSummary], list[str]]:
    """Split files into those to read and those skipped as already loaded or already queued.

    Also returns the hashes of earlier whole-file rejections for a bad name that a copy
    under a usable name now replaces.
    """
    to_load: list[LandedFile] = []
    skipped: list[FileSummary] = []
    superseded: list[str] = []
    first_seen = dict(known)
    # Of several copies of one content, the first with a usable name is the one read.
    for file in sorted(files, key=lambda f: not source.name_ok(f.name)):
        seen = first_seen.get(file.sha256)
        if (
            seen is not None
            and seen == known.get(file.sha256)
            and not source.name_ok(seen)
            and source.name_ok(file.name)
        ):
            superseded.append(file.sha256)
            seen = None
        if seen is not None:
            note = f"same content as {seen}"
            skipped.append(
                FileSummary(file.name, file.sha256, file.size_bytes, "skipped", note=note)
            )
        else:
            first_seen[file.sha256] = file.name
            to_load.append(file)
    return sorted(to_load, key=lambda f: f.name), skipped, superseded


def _load(
    conn: psycopg.Connection,
    pipeline: dlt.Pipeline,
    settings: Settings,
    source: FileSource,
    files: list[LandedFile],
    superseded: list[str],
) -> tuple[str, list[FileSummary]]:
    work_root = settings.home / "dlt" / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    # Part files are hard-linked into dlt's package: the work folder must share its disk.
    with tempfile.TemporaryDirectory(dir=work_root) as work_dir:
        file_ids = ledger.allocate_file_ids(conn, source.dataset, len(files))
        batch = FileBatch(
            files,
            Path(work_dir),
            datetime.now(UTC).replace(microsecond=0),
            {file.sha256: file_id for file, file_id in zip(files, file_ids, strict=True)},
        )
        try:
            extracted = pipeline.extract(source.dlt_source(batch))
            (load_id,) = extracted.loads_ids
            ledger.prepare(
                conn,
                dataset=source.dataset,
                quarantine_table=source.quarantine_table,
                source=source.name,
                load_id=load_id,
                outcomes=batch.outcomes.values(),
                superseded=superseded,
                rejects=batch.spooled_rejects(),
                ingested_at=batch.ingested_at,
                file_ids=batch.file_ids,
            )
            pipeline.normalize()
            pipeline.load(workers=LOAD_WORKERS, raise_on_failed_jobs=True)
            ledger.commit(
                conn, dataset=source.dataset, source=source.name, load_id=load_id, files=len(files)
            )
        except BaseException as err:
            try:
                _recover(conn, pipeline, source)
            except Exception as cleanup:  # noqa: BLE001 - the load's own error is the one to raise
                err.add_note(f"rolling back failed too, the next load retries it: {cleanup!r}")
            # dlt wraps what a source raises twice over; the caller needs the reason itself.
            changed = _cause(err, FileChangedError)
            if changed is not None and changed is not err:
                raise FileChangedError(str(changed)) from err
            raise
        finally:
            batch.close_spool()
    return load_id, [_file_summary(outcome) for outcome in batch.outcomes.values()]


def _cause(err: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of type `kind` in the chain of causes of `err`."""
    current: BaseException | None = err
    while current is not None:
        if isinstance(current, kind):
            return current
        current = current.__cause__
    return None


def _recover(conn: psycopg.Connection, pipeline: dlt.Pipeline, source: FileSource) -> None:
    """Undo whatever an interrupted load left: local packages, uncommitted rows."""
    if pipeline.has_pending_data:
        log.warning("%s: discarding an interrupted load's local packages", source.name)
        pipeline.abort_packages()
    pending = ledger.pending_loads(conn, source.dataset, source.name)
    if pending:
        deleted = ledger.roll_back(
            conn,
            dataset=source.dataset,
            table=source.table,
            quarantine_table=source.quarantine_table,
            source=source.name,
            load_ids=pending,
            file_key=source.file_key,
        )
        log.warning(
            "%s: rolled back uncommitted loads %s (%d raw rows)", source.name, pending, deleted
        )


def _file_summary(outcome: FileOutcome) -> FileSummary:
    file = outcome.file
    return FileSummary(
        name=file.name,
        sha256=file.sha256,
        size_bytes=file.size_bytes,
        status="rejected" if outcome.rejected else "loaded",
        received=outcome.received,
        loaded=outcome.loaded,
        quarantined=dict(sorted(outcome.quarantined.items())),
        blank_lines=outcome.blank_lines,
        new_columns=outcome.new_columns,
        note=outcome.rejected,
    )


def csv_file_source(
    names: ModuleType,
    dlt_source: Callable[[FileBatch], Any],
    name_error: Callable[[str], str | None] | None = None,
) -> FileSource:
    """The `FileSource` of a CSV source package, from the constants of its `settings` module.

    `names` defines SOURCE, DATASET, TABLE, QUARANTINE_TABLE, LANDING_SUBDIR, FILE_GLOB and
    FILE_KEY.
    """
    return FileSource(
        name=names.SOURCE,
        dataset=names.DATASET,
        table=names.TABLE,
        quarantine_table=names.QUARANTINE_TABLE,
        landing_subdir=names.LANDING_SUBDIR,
        pattern=names.FILE_GLOB,
        dlt_source=dlt_source,
        name_error=name_error,
        file_key=names.FILE_KEY,
    )
