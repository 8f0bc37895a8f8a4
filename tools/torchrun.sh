#!/usr/bin/env bash
# Multi-process run of a tool through torchrun, as the hosts' dist_train.sh / dist_test.sh do it:
#   bash tools/torchrun.sh TOOL NPROC [tool arguments]
# NNODES, NODE_RANK, MASTER_ADDR and PORT set up multi-node runs. Without GPUs, NPROC processes run on the CPU (gloo).
set -euo pipefail
TOOL=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..:${PYTHONPATH:-}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$(dirname "$0")/$TOOL" "${@:3}" --launcher pytorch
