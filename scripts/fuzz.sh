#!/usr/bin/env bash
# Schemathesis over /api/openapi.json against `chalice local` (see scripts/fuzz.py for the options).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m scripts.fuzz "$@"
