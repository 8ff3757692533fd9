#!/usr/bin/env bash
# Record the kernels a first `minidl train lenet5` compiles, in order, with their argument types:
# kernels/first_run/train-lenet5.json, read by minidl.compilation.precompile_in_background.
# Run it after changing a kernel's name or signature (tests/test_first_run.py says when it is stale).
set -euo pipefail
cd "$(dirname "$0")/.."
cache="$(mktemp -d)"
work="$(mktemp -d)"
trap 'rm -rf "$cache" "$work"' EXIT
for model in lenet5; do
  (cd "$work" && NUMBA_CACHE_DIR="$cache" MINIDL_PRECOMPILE=0 \
     MINIDL_RECORD_KERNELS="$OLDPWD/kernels/first_run/train-$model.json" minidl train "$model" --epochs 1 >/dev/null 2>&1)
  echo "kernels/first_run/train-$model.json: $(grep -c "^\[" "kernels/first_run/train-$model.json" || true) kernels"
done
