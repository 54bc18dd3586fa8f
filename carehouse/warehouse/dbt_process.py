"""One dbt command in a process of its own, forked from a server that has imported dbt.

Every dbt command runs in a fresh process: dbt keeps global state (flags, adapter registry,
event logger) that must not carry from one command to the next, or into the caller. But
importing dbt is most of a small command's cost (about 2.5 s of CPU of the 4 a one-model
run takes; a nightly runs four commands). So the processes are forked from a
multiprocessing *forkserver* that imports dbt once (its preload, started on the first
command): each fork begins where a new interpreter would be after ``import dbt``, then takes
the command's environment and working directory, and runs dbt's command line. No dbt module
reads the environment when it is imported, so nothing of the server's leaks into a command.
Output (stdout and stderr) comes back through a pipe, line by line, as from a subprocess.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from multiprocessing.connection import Connection
from types import TracebackType

# What the server imports once: dbt's command line and the Postgres adapter it loads.
PRELOAD = ("dbt.cli.main", "dbt.adapters.postgres")
_READ_BYTES = 1 << 16


def _context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def _run(args: Sequence[str], env: Mapping[str, str], cwd: str, output: Connection) -> None:
    """In the forked process: become the command's process, then run dbt (it exits)."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    os.dup2(output.fileno(), sys.stdout.fileno())
    os.dup2(output.fileno(), sys.stderr.fileno())
    output.close()
    from dbt.cli.main import cli

    # Exits with dbt's own code (0 success, 1 a node failed, 2 dbt could not run).
    cli.main(args=list(args), prog_name="dbt")


class DbtProcess:
    """A running dbt command: its output lines as they come, then its exit code."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], cwd: str) -> None:
        context = _context()
        reader, writer = context.Pipe(duplex=False)
        self._reader = reader
        self._process = context.Process(
            target=_run, args=(list(args), dict(env), cwd, writer), name="dbt"
        )
        self._process.start()
        writer.close()  # the child holds the only writer: its exit ends the output

    def __enter__(self) -> DbtProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # As a subprocess's context manager does: never leave the command running unseen.
        self._process.join()
        self._reader.close()

    def lines(self) -> Iterator[str]:
        """The command's output, line by line (undecodable bytes replaced)."""
        pending = b""
        while chunk := os.read(self._reader.fileno(), _READ_BYTES):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode("utf-8", errors="replace")
        if pending:
            yield pending.decode("utf-8", errors="replace")

    def wait(self) -> int:
        """The command's exit code (1 when dbt died of an exception, negative for a signal)."""
        self._process.join()
        code = self._process.exitcode
        assert code is not None
        return code
