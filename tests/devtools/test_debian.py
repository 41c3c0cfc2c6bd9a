"""devtools/debian.py: the one way `make test-pooled` and `make browser-test` get their program
(PgBouncer, Chromium) — used as found, installed with apt-get as root, else a message saying how."""

from __future__ import annotations

import os
import shutil
import subprocess
from types import SimpleNamespace

import pytest

from devtools import debian


@pytest.fixture
def apt(monkeypatch):
    """apt-get, recorded: `apt.ran` its invocations; `install` creates `apt.creates` when set."""
    apt = SimpleNamespace(ran=[], creates=None)

    def run(command, **_kwargs):
        apt.ran.append(command)
        if command[:2] == ["apt-get", "install"] and apt.creates is not None:
            apt.creates.write_text("")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    return apt


def test_a_binary_that_is_there_is_used_as_it_is(tmp_path, apt):
    binary = tmp_path / "pgbouncer"
    binary.write_text("")
    assert debian.ensure_binary(binary, "pgbouncer", "PGBOUNCER") == binary
    assert apt.ran == []


def test_without_root_a_missing_binary_stops_naming_the_package_and_the_variable(tmp_path, apt, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit, match=r"sudo apt-get install chromium\), or set CHROMIUM"):
        debian.ensure_binary(tmp_path / "chromium", "chromium", "CHROMIUM")
    assert apt.ran == []


@pytest.mark.parametrize(("recommends", "extra"), [(True, []), (False, ["--no-install-recommends"])])
def test_as_root_a_missing_binary_is_installed(tmp_path, apt, monkeypatch, recommends, extra):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    apt.creates = tmp_path / "pgbouncer"

    assert debian.ensure_binary(apt.creates, "pgbouncer", "PGBOUNCER", recommends=recommends) == apt.creates
    assert apt.ran == [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *extra, "pgbouncer"]]


def test_an_install_that_leaves_no_binary_stops(tmp_path, apt, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(SystemExit, match="apt-get installed pgbouncer, yet .* is missing"):
        debian.ensure_binary(tmp_path / "pgbouncer", "pgbouncer", "PGBOUNCER")
