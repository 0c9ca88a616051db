"""The strict CPU stand-in for CuPy, and how the test suite chooses it.

``tests/cupy_standin/cupy`` is a fake ``cupy`` package (and ``cupyx`` beside
it) whose arrays live in NumPy but obey CuPy's rules at the seams where
NumPy code breaks on a GPU; read its docstring for the list. Putting this
folder first on ``sys.path`` (and ``PYTHONPATH``, for subprocesses) makes
``import cupy`` find it.

``tests/conftest.py`` calls ``setup()`` before minisegnet is imported. Which
``cupy`` the suite gets is decided by the environment variable
``MINISEGNET_CUPY``:

* ``auto`` (default): real CuPy if it imports and sees a GPU, else the stand-in;
* ``real``: real CuPy or stop at once with one line saying why (a GPU session
  uses this so that it cannot silently test the stand-in);
* ``standin``: the stand-in, even where real CuPy works.

``MINISEGNET_BACKEND`` (``numpy`` by default) is the backend the tests run
on; the ``cupy`` module above is also what cross-backend tests (moving a
tensor between backends) use in a NumPy run.
"""
import os
import sys

PATH = os.path.dirname(os.path.abspath(__file__))
MODES = ("auto", "real", "standin")


def _forget_cupy():
    for name in [n for n in sys.modules if n.split(".")[0] in ("cupy", "cupyx", "cupy_backends")]:
        del sys.modules[name]


def _real_cupy():
    """(module, None) when real CuPy imports and sees a GPU, else (None, reason)."""
    try:
        import cupy
    except ImportError as exc:
        return None, f"CuPy is not installed ({exc})"
    except Exception as exc:        # a broken install: CUDA libraries missing, ...
        _forget_cupy()
        return None, f"CuPy does not import ({type(exc).__name__}: {exc})"
    if getattr(cupy, "__standin__", False):
        return None, "the stand-in is already installed"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        count, why = 0, f"{type(exc).__name__}: {exc}"
    else:
        why = "0 devices"
    if count < 1:
        _forget_cupy()
        return None, f"CuPy {cupy.__version__} sees no GPU ({why})"
    return cupy, None


def install():
    """Make ``import cupy`` (here and in subprocesses) give the stand-in; returns it."""
    _forget_cupy()
    if sys.path[:1] != [PATH]:
        sys.path.insert(0, PATH)
    inherited = os.environ.get("PYTHONPATH", "")
    if PATH not in inherited.split(os.pathsep):
        os.environ["PYTHONPATH"] = PATH + (os.pathsep + inherited if inherited else "")
    import cupy
    assert getattr(cupy, "__standin__", False), cupy.__file__
    return cupy


def setup(mode=None):
    """Choose the ``cupy`` module for this test session (see the module docstring).

    Returns ``(cupy_module, description)``; raises ``RuntimeError`` (one line)
    when ``MINISEGNET_CUPY=real`` cannot be honoured or the mode is unknown.
    """
    mode = (mode or os.environ.get("MINISEGNET_CUPY", "auto")).strip().lower()
    if mode not in MODES:
        raise RuntimeError(f"MINISEGNET_CUPY must be one of {MODES}, got {mode!r}")
    if mode != "standin":
        cupy, reason = _real_cupy()
        if cupy is not None:
            name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
            name = name.decode() if isinstance(name, bytes) else name
            return cupy, f"real CuPy {cupy.__version__} on {name}"
        if mode == "real":
            raise RuntimeError(f"MINISEGNET_CUPY=real but {reason}")
    else:
        reason = "MINISEGNET_CUPY=standin"
    return install(), f"the CPU stand-in (tests/cupy_standin; {reason})"


def is_standin(module):
    return getattr(module, "__standin__", False)


def count_transfers():
    """A context manager collecting the stand-in's host-device copies (see ``cupy._transfers``)."""
    from cupy._transfers import count_transfers as count
    return count()
