"""EXPLAIN the Finder's (and the audit trail's) queries exactly as the handlers sent them, and check
the plans.

For every list scenario, each captured statement that reads `interactions` (or the scenario's
table: `audit_events`) is run again under `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` with its own
parameters. Checks: no sequential scan of that table; a `search` (and a substring filter) is
answered by a trigram index.
"""

from __future__ import annotations

import re
from typing import Any

from bench.floor import Floor, Statement


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


def trigram_indexes(floor: Floor) -> set[str]:
    cursor = floor.connection.cursor()
    cursor.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'interactions' AND indexdef LIKE '%gin_trgm_ops%'"
    )
    names = {row[0] for row in cursor.fetchall()}
    floor.connection.commit()
    return names


def explain(floor: Floor, statement: Statement) -> dict[str, Any]:
    cursor = floor.connection.cursor()
    try:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement.sql, statement.parameters)
        document = cursor.fetchall()[0][0]
        cursor.execute("EXPLAIN (COSTS OFF) " + statement.sql, statement.parameters)
        text_plan = "\n".join(row[0] for row in cursor.fetchall())
    finally:
        floor.connection.rollback()
    if isinstance(document, str):
        import json

        document = json.loads(document)
    top = document[0]
    return {
        "plan": top["Plan"],
        "text": text_plan,
        "execution_ms": top.get("Execution Time"),
        "planning_ms": top.get("Planning Time"),
    }


def check(
    floor: Floor,
    scenario: str,
    statements: list[Statement],
    *,
    wants_trigram: bool,
    table: str = "interactions",
) -> dict[str, Any]:
    trigram = trigram_indexes(floor)
    reads = re.compile(rf"\bFROM {table}\b", re.IGNORECASE)
    queries = []
    problems = []
    for statement in statements:
        if not statement.sql.lstrip().upper().startswith("SELECT") or not reads.search(statement.sql):
            continue
        result = explain(floor, statement)
        nodes = _nodes(result["plan"])
        seq_scans = [n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == table]
        indexes = sorted({n["Index Name"] for n in nodes if "Index Name" in n})
        if seq_scans:
            problems.append(f"sequential scan of {table} in: {statement.sql[:120]}")
        queries.append(
            {
                "sql": statement.sql,
                "parameters": [str(p) for p in statement.parameters or ()],
                "node_types": sorted({n["Node Type"] for n in nodes}),
                "indexes": indexes,
                "sequential_scan": bool(seq_scans),
                "uses_trigram_index": bool(trigram & set(indexes)),
                "execution_ms": result["execution_ms"],
                "planning_ms": result["planning_ms"],
                "plan_text": result["text"],
            }
        )
    if wants_trigram and queries and not any(q["uses_trigram_index"] for q in queries):
        problems.append("the substring match does not use a trigram index")
    if not queries:
        problems.append(f"no statement of the scenario reads {table}")
    return {"scenario": scenario, "queries": queries, "ok": not problems, "problems": problems}
