"""dbt's partial-parse state, kept once per set of ``--vars`` so that no invocation re-parses.

dbt saves what it parsed in ``<target>/partial_parse.msgpack`` and reuses it only when the
next invocation has the same ``--vars`` (and profile and target); otherwise it parses the
whole project again, seconds of CPU. A nightly alternates: its gold build passes
``--vars {"gold_schema": "gold_next"}``, the other steps none, so each switch cost a full
parse. Each variant's state is therefore kept beside dbt's file (``partial_parse.<key>.msgpack``)
and put in place before an invocation with that variant. A new lane starts from the shared
target's states (:func:`seed`); a finished lane's states become the shared ones
(:func:`keep`). dbt still checks every state it is given (project files, profile, vars):
a stale one only costs the full parse it would have cost anyway.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path

PARTIAL_PARSE_FILE = "partial_parse.msgpack"
_DEFAULT_KEY = "default"


def variant_key(args: Sequence[str]) -> str:
    """The partial-parse variant of an invocation: a digest of its ``--vars``, or the default."""
    if "--vars" not in args:
        return _DEFAULT_KEY
    position = list(args).index("--vars") + 1
    if position >= len(args):
        return _DEFAULT_KEY  # dbt refuses the command itself
    return hashlib.sha256(args[position].encode()).hexdigest()[:16]


def _kept(target_path: Path, key: str) -> Path:
    return target_path / f"partial_parse.{key}.msgpack"


def restore(target_path: Path, key: str) -> None:
    """Put the variant's state where dbt reads it (dbt parses in full when there is none)."""
    kept = _kept(target_path, key)
    if kept.exists():
        _copy_atomically(kept, target_path / PARTIAL_PARSE_FILE)
    else:
        (target_path / PARTIAL_PARSE_FILE).unlink(missing_ok=True)


def save(target_path: Path, key: str) -> None:
    """Keep the state dbt just wrote as the variant's."""
    written = target_path / PARTIAL_PARSE_FILE
    if written.exists():
        _copy_atomically(written, _kept(target_path, key))


def seed(lane_target: Path, shared_target: Path) -> None:
    """Give a new lane the shared target's states it does not have yet."""
    for state in shared_target.glob("partial_parse.*.msgpack"):
        if not (lane_target / state.name).exists():
            shutil.copyfile(state, lane_target / state.name)


def keep(lane_target: Path, shared_target: Path) -> None:
    """Make a finished lane's states the shared ones, each replaced atomically."""
    states = list(lane_target.glob("partial_parse.*.msgpack"))
    if states:
        shared_target.mkdir(parents=True, exist_ok=True)
    for state in states:
        _copy_atomically(state, shared_target / state.name)


def _copy_atomically(source: Path, destination: Path) -> None:
    # Concurrent lanes may finish together: a reader sees the old file or the new, never half.
    staged = destination.with_name(f".{destination.name}.{source.parent.parent.name}")
    shutil.copyfile(source, staged)
    staged.replace(destination)
