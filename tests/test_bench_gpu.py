"""benchmarks/bench_gpu.py imports and dry-runs without a GPU (on the CPU stand-in for CuPy)."""
import json
import os
import re
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


def _read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def _extra(pyproject, name):
    """The requirement strings of ``[project.optional-dependencies] name`` (one line each)."""
    found = re.search(rf"^{name}\s*=\s*\[(.*?)\]", pyproject, re.M | re.S)
    assert found, f"no extra {name!r} in pyproject.toml"
    return re.findall(r'"([^"]+)"', found.group(1))


def test_gpu_session_provides_every_package_of_the_test_extra():
    script = _read("benchmarks", "gpu_session.sh").lower()
    names = [re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower() for req in _extra(_read("pyproject.toml"), "test")]
    missing = [n for n in names if not re.search(rf"\b{re.escape(n)}\b", script)]
    assert not missing, (f"gpu_session.sh neither installs nor names {missing} (pyproject's test extra), "
                         "which the suite it runs imports")


def test_gpu_session_installs_the_cupy_version_pyproject_asks_for():
    pyproject = _read("pyproject.toml")
    wanted = {re.sub(r"^cupy-cuda\d+x", "", req) for extra in ("cuda12", "cuda13") for req in _extra(pyproject, extra)}
    script = _read("benchmarks", "gpu_session.sh")
    installed = set(re.findall(r'pip install[^\n]*?"cupy-cuda\$\{major:-\d+\}x([^"]*)"', script))
    assert installed and installed <= wanted, (installed, wanted)
