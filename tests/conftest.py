"""Shared test set-up: Hypothesis profiles, the PyTorch oracle, the backend, the slow marker.

* Hypothesis: a quick profile by default; the thorough ``ci`` profile when
  ``CI=true`` (CI sets it) or ``HYPOTHESIS_PROFILE=ci``.
* ``torch`` fixture: PyTorch as a test-only oracle. Skips, with the reason,
  only when torch is not installed.
* Backend: ``MINISEGNET_BACKEND=cupy python -m pytest`` runs the same suite on a
  GPU; without CuPy and a GPU that request skips every test with the reason.
* ``@pytest.mark.slow``: run with ``--slow``; always run when ``CI=true``.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import minisegnet as msn

settings.register_profile(
    "quick", max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if _in_ci else "quick"))

REQUESTED_BACKEND = os.environ.get("MINISEGNET_BACKEND", "numpy").strip().lower()


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run tests marked slow (CI always does)")


def pytest_collection_modifyitems(config, items):
    if REQUESTED_BACKEND == "cupy" and not msn.backend.cupy_available():
        skip = pytest.mark.skip(reason="MINISEGNET_BACKEND=cupy but CuPy or a CUDA GPU is not available")
        for item in items:
            item.add_marker(skip)
    if config.getoption("--slow") or _in_ci:
        return
    skip_slow = pytest.mark.skip(reason="slow test: run with --slow (CI runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def torch():
    """PyTorch, the reference implementation the ops are compared with."""
    return pytest.importorskip("torch", reason="PyTorch oracle not installed: pip install -e '.[test]'")


@pytest.fixture(autouse=True)
def _fixed_backend_and_seed():
    """Every test starts on the requested backend with seed 0, grad recording on."""
    if REQUESTED_BACKEND == "cupy" and msn.backend.cupy_available():
        msn.set_backend("cupy")
    else:
        msn.set_backend("numpy")
    msn.manual_seed(0)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
