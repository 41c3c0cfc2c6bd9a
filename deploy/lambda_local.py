"""Run a packaged bundle the way Lambda's Python runtime runs it, on this machine.

    python = bytecode.interpreter()                       # the runtime's Python (LAMBDA_PYTHON, PATH, pyenv)
    provided = runtime_packages(python, env)              # what the managed runtime has beside the stdlib
    task = unpack(zip_path, tmp / "task")                 # /var/task: read-only
    result = run(python, task, provided, spec, env=...)   # deploy/lambda_child.py under `python -I`

As on Lambda: the bundle is unpacked into a folder nobody writes to (a read-only bind mount of it
in a mount namespace of its own where this runs as root with `unshare`; otherwise its files are
made read-only, which root ignores, and the child's own check below still holds), the interpreter
runs isolated (`-I`: no environment variables of Python's, no user site, no script folder) with
its own site-packages taken off `sys.path`, and the path is what the runtime's bootstrap gives a
function: the task folder first, then the runtime's packages, then the standard library. The
handlers are imported by the names the templates give them (`app.app`,
`chalicelib.auth.authorizer.jwt_authorizer`; the schedule's `chalicelib.sites.schedule.retry_invitations`
alone, as its own function), and API Gateway proxy events (a schedule's event) go through them.

The runtime's packages stand in for those of the managed runtime (boto3 and what it needs, and
`snapshot_restore_py`, the module through which SnapStart's hooks are registered): installed for
the runtime (its wheels, `pip install --target`) at the versions the development environment has
(boto3's are pinned in requirements-dev.txt), byte-compiled by the runtime's Python, cached under
build/lambda-runtime/. The bundle must not carry them (deploy/package.py checks it), so a module of
ours that imports boto3 finds the runtime's, as deployed.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

from deploy import dependencies, runtime

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "lambda-runtime"
CHILD = Path(__file__).resolve().parent / "lambda_child.py"
# The managed runtime's packages (besides python-dateutil and six, which the bundle has).
PROVIDED = ("boto3", "botocore", "jmespath", "s3transfer", "urllib3")
# SnapStart's hook registry as the managed runtime provides it (published by AWS with this name).
SNAPSHOT_HOOKS = "snapshot-restore-py==1.0.0"
CHILD_TIMEOUT_S = 300


def runtime_packages(python: str, env: dict[str, str], *, cache: Path | None = None) -> Path:
    """The folder of packages that stands in for the managed runtime's, for `python`'s version:
    installed once per set of versions, and byte-compiled by `python` (as the runtime's are)."""
    target = runtime.Runtime(_version_of(python))
    cache = cache or CACHE
    cache.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={metadata.version(name)}" for name in PROVIDED] + [SNAPSHOT_HOOKS]
    requirements = cache / f"provided-{target.version}.txt"
    text = "\n".join(pins) + "\n"
    if not requirements.is_file() or requirements.read_text() != text:
        requirements.write_text(text)
    folder = dependencies.site_packages(env, requirements=requirements, cache=cache, target=target)
    stamp = folder / f".compiled-{target.cache_tag}"
    if not stamp.exists():
        subprocess.run(
            [
                python,
                "-I",
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "--invalidation-mode",
                "unchecked-hash",
                str(folder),
            ],
            capture_output=True,
            check=False,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        stamp.touch()
    return folder


def _version_of(python: str) -> str:
    probe = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    return probe.stdout.strip()


def unpack(zip_path: Path, into: Path) -> Path:
    """The bundle unpacked into `into`, every file and folder read-only (Lambda's /var/task)."""
    with zipfile.ZipFile(zip_path) as bundle:
        bundle.extractall(into)
    for folder, _dirs, files in os.walk(into, topdown=False):
        for name in files:
            path = Path(folder, name)
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
        Path(folder).chmod(0o555)
    return into


def read_only_mounts_work() -> bool:
    """Whether this process may bind-mount folders read-only in a mount namespace of its own."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--", "sh", "-c", "mount --bind -o ro / / 2>/dev/null"],
        capture_output=True,
        check=False,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    return probe.returncode == 0


def run(
    python: str,
    task: Path,
    provided: Path,
    spec: dict[str, Any],
    *,
    env: dict[str, str],
    timeout: float = CHILD_TIMEOUT_S,
) -> dict[str, Any]:
    """deploy/lambda_child.py under `python -I` over the unpacked bundle `task`, with `spec` (the
    handlers, the steps' data); returns the child's report. `env` is the function's whole
    environment (nothing of this process's leaks in)."""
    command = [python, "-I", str(CHILD), str(task), str(provided)]
    if read_only_mounts_work():
        command = [
            "unshare",
            "--mount",
            "--",
            "sh",
            "-c",
            'mount --bind -o ro "$1" "$1" && mount --bind -o ro "$2" "$2" && shift 2 && exec "$@"',
            "sh",
            str(task),
            str(provided),
            *command,
        ]
    function_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LAMBDA_TASK_ROOT": str(task),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{_version_of(python)}",
        "TZ": ":UTC",
        **env,
    }
    result = subprocess.run(
        command,
        input=json.dumps(spec),
        env=function_env,
        cwd=task,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("LAMBDA-CHILD ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(
            f"the bundle failed under {python} ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    report: dict[str, Any] = json.loads(lines[-1].removeprefix("LAMBDA-CHILD "))
    report["read_only_mount"] = command[0] == "unshare"
    return report


def handlers(sam_template: Path) -> dict[str, str]:
    """{logical id: handler} of the functions in a packaged SAM template."""
    template = json.loads(sam_template.read_text())
    return {
        logical_id: resource["Properties"]["Handler"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
