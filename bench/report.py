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
    return {"median_ms": round(statistics.median(ms), 3), "p95_ms": round(percentile(ms, 0.95), 3),
            "min_ms": round(min(ms), 3), "mean_ms": round(statistics.fmean(ms), 3), "samples": len(ms)}


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
        "cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb, "load_average_at_end": load,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(), "postgresql": postgres_version, "database_server": server,
    }


def row_for(scenario: dict[str, Any]) -> list[str]:
    h, f = scenario["handler"], scenario["floor"]
    return [scenario["name"], f"{h['median_ms']:.2f}", f"{h['p95_ms']:.2f}", f"{f['median_ms']:.2f}",
            f"{scenario['ratio']:.2f}", f"{scenario['overhead_ms']:+.2f}", str(scenario["statements"]),
            f"{scenario.get('first_request_ms', 0):.1f}"]


HEADER = ["scenario", "handler median ms", "handler p95 ms", "floor median ms", "ratio",
          "overhead ms", "SQL", "first request ms"]


def table(scenarios: list[dict[str, Any]], *, markdown: bool = False) -> str:
    rows = [HEADER] + [row_for(s) for s in scenarios]
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(["---"] + ["---:"] * (len(HEADER) - 1)) + "|"]
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
