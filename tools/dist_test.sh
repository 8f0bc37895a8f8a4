#!/usr/bin/env bash
# Multi-process evaluation through torchrun, as the hosts ship it:
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
set -euo pipefail
exec bash "$(dirname "$0")/torchrun.sh" test.py "$3" "$1" "$2" "${@:4}"
