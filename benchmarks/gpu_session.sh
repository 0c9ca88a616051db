#!/usr/bin/env bash
# One GPU session, prepared: CuPy, the GPU benchmark, a CLI training run and the whole test suite
# on real CuPy, every output collected in one folder.
#
#   bash benchmarks/gpu_session.sh [all|bench|train|suite ...]     (default: all, in that order)
#
# On a machine with an NVIDIA GPU. CuPy: the installed one if it sees the GPU, else the wheel for the
# CUDA major version nvidia-smi reports (pip install "cupy-cuda12x>=14.2" or "cupy-cuda13x>=14.2", as
# pyproject's extras, which needs a package index). minisegnet itself is installed editable without
# dependencies: NumPy, matplotlib, tqdm, Pillow and, for the suite, pyproject's test extra (pytest,
# hypothesis, torch, scipy, torchmetrics) must be there already; the session log names any missing.
#
# Outputs (at most eight files) go to $OUT (default ./gpu_session_out): machine.txt (nvidia-smi,
# versions), session.log, bench_gpu.md + bench_gpu.json + profile_gpu.txt, train.log + train_metrics.json,
# pytest.log.
# Time limits per part, in seconds: BENCH_TIMEOUT (200), TRAIN_TIMEOUT (150), SUITE_TIMEOUT (240),
# so that "all" fits one 10-minute device command;
# the suite runs on PYTEST_WORKERS processes (8) when pytest-xdist is installed.
#
# GPU_SESSION_STANDIN=1 rehearses the whole script on a CPU: CuPy is the stand-in in
# tests/cupy_standin, the benchmark is a --dry-run and the training run is one short epoch.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_session_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
STANDIN=${GPU_SESSION_STANDIN:-0}
PARTS=${*:-all}
[ "$PARTS" = all ] && PARTS="bench train suite"
export PYTHONUNBUFFERED=1
status=0

say() { echo "== $(date +%T) $*" | tee -a "$OUT/session.log"; }

setup() {
    if [ "$STANDIN" = 1 ]; then
        export PYTHONPATH="$PWD/tests/cupy_standin${PYTHONPATH:+:$PYTHONPATH}" MINISEGNET_CUPY=standin
        say "rehearsal on the CPU stand-in for CuPy"
    elif ! $PY -c "import cupy, sys; sys.exit(cupy.cuda.runtime.getDeviceCount() < 1)" 2>/dev/null; then
        major=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\)\..*/\1/p')
        say "CuPy missing or blind; installing cupy-cuda${major:-12}x for the driver's CUDA ${major:-?}"
        $PY -m pip install -q "cupy-cuda${major:-12}x>=14.2" 2>&1 | tee -a "$OUT/session.log" \
            || { say "could not install CuPy: stop"; exit 2; }
        export MINISEGNET_CUPY=real
    else
        export MINISEGNET_CUPY=real
    fi
    if ! $PY -c "import minisegnet" 2>/dev/null || [ "$($PY -c 'import minisegnet, os; print(os.path.dirname(os.path.dirname(minisegnet.__file__)))')" != "$PWD" ]; then
        $PY -m pip install -q --no-deps --no-build-isolation -e . >>"$OUT/session.log" 2>&1 \
            || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    fi
    {
        nvidia-smi 2>&1 || echo "nvidia-smi: not available"
        $PY - <<'EOF'
import platform, numpy, cupy
print("python", platform.python_version(), "| numpy", numpy.__version__, "| cupy", cupy.__version__,
      "(stand-in)" if getattr(cupy, "__standin__", False) else "")
try:
    print("CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(), "| driver", cupy.cuda.runtime.driverGetVersion())
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    print("GPU", name.decode() if isinstance(name, bytes) else name)
except Exception as e:
    print("no GPU:", e)
try:
    import torch
    print("torch", torch.__version__, "| torch CUDA", torch.cuda.is_available())
except ImportError:
    print("torch not installed")
EOF
        $PY -m pip list 2>/dev/null | grep -i -E "^(cupy|torch|numpy|pytest|hypothesis|matplotlib|scipy|torchmetrics) "
    } > "$OUT/machine.txt" 2>&1
    say "machine: $(grep -m1 -E '^GPU|^no GPU' "$OUT/machine.txt")"
    missing=$($PY -c "import importlib.util as u; print(' '.join(m for m in ('numpy', 'matplotlib', 'tqdm', 'PIL',
        'pytest', 'hypothesis', 'torch', 'scipy', 'torchmetrics') if u.find_spec(m) is None))")
    [ -z "$missing" ] || say "missing, which the parts need (pyproject's test extra for the suite): $missing"
}

bench() {
    say "bench_gpu.py (fresh CuPy kernel cache, so the first step includes compilation)"
    export CUPY_CACHE_DIR; CUPY_CACHE_DIR=$(mktemp -d)
    extra=""; [ "$STANDIN" = 1 ] && extra="--dry-run --layers ah"
    timeout "${BENCH_TIMEOUT:-200}" $PY benchmarks/bench_gpu.py $extra --json "$OUT/bench_gpu.json" --profile "$OUT/profile_gpu.txt" \
        > "$OUT/bench_gpu.md" 2>>"$OUT/session.log"
    rc=$?; say "bench_gpu.py exit $rc"; [ $rc = 0 ] || status=1
}

train() {
    say "minisegnet train --backend cupy (the default U-Net on Shapes)"
    args=""; [ "$STANDIN" = 1 ] && args="--epochs 1 --size 32"
    rm -rf /tmp/gpu_session_run
    timeout "${TRAIN_TIMEOUT:-150}" $PY -m minisegnet train --backend cupy $args \
        --out /tmp/gpu_session_run > "$OUT/train.log" 2>&1
    rc=$?; say "train exit $rc: $(grep -E '^done in' "$OUT/train.log" | tail -1)"; [ $rc = 0 ] || status=1
    cp /tmp/gpu_session_run/metrics.json "$OUT/train_metrics.json" 2>/dev/null
}

suite() {
    workers=""
    if [ "$STANDIN" != 1 ] && $PY -c "import xdist" 2>/dev/null; then workers="-n ${PYTEST_WORKERS:-8}"; fi
    say "pytest on the cupy backend (MINISEGNET_CUPY=$MINISEGNET_CUPY) $workers"
    MINISEGNET_BACKEND=cupy timeout "${SUITE_TIMEOUT:-240}" $PY -m pytest -q -p no:cacheprovider $workers \
        > "$OUT/pytest.log" 2>&1
    rc=$?; say "pytest exit $rc: $(tail -1 "$OUT/pytest.log")"; [ $rc = 0 ] || status=1
}

setup
for part in $PARTS; do
    case $part in
        bench|train|suite) $part ;;
        *) say "unknown part $part (bench, train, suite or all)"; status=2 ;;
    esac
done
say "done (status $status); outputs in $OUT"
exit $status
