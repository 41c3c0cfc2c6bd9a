"""Figures: per-scenario statistics, the machine, the printed table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p95 of 100 samples is the 95th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


def stats(ns: list[int]) -> dict[str, float]:
    ms = [v / 1e6 for v in ns]
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p95_ms": round(percentile(ms, 0.95), 3),
        "min_ms": round(min(ms), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "samples": len(ms),
    }


def machine(postgres_version: str, server: str) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gb = round(pages / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "load_average_at_end": load,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": postgres_version,
        "database_server": server,
    }


def row_for(scenario: dict[str, Any]) -> list[str]:
    h, f = scenario["handler"], scenario["floor"]
    return [
        scenario["name"],
        f"{h['median_ms']:.2f}",
        f"{h['p95_ms']:.2f}",
        f"{f['median_ms']:.2f}",
        f"{scenario['ratio']:.2f}",
        f"{scenario['overhead_ms']:+.2f}",
        str(scenario["statements"]),
        f"{scenario.get('first_request_ms', 0):.1f}",
    ]


HEADER = [
    "scenario",
    "handler median ms",
    "handler p95 ms",
    "floor median ms",
    "ratio",
    "overhead ms",
    "SQL",
    "first request ms",
]


def table(scenarios: list[dict[str, Any]], *, markdown: bool = False) -> str:
    rows = [HEADER] + [row_for(s) for s in scenarios]
    if markdown:
        lines = [
            "| " + " | ".join(rows[0]) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(HEADER) - 1)) + "|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    out = []
    for index, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        out.append("  ".join(cells))
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def write(result: dict[str, Any], name: str | None = None) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / (name or f"bench-{stamp}.json")
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def beside(scenario: dict[str, Any]) -> str:
    """The seed stack's figure, appended to a scenario's progress line."""
    seed = scenario.get("flask_ref")
    if not seed:
        return ""
    return f"   seed stack {seed['median_ms']:.2f} ms, ours/seed {scenario['over_flask_ref']:.2f}"


def _render(rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = [
            "| " + " | ".join(rows[0]) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|",
        ]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows[1:]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for index, r in enumerate(rows):
        out.append(
            "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)])
        )
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def comparison_table(scenarios: list[dict[str, Any]], *, markdown: bool = False) -> str:
    """Ours beside the seed stack, for the scenarios both have (loopback)."""
    rows = [
        [
            "scenario",
            "ours median ms",
            "ours p95 ms",
            "seed stack median ms",
            "seed stack p95 ms",
            "ours/seed",
        ]
    ]
    for s in scenarios:
        seed = s.get("flask_ref")
        if seed:
            rows.append(
                [
                    s["name"],
                    _ms(s["handler"]["median_ms"]),
                    _ms(s["handler"]["p95_ms"]),
                    _ms(seed["median_ms"]),
                    _ms(seed["p95_ms"]),
                    f"{s['over_flask_ref']:.2f}",
                ]
            )
    return _render(rows, markdown) if len(rows) > 1 else ""


NETWORK_HEADER = [
    "scenario",
    "median ms",
    "p95 ms",
    "PG RT",
    "Redis RT",
    "authorizer/req",
    "seed median ms",
    "seed PG RT",
    "seed Redis RT",
    "ours/seed",
    "first request ms",
]


def network_table(scenarios: list[dict[str, Any]], *, markdown: bool = False) -> str:
    """The modeled network: times, round trips per request to each peer (counted by the relays),
    authorizer invocations per request (API Gateway's cache modeled), the seed stack beside."""
    rows = [NETWORK_HEADER]
    for s in scenarios:
        seed = s.get("flask_ref")
        rt = s["round_trips"]
        rows.append(
            [
                s["name"],
                _ms(s["handler"]["median_ms"]),
                _ms(s["handler"]["p95_ms"]),
                f"{rt['pg']:g}",
                f"{rt['redis']:g}",
                f"{s['authorizer_invocations_per_request']:.2f}",
                _ms(seed["median_ms"]) if seed else "-",
                f"{seed['round_trips']['pg']:g}" if seed else "-",
                f"{seed['round_trips']['redis']:g}" if seed else "-",
                f"{s['over_flask_ref']:.2f}" if seed else "-",
                f"{s['first_request_ms']:.1f}",
            ]
        )
    return _render(rows, markdown)


def cold_table(cold: dict[str, Any], *, markdown: bool = False) -> str:
    rows = [["path", "network", "median ms", "import (+ init) ms", "process wall ms", "peak RSS MB", "vs"]]
    for name, c in cold.items():
        if not isinstance(c, dict) or "api" not in c:
            continue
        api, auth, restored, seed = c["api"], c["authorizer"], c["restored"], c.get("flask_ref")
        rows.append(
            [
                "API, no snapshot: import app + first list",
                name,
                f"{api['median_ms']:.1f}",
                f"{api['median_import_ms']:.1f}",
                f"{api['median_process_wall_ms']:.1f}",
                f"{api['peak_rss_mb']:.1f}",
                f"{c['api_over_flask_ref']:.2f}x seed stack" if seed else "-",
            ]
        )
        if seed:
            rows.append(
                [
                    "seed stack: import app + create_app() + first list",
                    name,
                    f"{seed['median_ms']:.1f}",
                    f"{seed['median_import_ms']:.1f}",
                    f"{seed['median_process_wall_ms']:.1f}",
                    f"{seed['peak_rss_mb']:.1f}",
                    "-",
                ]
            )
        rows.append(
            [
                "API, restored: after_restore + first list",
                name,
                f"{restored['median_first_request_ms']:.1f}",
                f"{restored['median_init_ms']:.1f}",
                f"{restored['median_process_wall_ms']:.1f}",
                f"{restored['peak_rss_mb']:.1f}",
                f"{restored['first_over_warm']:.2f}x warm ({restored['median_warm_request_ms']:.1f} ms); "
                f"hook {restored['median_after_restore_hook_ms']:.1f} ms",
            ]
        )
        rows.append(
            [
                "authorizer: import + one token",
                name,
                f"{auth['median_ms']:.1f}",
                f"{auth['median_import_ms']:.1f}",
                f"{auth['median_process_wall_ms']:.1f}",
                f"{auth['peak_rss_mb']:.1f}",
                f"{c['authorizer_share_of_api']:.0%} of the API path",
            ]
        )
    return _render(rows, markdown) if len(rows) > 1 else ""


PERFORMANCE_DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def readme_baseline(path: Path = PERFORMANCE_DOC) -> dict[str, float]:
    """The handler medians of the performance page's current loopback table (the first table
    whose header starts `| scenario | handler median ms |`), by scenario."""
    try:
        section = path.read_text()
    except OSError:
        return {}
    found: dict[str, float] = {}
    in_table = False
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| scenario | handler median ms |"):
            if found:
                break
            in_table = True
            continue
        if in_table:
            if not line.startswith("|"):
                break
            try:
                found[cells[0]] = float(cells[1])
            except (IndexError, ValueError):
                continue  # the separator row
    return found


def match_baseline(baseline: dict[str, float], names: list[str]) -> dict[str, float]:
    """The performance page's figures by this run's scenario names. Terms read from the data can differ
    between seeds (the date filters follow the day the data was made): a name missing from the
    performance page matches the one row there with the same text before `=`, if there is exactly one."""
    matched = {}
    for name in names:
        if name in baseline:
            matched[name] = baseline[name]
            continue
        stem = name.split("=", 1)[0] + "=" if "=" in name else None
        candidates = [k for k in baseline if stem and k.startswith(stem) and k not in names]
        if len(candidates) == 1:
            matched[name] = baseline[candidates[0]]
    return matched
