"""dbt's partial-parse state kept per `--vars`: a nightly's steps never re-parse the project."""

from __future__ import annotations

from pathlib import Path

from carehouse.core.settings import Settings
from carehouse.warehouse import parse_state
from carehouse.warehouse.dbt import dbt_paths, remove_lane, run_dbt

GOLD_NEXT_VARS = ["--vars", '{"gold_schema": "gold_next"}']
FULL_PARSE = "Unable to do partial parsing"


def test_each_vars_variant_has_a_key_of_its_own() -> None:
    assert parse_state.variant_key(["build"]) == parse_state.variant_key(["run", "-s", "x"])
    gold = parse_state.variant_key(["build", *GOLD_NEXT_VARS])
    assert gold != parse_state.variant_key(["build"])
    assert gold == parse_state.variant_key(["run", *GOLD_NEXT_VARS, "--full-refresh"])
    assert gold != parse_state.variant_key(["build", "--vars", '{"gold_schema": "gold"}'])


def test_a_variant_gets_back_its_own_state(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "lane" / "target"
    target.mkdir(parents=True)
    dbt_file = target / parse_state.PARTIAL_PARSE_FILE
    dbt_file.write_bytes(b"default state")
    parse_state.save(target, "default")
    dbt_file.write_bytes(b"gold state")
    parse_state.save(target, "gold")

    parse_state.restore(target, "default")
    assert dbt_file.read_bytes() == b"default state"
    parse_state.restore(target, "gold")
    assert dbt_file.read_bytes() == b"gold state"
    # A variant never seen: dbt must parse in full, not reuse another variant's state.
    parse_state.restore(target, "new")
    assert not dbt_file.exists()


def test_a_new_lane_starts_from_the_states_the_last_finished_lane_kept(tmp_path: Path) -> None:
    shared, first, second = tmp_path / "shared", tmp_path / "first", tmp_path / "second"
    first.mkdir()
    (first / "partial_parse.default.msgpack").write_bytes(b"first default")
    (first / "partial_parse.gold.msgpack").write_bytes(b"first gold")
    parse_state.keep(first, shared)
    second.mkdir()
    (second / "partial_parse.gold.msgpack").write_bytes(b"second gold, already here")
    parse_state.seed(second, shared)
    assert (second / "partial_parse.default.msgpack").read_bytes() == b"first default"
    assert (second / "partial_parse.gold.msgpack").read_bytes() == b"second gold, already here"


def _parsed_in_full(settings: Settings, args: list[str], lane: str) -> bool:
    result = run_dbt(settings, ["parse", *args], lane=lane)
    log = (result.log_path / "dbt.log").read_text(encoding="utf-8")
    # Each invocation appends to the lane's log: only this one's lines count.
    return FULL_PARSE in log.rsplit("Running with dbt=", 1)[-1]


def test_a_step_after_one_with_other_vars_does_not_parse_again(settings: Settings) -> None:
    lane = "parse-state"
    shared = dbt_paths(settings)[0]
    for stale in shared.glob("partial_parse*.msgpack"):
        stale.unlink()
    assert _parsed_in_full(settings, [], lane)
    assert _parsed_in_full(settings, GOLD_NEXT_VARS, lane)  # a variant never parsed before
    # As a nightly's run-log refresh after its gold build: the default state is back.
    assert not _parsed_in_full(settings, [], lane)
    remove_lane(settings, lane)
    assert {path.name for path in shared.glob("partial_parse.*.msgpack")} == {
        f"partial_parse.{parse_state.variant_key([])}.msgpack",
        f"partial_parse.{parse_state.variant_key(GOLD_NEXT_VARS)}.msgpack",
    }
