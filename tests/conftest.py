"""Shared test set-up: Hypothesis profiles, the PyTorch oracle, the backend, the slow marker.

* Hypothesis: a quick profile by default; the thorough ``ci`` profile when
  ``CI=true`` (CI sets it) or ``HYPOTHESIS_PROFILE=ci``.
* ``torch`` fixture: PyTorch as a test-only oracle. Skips, with the reason,
  only when torch is not installed.
* Backend: every test starts on ``MINISEGNET_BACKEND`` (default ``numpy``).
  ``MINISEGNET_BACKEND=cupy python -m pytest`` runs the same suite on CuPy:
  real CuPy where it imports and sees a GPU, else the strict CPU stand-in in
  ``tests/cupy_standin`` (``MINISEGNET_CUPY=real|standin`` insists on one; see
  there). The session header says which. The ``cupy`` fixture gives that module
  (also in a NumPy run, for cross-backend tests); ``transfers`` counts the
  stand-in's host-device copies.
* ``@pytest.mark.slow``: run with ``--slow``; always run when ``CI=true``.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import cupy_standin

# Before minisegnet is imported: MINISEGNET_BACKEND=cupy must find a cupy module.
try:
    CUPY, CUPY_DESCRIPTION = cupy_standin.setup()
except RuntimeError as error:
    raise pytest.UsageError(str(error)) from None

import minisegnet as msn  # noqa: E402

settings.register_profile(
    "quick", max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if _in_ci else "quick"))

REQUESTED_BACKEND = os.environ.get("MINISEGNET_BACKEND", "numpy").strip().lower()


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run tests marked slow (CI always does)")


def pytest_report_header(config):
    return f"minisegnet backend: {REQUESTED_BACKEND}; cupy module: {CUPY_DESCRIPTION}"


def pytest_collection_modifyitems(config, items):
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
    msn.set_backend(REQUESTED_BACKEND)
    msn.manual_seed(0)
    msn.set_grad_enabled(True)          # as a plain call: a test that left recording off cannot leak it
    yield


@pytest.fixture
def cupy():
    """The session's cupy module: real CuPy on a GPU, else the CPU stand-in."""
    return CUPY


@pytest.fixture
def transfers():
    """``transfers()`` opens a block that records host-device copies (stand-in only)."""
    if not cupy_standin.is_standin(CUPY):
        pytest.skip("transfer counts come from the CPU stand-in; this session runs real CuPy")
    return cupy_standin.count_transfers


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
