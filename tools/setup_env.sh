#!/usr/bin/env bash
# Creates (or reuses) the project's environment, .venv inside the checkout, and installs the OpenMMLab
# stack that mmmnv2 runs on. Safe to run again: it does nothing when the environment is already complete.
#
#   bash tools/setup_env.sh            # prints the path of the environment's python on its last line
#
# Versions (REFERENCE: the combination known to work on Python 3.11 and current torch):
#   torch 2.13.0 CPU (kept if the user already has a torch), mmengine 0.10.7, mmcv 2.1.0 with its compiled
#   ops (built from source: no wheel exists for current torch; pip caches the built wheel, so a re-install takes
#   seconds), mmdet 3.3.0, mmsegmentation 1.2.2 (+ ftfy and regex, which it imports without declaring);
#   onnx, onnxruntime and onnxscript (the deploy extra: ONNX export and inference); litert-torch, ai-edge-litert and
#   executorch (the mobile extra: .tflite and .pte export and inference; ~1 GB, ~75 s from an empty pip cache).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMMNV2_VENV:-$ROOT/.venv}
PY=$VENV/bin/python
STAMP=$VENV/.mmmnv2-env

# The stamp records what the environment was built from; a changed setup.py or script triggers a refresh.
want=$(cat "$ROOT/setup.py" "$ROOT/tools/setup_env.sh" | sha256sum | cut -d' ' -f1)
if [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "$PY"
  exit 0
fi

log() { echo "[setup_env] $*" >&2; }

if [ ! -x "$PY" ]; then
  # A torch the user already has (CPU or CUDA) is kept: the environment then sees the system's packages.
  if python3 -c 'import torch' >/dev/null 2>&1; then
    log "creating $VENV (reusing the system's torch)"
    python3 -m venv --system-site-packages "$VENV"
  else
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
fi

pip() { "$PY" -m pip --disable-pip-version-check "$@"; }

# setuptools 77-80: torch 2.13 declares >= 77, and 81+ dropped pkg_resources, which mmcv's setup.py imports.
log "base build tools"
pip install -q --upgrade 'pip>=23' 'setuptools>=77,<81' wheel ninja

if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
  log "torch 2.13.0 (CPU build)"
  pip install -q torch==2.13.0
fi

if ! "$PY" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' >/dev/null 2>&1; then
  log "mmcv 2.1.0 with compiled ops (from source on first install: ~10 minutes on 2 cores; cached afterwards)"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} pip install -q --no-build-isolation 'mmcv==2.1.0'
fi

log "mmengine, mmdet, mmsegmentation and mmmnv2 (editable, with the test, deployment and mobile extras)"
pip install -q -e "$ROOT[tests,deploy,mobile]"

echo "$want" > "$STAMP"
log "environment ready: $PY"
echo "$PY"
