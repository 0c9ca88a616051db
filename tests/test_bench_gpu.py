"""benchmarks/bench_gpu.py imports and dry-runs without a GPU (on the CPU stand-in for CuPy)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(os.environ.get("MINISEGNET_BACKEND", "").strip().lower() == "cupy",
                    reason="backend-independent: it runs in the NumPy pass")
def test_bench_gpu_dry_run(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_gpu.py"), "--dry-run",
                           "--layers", "ag", "--skip-large", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert results["dry_run"] and set(results["conv"]) == {"a", "g"}
    assert "first_s" in results["first_steps"]["ours"]
    assert "Training steps" in done.stdout and "Conv layers" in done.stdout
