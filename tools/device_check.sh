#!/usr/bin/env bash
# The device check on a lent accelerator machine, from the repository root:
#
#   bash tools/device_check.sh OUT_DIR [more tools.device_check flags]
#
# Installs the wheels carried in .whl/ (the packages such a machine lacks: docs/benchmarks.md
# lists them and the command that downloads them), then, if jax still has no accelerator
# backend, the CUDA build of jax from the registry; then runs python -m tools.device_check.
set -uo pipefail
out=${1:?usage: bash tools/device_check.sh OUT_DIR [tools.device_check flags]}
shift
if compgen -G ".whl/*.whl" > /dev/null; then
  site=${TMPDIR:-/tmp}/fashion_jax_site
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" .whl/*.whl || { echo "error: installing .whl/*.whl failed" >&2; exit 1; }
  export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! python3 -c "import jax, sys; sys.exit(jax.default_backend() == 'cpu')" 2> /dev/null; then
  echo "jax has no accelerator backend here: installing jax[cuda13] from the registry"
  python3 -m pip install -q --upgrade "jax[cuda13]" \
    || { echo "error: no accelerator build of jax could be installed" >&2; exit 1; }
fi
export PYTHONUNBUFFERED=1
exec python3 -m tools.device_check --out="$out" "$@"
