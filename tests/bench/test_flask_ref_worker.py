"""The seed stack's worker protocol (bench/flask_ref_worker.py and bench/flask_ref.Worker), run with a
stand-in for Flask's test client: the seed stack's own environment is not the project's."""

from __future__ import annotations

import io
import json
import sys
import textwrap

import pytest

from bench import flask_ref
from bench.flask_ref_worker import Handler, serve

FAKE_WORKER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from bench.flask_ref_worker import Handler, serve

    class Response:
        def __init__(self, status): self.status_code = status
        def get_data(self): return b'{{"status": "success"}}'

    class Client:
        def get(self, path, headers):
            assert headers == {{"Authorization": "Bearer tok"}}
            return Response(404 if path.endswith("/missing") else 200)

    serve(Handler(Client(), "tok", {{"rows": 3, "mid_id": 2}}))
""")


class FakeResponse:
    def __init__(self, status: int) -> None:
        self.status_code = status

    def get_data(self) -> bytes:
        return b"{}"


class FakeClient:
    def __init__(self) -> None:
        self.paths: list[str] = []

    def get(self, path, headers):
        self.paths.append(path)
        return FakeResponse(500 if "boom" in path else 200)


def _talk(handler: Handler, *commands: str) -> list[dict]:
    out = io.StringIO()
    serve(handler, io.StringIO("".join(c + "\n" for c in commands)), out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_run_answers_one_timing_per_request():
    client = FakeClient()
    answers = _talk(Handler(client, "tok"), json.dumps({"op": "run", "path": "/api/interactions", "n": 4}))

    assert answers[0]["ok"] is True and len(answers[0]["ns"]) == 4
    assert all(isinstance(ns, int) and ns > 0 for ns in answers[0]["ns"])
    assert client.paths == ["/api/interactions"] * 4


def test_failures_are_answers_and_the_worker_keeps_serving():
    answers = _talk(
        Handler(FakeClient(), "tok", {"rows": 1}),
        "not json",
        json.dumps({"op": "dance"}),
        json.dumps(["run"]),
        json.dumps({"op": "run", "path": "/api/boom", "n": 1}),
        json.dumps({"op": "run", "path": "no-slash", "n": 1}),
        json.dumps({"op": "info"}),
        json.dumps({"op": "quit"}),
        json.dumps({"op": "info"}),
    )

    assert [a["ok"] for a in answers] == [False, False, False, False, False, True, True]
    assert "unknown op 'dance'" in answers[1]["error"]
    assert "expected 200, got 500" in answers[3]["error"]
    assert answers[5]["rows"] == 1


def test_the_parent_drives_a_worker_process_and_stops_it():
    command = [sys.executable, "-c", FAKE_WORKER.format(root=str(flask_ref.ROOT))]
    worker = flask_ref.Worker(command, env={"PATH": "/usr/bin:/bin"})
    try:
        assert worker.call("token")["token"] == "tok"
        assert worker.call("info")["mid_id"] == 2
        assert len(worker.run("/api/interactions/2", 5)) == 5
        with pytest.raises(RuntimeError, match="expected 200, got 404"):
            worker.run("/api/interactions/missing", 1)
        assert len(worker.run("/api/interactions", 1)) == 1  # still serving
    finally:
        worker.close()

    assert worker._process.returncode == 0


def test_our_scenarios_map_to_the_seed_stacks_requests():
    assert flask_ref.pair_for("get by id") == ("/api/interactions/{mid_id}", None)
    assert flask_ref.pair_for("list (default)") == ("/api/interactions", None)
    assert flask_ref.pair_for("search common (review)")[0] == "/api/interactions?search=review"
    assert flask_ref.pair_for("deep page (page=400)")[0] == "/api/interactions?page=400"
    assert flask_ref.pair_for("filter type=Meeting") is None
    assert flask_ref.pair_for("update") is None


def test_the_seed_stacks_cold_child_is_taken_from_its_bench_py(tmp_path):
    for name in flask_ref.FILES:
        (tmp_path / name).write_text("")
    (tmp_path / "bench.py").write_text('import os\nCHILD = """print(1, 2, 3)"""\n')

    assert flask_ref.locate(str(tmp_path)) == tmp_path.resolve()
    code = flask_ref.coldstart_child(tmp_path)
    assert code.startswith("print(1, 2, 3)") and "VmHWM" in code

    (tmp_path / "bench.py").write_text("CHILDREN = 'x'\n")
    with pytest.raises(SystemExit, match="no CHILD"):
        flask_ref.coldstart_child(tmp_path)
    (tmp_path / "seed.py").unlink()
    assert flask_ref.locate(str(tmp_path)) is None


def test_the_seed_stacks_processes_get_its_urls_and_none_of_ours(monkeypatch):
    monkeypatch.setenv("JWT_SECRET", "ours")
    monkeypatch.setenv("DATABASE_URL", "postgresql://ours")
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")

    env = flask_ref.environment(
        database_url="postgresql+psycopg2://theirs", redis_url="redis://theirs/0", jwt_secret="k" * 40
    )

    assert env["DATABASE_URL"] == "postgresql+psycopg2://theirs" and env["REDIS_URL"] == "redis://theirs/0"
    assert env["JWT_SECRET_KEY"] == "k" * 40 and "JWT_SECRET" not in env
    assert "AWS_LAMBDA_INITIALIZATION_TYPE" not in env
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # nothing written into the anchor's directory
