#!/usr/bin/env bash
# The main job: sets up (or reuses) the project's environment, prints the backbone's complexity beside the paper's
# Table 4, then trains and evaluates the toy SSDLite and Mobile DeepLabv3 through tools/train.py and tools/test.py.
#   bash tools/run_main.sh [--work-dir DIR] [--tasks det seg]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=$(bash "$ROOT/tools/setup_env.sh" | tail -n 1)
cd "$ROOT"
# setuptools' notice about pkg_resources (imported by mmengine) says nothing about this run; toy_experiments.py
# filters it and the hosts' other known notices in the tools it starts
PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore:pkg_resources is deprecated:UserWarning" \
    "$PY" tools/analysis_tools/complexity.py
exec "$PY" tools/misc/toy_experiments.py "$@"
