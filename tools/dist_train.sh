#!/usr/bin/env bash
# Multi-process training through torchrun, as the hosts ship it:
#   bash tools/dist_train.sh CONFIG GPUS [train.py options]
# NNODES, NODE_RANK, MASTER_ADDR and PORT set up multi-node runs. Without GPUs, GPUS processes train on the CPU (gloo).
set -euo pipefail
exec bash "$(dirname "$0")/torchrun.sh" train.py "$2" "$1" "${@:3}"
