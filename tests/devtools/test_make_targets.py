"""`make help` lists every target of the Makefile, one line each; the pre-commit hooks are ruff's
check and format (what `make lint` checks) at the version requirements-dev.txt pins."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def makefile_targets() -> list[str]:
    text = (ROOT / "Makefile").read_text()
    return re.findall(r"^([a-z][a-z-]*):", text, flags=re.M)


def make(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_help_lists_every_target_on_one_line_with_what_it_does():
    result = make("help")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    listed = [line.split()[0] for line in lines]
    assert listed == makefile_targets()
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)  # a name and its description


def test_make_alone_shows_the_help():
    assert make().stdout == make("help").stdout


def pinned_ruff() -> str:
    (version,) = re.findall(r"^ruff==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), flags=re.M)
    return version


def test_the_pre_commit_hooks_are_ruff_check_and_format_at_the_pinned_version():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert set(hooks) == {"ruff-check", "ruff-format"}
    assert hooks["ruff-check"]["entry"].startswith("ruff check")
    assert hooks["ruff-format"]["entry"].startswith("ruff format")
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert hook["additional_dependencies"] == [f"ruff=={pinned_ruff()}"]
