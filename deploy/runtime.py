"""The Lambda runtime the packaged functions run on, whatever Python runs the packaging.

Both functions run on Lambda's `python3.12` (Amazon Linux 2023, glibc 2.34) on x86_64, while the
project's own interpreter (`make test`, `make run`, CI) is 3.11. Chalice cannot express that: it
takes the runtime *and* the wheel ABI from the interpreter it runs under
(`chalice.config.Config.lambda_python_version` is `python{major}.{minor}` of `sys.version_info`),
and its pip calls pass `--abi` but never `--python-version`, so a patched runtime alone would still
look for cp311-tagged wheels. So deploy/package.py builds the dependency set itself, the way AWS
documents it for Lambda (`pip install --target DIR --platform ... --implementation cp
--python-version 3.12 --only-binary=:all:`), hands it to Chalice as the project's `vendor/`
directory with no requirements.txt, and writes `RUNTIME` into both outputs. Nothing inside
Chalice is patched; `make wheelhouse` downloads the same wheels for offline packaging.

x86_64 rather than arm64: the development machines and CI are x86_64, where the benchmark and
the cold-start figures were measured and where the same wheels can be imported by the tests;
nothing here is tied to it except these constants.

`Runtime` describes one Lambda Python runtime; `LAMBDA` is the one the stages deploy on, `NEXT` the
next managed runtime, for which the bundle is built and run in tests only (tests/deploy), so that a
move to it finds its problems ahead of time. The module-level names are `LAMBDA`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ARCHITECTURE = "x86_64"  # Lambda's name; the wheel tags say the same
GLIBC = (2, 34)  # Amazon Linux 2023, the OS of Lambda's python3.12 and python3.13

# pip takes --platform literally: every manylinux_2_N up to the runtime's glibc, and the legacy alias.
PLATFORMS = tuple(f"manylinux_{GLIBC[0]}_{minor}_{ARCHITECTURE}" for minor in range(17, GLIBC[1] + 1)) + (
    f"manylinux2014_{ARCHITECTURE}",
)
_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


@dataclass(frozen=True)
class Runtime:
    """One of Lambda's Python runtimes (x86_64, Amazon Linux 2023), by its version ("3.12")."""

    version: str

    @property
    def name(self) -> str:
        return f"python{self.version}"  # Lambda's runtime identifier

    @property
    def abi(self) -> str:
        return "cp" + self.version.replace(".", "")

    @property
    def cache_tag(self) -> str:
        """What `sys.implementation.cache_tag` is on the runtime (the bytecode's file names)."""
        return f"cpython-{self.abi[2:]}"

    @property
    def minor(self) -> int:
        return int(self.version.split(".")[1])

    @property
    def marker_environment(self) -> dict[str, str]:
        """PEP 508 environment of the runtime, for evaluating dependency markers (pip evaluates
        them for the interpreter it runs under, even with --python-version)."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.version}.0",
            "os_name": "posix",
            "platform_machine": ARCHITECTURE,
            "platform_python_implementation": "CPython",
            "platform_system": "Linux",
            "python_full_version": f"{self.version}.0",
            "python_version": self.version,
            "sys_platform": "linux",
        }

    def pip_arguments(self) -> list[str]:
        """pip's options selecting the runtime's wheels (for `pip install --target` and `pip download`).
        `--no-deps`: requirements.txt pins every dependency, and pip would evaluate the pins'
        markers for the wrong Python; the bundle check verifies the closure for the runtime instead."""
        arguments = [
            "--only-binary=:all:",
            "--no-deps",
            "--implementation",
            "cp",
            "--python-version",
            self.version,
            "--abi",
            self.abi,
        ]
        for platform in PLATFORMS:
            arguments += ["--platform", platform]
        return arguments

    def tag_fits(self, tag: str) -> bool:
        """Whether a wheel tag (`cp312-cp312-manylinux_2_17_x86_64`, `py3-none-any`) runs on the runtime."""
        try:
            interpreter, abi, platform = tag.split("-")
        except ValueError:
            return False
        if not _platform_fits(platform):
            return False
        if abi == "none":
            return interpreter in ("py3", f"py{self.abi[2:]}", self.abi) or (
                platform == "any" and interpreter.startswith("py3")
            )
        if abi == self.abi:
            return interpreter == self.abi
        if abi == "abi3":  # the stable ABI of CPython 3.N works on every later 3.x
            match = re.fullmatch(r"cp3(\d+)", interpreter)
            return bool(match) and int(match.group(1)) <= self.minor
        return False

    def extension_fits(self, filename: str) -> bool:
        """Whether a compiled module's file name (`x.cpython-312-x86_64-linux-gnu.so`, `x.abi3.so`) is
        one the runtime's interpreter imports."""
        name = filename.rsplit("/", 1)[-1]
        return name.endswith((f".cpython-{self.abi[2:]}-{ARCHITECTURE}-linux-gnu.so", ".abi3.so"))


def _platform_fits(platform: str) -> bool:
    if platform == "any":
        return True
    match = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)", platform)
    if match:
        glibc, machine = _LEGACY[match.group(1)], match.group(2)
    else:
        match = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
        if not match:
            return False  # linux_x86_64 (a local build), musllinux, macOS, Windows
        glibc, machine = (int(match.group(1)), int(match.group(2))), match.group(3)
    return machine == ARCHITECTURE and glibc <= GLIBC


LAMBDA = Runtime("3.12")  # what the stages deploy on
NEXT = Runtime("3.13")  # the next managed runtime: built and run in tests only

RUNTIME = LAMBDA.name
PYTHON_VERSION = LAMBDA.version
ABI = LAMBDA.abi
MARKER_ENVIRONMENT = LAMBDA.marker_environment
pip_arguments = LAMBDA.pip_arguments
tag_fits = LAMBDA.tag_fits
extension_fits = LAMBDA.extension_fits
