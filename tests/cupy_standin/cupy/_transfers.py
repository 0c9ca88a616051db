"""The stand-in's ledger of host-device traffic: every copy, in either direction, by call site.

On a GPU, data crosses the PCIe bus only when code asks for it: an upload
(``cupy.asarray`` of a NumPy array, a NumPy or list index, ``ndarray.set``) or
a download (``.get()``, ``cupy.asnumpy``, ``.item()``, ``float(x)``,
``int(x)``, ``bool(x)``, printing). A download also *synchronises*: the host
waits for every queued kernel. Some CuPy routines download a scalar on their
own to size their output (boolean-mask indexing, ``bincount``, ``nonzero``,
``unique``...); those count as downloads too.

Each event is recorded with the first stack frame outside the stand-in (and
outside ``minisegnet/backend.py``, whose helpers only forward the request),
so a report names the line of library code that asked::

    from cupy_standin import count_transfers
    with count_transfers() as log:
        train_step()
    print(log.report())            # per call site: direction, count, bytes
    assert log.count("H2D") == 1   # only the input batch went up

For a whole program (a training run, an example), set ``CUPY_STANDIN_REPORT``
to a file name: the report of everything since import is written there at exit.
"""
import atexit
import contextlib
import os
import sys
from collections import Counter

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # tests/cupy_standin
_STANDIN = tuple(os.path.join(_ROOT, package) + os.sep for package in ("cupy", "cupyx"))
_FORWARDERS = (os.path.join("minisegnet", "backend.py"),)


class Event:
    __slots__ = ("direction", "nbytes", "what", "site")

    def __init__(self, direction, nbytes, what, site):
        self.direction, self.nbytes, self.what, self.site = direction, nbytes, what, site

    def __repr__(self):
        return f"{self.direction} {self.nbytes} B ({self.what}) at {self.site}"


class TransferLog:
    """Events recorded while a ``count_transfers()`` block was open."""

    def __init__(self):
        self.events = []

    def count(self, direction=None):
        """Number of events, optionally of one direction ("H2D" or "D2H")."""
        return sum(1 for e in self.events if direction in (None, e.direction))

    def nbytes(self, direction=None):
        return sum(e.nbytes for e in self.events if direction in (None, e.direction))

    def by_site(self):
        """{(direction, site, what): (count, bytes)}, most frequent first."""
        counts, sizes = Counter(), Counter()
        for e in self.events:
            key = (e.direction, e.site, e.what)
            counts[key] += 1
            sizes[key] += e.nbytes
        return {key: (n, sizes[key]) for key, n in counts.most_common()}

    def report(self):
        lines = [f"{self.count('H2D')} uploads ({self.nbytes('H2D')} B), "
                 f"{self.count('D2H')} downloads ({self.nbytes('D2H')} B)"]
        for (direction, site, what), (n, size) in self.by_site().items():
            lines.append(f"  {direction} x{n:<4d} {size:>10d} B  {what:<22s} {site}")
        return "\n".join(lines)


_open_logs = []
total = TransferLog()      # everything since import


def _call_site():
    frame = sys._getframe(2)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_STANDIN) and not filename.endswith(_FORWARDERS):
            return f"{os.path.relpath(filename)}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return "?"


def record(direction, nbytes, what):
    """Note one copy: ``direction`` "H2D" (upload) or "D2H" (download)."""
    event = Event(direction, int(nbytes), what, _call_site())
    total.events.append(event)
    for log in _open_logs:
        log.events.append(event)


@contextlib.contextmanager
def count_transfers():
    """Collect the events of a block in a fresh ``TransferLog`` (blocks may nest)."""
    log = TransferLog()
    _open_logs.append(log)
    try:
        yield log
    finally:
        _open_logs.remove(log)


def _write_total_report(path):
    with open(path, "w") as f:
        f.write(total.report() + "\n")


if os.environ.get("CUPY_STANDIN_REPORT"):
    atexit.register(_write_total_report, os.environ["CUPY_STANDIN_REPORT"])
