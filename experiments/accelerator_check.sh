#!/usr/bin/env bash
# The prepared accelerator check (experiments/accelerator_check.py): devices,
# the CIFAR-10 step at J = 2 and 10 in float32 and bfloat16, the host ceiling,
# and short SimVAE / VAE / SimCLR runs, within 8 minutes on one H200.
#
# Here (CPU, or a GPU box with this package installed):
#   [PYTHON=...] bash experiments/accelerator_check.sh [--budget_minutes=8] [--small]
# On a lent device machine (JAX, Flax, Optax and Orbax are installed there;
# nothing can be downloaded): prepare once on this machine
#   .venv/bin/python experiments/accelerator_check.py --prepare_data=.data/cifar10_check.npz
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --platform manylinux2014_x86_64 -d .whl grain ml-collections array-record
#   (with /.whl/ and /.data/ in .git/info/exclude), then run with carry
#   [".whl", ".data"]: bash experiments/accelerator_check.sh
# and copy $OUT's accelerator_check.{json,md} into experiments/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
# $PYTHON if set (the tests pass their own interpreter), else this checkout's
# .venv, else python3 (the device machine's).
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; fi
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"  # the package, installed or not
export PYTHONUNBUFFERED=1
exec "$PYTHON" experiments/accelerator_check.py \
  --out="${OUT:-runs/accelerator_check}" \
  --runs_dir="${RUNS_DIR:-/tmp/accelerator_check_runs}" "$@"
