"""`carehouse bench` figures: ratios, targets met or missed by how much, table and plot.

Targets are reported, never asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
GIB_MIB = 1024.0
NIGHTLY_SECONDS_AT_SCALE_1 = 120.0
SCALE_10_FACTOR = 12.0


def derive(figures: dict[str, Any]) -> None:
    """Add records/s and MB/s to one stage's figures."""
    seconds = float(figures["seconds"])
    figures["records_per_second"] = figures["rows"] / seconds if seconds else 0.0
    size = figures.get("bytes")
    figures["mb_per_second"] = size / MIB / seconds if size is not None and seconds else None


def measured(figures: dict[str, Any]) -> bool:
    """False for a stage a quick run skipped (it carries a note instead of figures)."""
    return figures.get("measured", True) is not False


def _rate(results: dict[str, Any], stage: str) -> float:
    return float(results["stages"][stage]["records_per_second"])


def _seconds(results: dict[str, Any], stage: str) -> float:
    return float(results["stages"][stage]["seconds"])


def _node_seconds(results: dict[str, Any], stage: str) -> float:
    return float(results["stages"][stage]["node_seconds"])


def _ratio(results: dict[str, Any], stages: tuple[str, ...], value: Any) -> float | str:
    """`value()` when every stage it reads was measured, else the skipped one's note."""
    for stage in stages:
        figures = results["stages"][stage]
        if not measured(figures):
            return str(figures["note"])
    return float(value())


def ratios(results: dict[str, Any]) -> dict[str, float | str]:
    """Every stage against its baseline, measured in this run ("not measured: ..." if not)."""
    busy = results["latency"]["busy_nightly"]
    return {
        "admissions_load_vs_copy": _rate(results, "admissions_load")
        / _rate(results, "admissions_copy"),
        "admissions_load_vs_to_sql": _rate(results, "admissions_load")
        / _rate(results, "admissions_to_sql"),
        "admissions_to_sql_vs_copy": _rate(results, "admissions_to_sql")
        / _rate(results, "admissions_copy"),
        "vitals_drain_vs_consume_only": _rate(results, "vitals_drain")
        / _rate(results, "vitals_consume_only"),
        "vitals_drain_vs_consume_copy": _rate(results, "vitals_drain")
        / _rate(results, "vitals_consume_copy"),
        "dbt_gold_build_vs_direct_sql": _seconds(results, "dbt_build_gold")
        / _seconds(results, "gold_sql_direct"),
        # Node time, as `carehouse bench incremental` reports it; the wall time of the two
        # dbt processes (start-up included) beside it.
        "incremental_vs_full_refresh": _node_seconds(results, "dbt_incremental")
        / _node_seconds(results, "dbt_full_refresh"),
        "incremental_vs_full_refresh_wall": _seconds(results, "dbt_incremental")
        / _seconds(results, "dbt_full_refresh"),
        "prefect_overhead": _ratio(
            results,
            ("nightly_prefect", "nightly_plain"),
            lambda: (
                (_seconds(results, "nightly_prefect") - _seconds(results, "nightly_plain"))
                / _seconds(results, "nightly_prefect")
            ),
        ),
        # A quick run's busy nightly is the Prefect nightly itself: nothing to compare.
        "busy_nightly_vs_prefect_nightly": (
            str(results["stages"]["nightly_plain"]["note"])
            if "same_as" in busy
            else float(busy["seconds"]) / _seconds(results, "nightly_prefect")
        ),
    }


def _target(
    name: str, wanted: str, value: float | None, met: bool | None, shown: str, miss: str = ""
) -> dict[str, Any]:
    if met is None:
        verdict = "n/a"
    elif met:
        verdict = "yes"
    else:
        verdict = f"no: {miss}" if miss else "no"
    return {"target": name, "wanted": wanted, "value": value, "is": shown, "met": met,
            "verdict": verdict}  # fmt: skip


def _at_least(name: str, wanted: str, value: float, minimum: float, shown: str) -> dict[str, Any]:
    return _target(name, wanted, value, value >= minimum, shown, f"{value / minimum:.0%} of target")


def _at_most(
    name: str, wanted: str, value: float | None, maximum: float, shown: str
) -> dict[str, Any]:
    if value is None:
        return _target(name, wanted, None, False, "nothing measured", "no sample")
    return _target(
        name, wanted, value, value <= maximum, shown, f"{value / maximum:.1f}x the limit"
    )


def targets(results: dict[str, Any], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target of issue 7: met, missed by how much, or not applicable at this scale."""
    r = results["ratios"]
    scale = float(results["scale"])
    drain, labs = _rate(results, "vitals_drain"), _rate(results, "labs_load")
    found = [
        _at_least("admissions load vs COPY", ">= 0.5x", r["admissions_load_vs_copy"], 0.5,
                  f"{r['admissions_load_vs_copy']:.2f}x"),
        _at_least("vitals drain", ">= 100,000 msg/s", drain, 100_000, f"{drain:,.0f}/s"),
        _at_least("labs load", ">= 50,000 obs/s", labs, 50_000, f"{labs:,.0f}/s"),
    ]  # fmt: skip
    for mode, limit in (("idle", 5.0), ("busy", 10.0)):
        run = results["latency"].get(mode, {}).get("1000")
        p95 = run["news2_alerts"]["p95"] if run else None
        wanted = f"p95 <= {limit:g} s at 1,000 msg/s"
        if run is None:
            found.append(_target(f"produce -> news2_alerts ({mode})", wanted, None, None,
                                 "rate not run"))  # fmt: skip
        else:
            found.append(_at_most(f"produce -> news2_alerts ({mode})", wanted, p95, limit,
                                  f"{p95:.1f} s" if p95 is not None else "-"))  # fmt: skip
    nightly = _seconds(results, "nightly_prefect")
    if scale == 1:
        found.append(_at_most("nightly at scale 1", "<= 120 s on 2 cores", nightly,
                              NIGHTLY_SECONDS_AT_SCALE_1, f"{nightly:.0f} s"))  # fmt: skip
    else:
        found.append(_target("nightly at scale 1", "<= 120 s on 2 cores", nightly, None,
                             f"{nightly:.0f} s at scale {scale:g}"))  # fmt: skip
    found.append(_scale_10(results, history))
    found.append(_at_most("incremental day vs full refresh", "<= 15% (dbt node time)",
                          r["incremental_vs_full_refresh"], 0.15,
                          f"{r['incremental_vs_full_refresh']:.0%}"
                          f" (wall {r['incremental_vs_full_refresh_wall']:.0%})"))  # fmt: skip
    overhead = r["prefect_overhead"]
    if isinstance(overhead, str):
        found.append(_target("Prefect overhead", "<= 5% of the nightly", None, None, overhead))
    else:
        found.append(_at_most("Prefect overhead", "<= 5% of the nightly", overhead, 0.05,
                              f"{overhead:.1%}"))  # fmt: skip
    peak = max_peak_mib(results)
    wanted = "<= 1 GiB at scale 10"
    if scale == 10:
        found.append(
            _at_most("peak memory of any process", wanted, peak, GIB_MIB, f"{peak:.0f} MiB")
        )
    else:
        found.append(_target("peak memory of any process", wanted, peak, None,
                             f"{peak:.0f} MiB at scale {scale:g}"))  # fmt: skip
    return found


def _scale_10(results: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    by_scale = {float(h["scale"]): h for h in [*history, results]}
    wanted = "scale 10 <= 12x scale 1"
    if 1.0 not in by_scale or 10.0 not in by_scale:
        return _target("nightly scale 10 vs 1", wanted, None, None, "needs runs at 1 and 10")
    factor = _seconds(by_scale[10.0], "nightly_prefect") / _seconds(
        by_scale[1.0], "nightly_prefect"
    )
    return _at_most("nightly scale 10 vs 1", wanted, factor, SCALE_10_FACTOR, f"{factor:.1f}x")


def max_peak_mib(results: dict[str, Any]) -> float:
    """The largest process seen: any stage, or a dbt it started."""
    peaks = [
        max(float(s["peak_rss_mib"]), float(s.get("peak_rss_children_mib", 0.0)))
        for s in results["stages"].values()
        if measured(s)
    ]
    return max(peaks, default=0.0)


def history(bench_dir: Path, exclude: Path) -> list[dict[str, Any]]:
    """The latest earlier complete result per scale, for the plot and the scale target."""
    latest: dict[float, dict[str, Any]] = {}
    for path in sorted(bench_dir.glob("*/results.json")):
        if path.parent == exclude:
            continue
        data: dict[str, Any] = json.loads(path.read_text())
        if "stages" in data and "ratios" in data:
            latest[float(data["scale"])] = data
    return [latest[s] for s in sorted(latest)]


def markdown(results: dict[str, Any]) -> str:
    """The table docs/performance.md shows: stages, ratios, latency, targets."""
    machine = results["machine"]
    lines = [
        f"`carehouse bench --scale {results['scale']:g}`, {results['at']}: "
        f"{machine['cores']} cores, {machine['memory_gib']} GiB, load average "
        f"{machine['loadavg_start'][0]:.2f} at start, {machine['loadavg_end'][0]:.2f} at end; "
        f"Postgres {results['versions']['postgres']}, dbt {results['versions']['dbt-core']}, "
        f"dlt {results['versions']['dlt']}, Prefect {results['versions']['prefect']}, "
        f"Soda {results['versions']['soda-core']}.",
        "",
        "| stage | baseline of | records | seconds | dbt node s | records/s | MB/s "
        "| peak RSS MiB | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in results["stages"].items():
        if not measured(s):
            lines.append(f"| {name} | {s.get('baseline_of') or ''} | {s['note']} | | | | | | |")
            continue
        nodes = f"{s['node_seconds']:.2f}" if "node_seconds" in s else ""
        mbps = f"{s['mb_per_second']:.1f}" if s.get("mb_per_second") is not None else ""
        peak = float(s["peak_rss_mib"])
        child = float(s.get("peak_rss_children_mib", 0.0))
        peak_text = f"{peak:.0f}" + (f" (child {child:.0f})" if child > peak else "")
        lines.append(
            f"| {name} | {s.get('baseline_of') or ''} | {s['rows']:,} | {s['seconds']:.2f} "
            f"| {nodes} | {s['records_per_second']:,.0f} | {mbps} | {peak_text} "
            f"| {s['loadavg_after'][0]:.1f} |"
        )
    lines += ["", "| ratio | value |", "|---|---:|"]
    for name, value in results["ratios"].items():
        lines.append(f"| {name} | {value if isinstance(value, str) else f'{value:.3f}'} |")
    lines += [
        "",
        "| vitals latency | rate (achieved) | sent | raw p50 / p95 / p99 s "
        "| news2_alerts p50 / p95 / p99 s | alerts | gold refreshes (mean s) "
        "| flow start-up s | nightly running |",
        "|---|---:|---:|---|---|---:|---:|---:|---|",
    ]
    for mode in ("idle", "busy"):
        for label, run in results["latency"].get(mode, {}).items():
            lines.append(
                f"| {mode} | {label} ({run['rate_achieved']:,.0f}) | {run['sent']:,} "
                f"| {_triple(run['raw'])} | {_triple(run['news2_alerts'])} | {run['alerts']:,} "
                f"| {run['refresh_cycles']} ({run['refresh_mean_seconds']:.1f}) "
                f"| {run['flow_ready_seconds']:.1f} | {run.get('nightly_running_at_end', '')} |"
            )
    lines += ["", "| target | wanted | is | met |", "|---|---|---|---|"]
    for t in results["targets"]:
        lines.append(f"| {t['target']} | {t['wanted']} | {t['is']} | {t['verdict']} |")
    return "\n".join(lines) + "\n"


def _triple(p: dict[str, float | None]) -> str:
    return " / ".join("-" if p[k] is None else f"{p[k]:.2f}" for k in ("p50", "p95", "p99"))


def plot(results: dict[str, Any], earlier: list[dict[str, Any]], path: Path) -> None:
    """Throughput per stage against scale (every scale run so far) and latency percentiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted([*earlier, results], key=lambda r: float(r["scale"]))
    figure, (left, right) = plt.subplots(1, 2, figsize=(15, 6))
    for index, name in enumerate(results["stages"]):
        points = [
            (float(r["scale"]), float(r["stages"][name]["records_per_second"]))
            for r in runs
            if name in r["stages"]
            and measured(r["stages"][name])
            and r["stages"][name]["records_per_second"] > 0
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            # Ten colours in the cycle: the next ten stages get dashed lines.
            style = "-" if index < 10 else "--"
            left.plot(xs, ys, marker="o", linestyle=style, label=name)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("scale (1 = 1M admissions, 1M labs, 1M vitals)")
    left.set_ylabel("records/s")
    left.set_title("throughput per stage")
    left.legend(fontsize=7, ncol=2)
    labels, values, colours = [], [], []
    for mode, colour in (("idle", "tab:blue"), ("busy", "tab:red")):
        for rate, run in results["latency"].get(mode, {}).items():
            for where in ("raw", "news2_alerts"):
                for p in ("p50", "p95", "p99"):
                    labels.append(f"{mode} {rate}/s {where} {p}")
                    values.append(run[where][p] or 0.0)
                    colours.append(colour)
    right.barh(range(len(values)), values, color=colours)
    right.set_yticks(range(len(values)), labels, fontsize=6)
    right.invert_yaxis()
    right.set_xlabel("seconds from produce to visible")
    right.set_title(f"vitals latency at scale {results['scale']:g} (blue idle, red busy)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def finish(results: dict[str, Any], out_dir: Path) -> None:
    """Ratios and targets into the results; write results.json, results.md and bench.png."""
    earlier = history(out_dir.parent, exclude=out_dir)
    results["ratios"] = ratios(results)
    results["targets"] = targets(results, earlier)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out_dir / "results.md").write_text(markdown(results))
    plot(results, earlier, out_dir / "bench.png")
