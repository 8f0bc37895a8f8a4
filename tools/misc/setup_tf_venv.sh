#!/usr/bin/env bash
# Creates (or reuses) the TensorFlow environment the tests against Google's TF graphs run their reference side in:
# .venv-tf inside the checkout (or $MMMNV2_TF_VENV), tensorflow-cpu 2.21.0 from PyPI. TensorFlow stays out of the
# project's .venv: its protobuf and numpy pins conflict with the OpenMMLab stack's. Safe to run again: it does
# nothing when the environment is complete.
#
#   bash tools/misc/setup_tf_venv.sh     # prints the path of the environment's python on its last line
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${MMMNV2_TF_VENV:-$ROOT/.venv-tf}
PY=$VENV/bin/python
TF_VERSION=2.21.0
STAMP=$VENV/.mmmnv2-tf-env

if [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "tensorflow-cpu==$TF_VERSION" ]; then
  echo "$PY"
  exit 0
fi
echo "[setup_tf_venv] creating $VENV (tensorflow-cpu $TF_VERSION)" >&2
[ -x "$PY" ] || python3 -m venv "$VENV"
"$PY" -m pip --disable-pip-version-check install -q "tensorflow-cpu==$TF_VERSION" >&2
"$PY" -c 'import tensorflow' >/dev/null 2>&1
echo "tensorflow-cpu==$TF_VERSION" > "$STAMP"
echo "$PY"
