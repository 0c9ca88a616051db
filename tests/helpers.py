"""Small helpers shared by the tests (import as ``from helpers import ...``)."""
import numpy as np

import minisegnet as msn


def t64(array, requires_grad=True):
    """A float64 minisegnet tensor on the current backend."""
    return msn.tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)


def as_torch(torch, array, requires_grad=True):
    """A float64 (or array-dtype) torch leaf tensor holding the same numbers."""
    data = msn.backend.to_numpy(array.data if isinstance(array, msn.Tensor) else array)
    t = torch.tensor(np.array(data))
    if requires_grad and t.is_floating_point():
        t.requires_grad_(True)
    return t


def assert_close(ours, theirs, atol=1e-10, rtol=1e-10, what="values"):
    """Compare a minisegnet tensor/array with a torch tensor or array."""
    a = ours.numpy() if isinstance(ours, msn.Tensor) else msn.backend.to_numpy(ours)
    b = theirs.detach().cpu().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    np.testing.assert_allclose(a, b, atol=atol, rtol=rtol, err_msg=what)


def assert_close_scaled(ours, theirs, tol, what):
    """``max |ours - theirs| <= tol * max(1, max |theirs|)``: a torch twin's outputs,
    gradients and buffers, whose magnitudes vary from layer to layer."""
    a = ours.numpy() if isinstance(ours, msn.Tensor) else np.asarray(ours)
    b = theirs.detach().numpy()
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    scale = max(1.0, float(np.abs(b).max()))
    diff = float(np.abs(a - b).max())
    assert diff <= tol * scale, f"{what}: max abs difference {diff:.3g} > {tol:.0e} * {scale:.3g}"


def assert_twin_gradients_and_buffers(model, twin, x, tx, tol):
    """After both backward passes: every parameter's gradient, the input's gradient
    and every buffer of ``model`` equal its torch ``twin``'s (``assert_close_scaled``)."""
    theirs = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        assert_close_scaled(p.grad, theirs[name].grad, tol, f"gradient of {name}")
    assert_close_scaled(x.grad, tx.grad, tol, "gradient of the input")
    their_buffers = dict(twin.named_buffers())
    for name, buf in model.named_buffers():
        assert_close_scaled(buf, their_buffers[name], tol, f"buffer {name}")


def traffic_per_step(transfers, train_steps):
    """Host-device copies of one training step, by call site (the CuPy stand-in counts them).

    ``transfers``: the fixture; ``train_steps(steps)`` trains a fresh run of
    ``steps`` steps. Two runs that differ only in their number of steps (2 and
    4): the difference of their traffic, halved, is what one step moves.
    Returns ``({(direction, site, what): (copies, bytes)}, text)``, the text
    listing them for an assertion's message."""
    logs = {}
    for steps in (2, 4):
        with transfers() as log:
            train_steps(steps)
        logs[steps] = log.by_site()
    per_step = {}
    for key in set(logs[2]) | set(logs[4]):
        n = logs[4].get(key, (0, 0))[0] - logs[2].get(key, (0, 0))[0]
        size = logs[4].get(key, (0, 0))[1] - logs[2].get(key, (0, 0))[1]
        if n:
            per_step[key] = (n / 2, size / 2)
    shown = "\n".join(f"{d} {s} {w}: {n:g} x, {b:g} B" for (d, s, w), (n, b) in sorted(per_step.items()))
    return per_step, shown


def current_xp():
    """The array module of the backend the test runs on (numpy, or cupy / its stand-in)."""
    return msn.backend.default_module()


def shared_memory_blocks(*processes):
    """The names of the shared-memory blocks (``array_pipe.py``'s) that exist now, made by this
    process or by one of ``processes`` (``multiprocessing`` processes or pids): a block's name
    says which (``msn<pid>_...``), so test runs beside this one cannot change the answer.
    None where there is no ``/dev/shm``."""
    import os

    if not os.path.isdir("/dev/shm"):
        return set()
    pids = {os.getpid()} | {getattr(p, "pid", p) for p in processes}
    return {name for name in os.listdir("/dev/shm")
            if name.startswith("msn") and name[3:].split("_")[0] in {str(pid) for pid in pids}}


def run_interrupted_in_epoch_2(config, out, monkeypatch, **run_options):
    """``train.run(config, out)`` stopped by a Ctrl-C (KeyboardInterrupt) in epoch 2's held-out
    pass, as a user would stop it: the checkpoint then holds epoch 1, ready for ``--resume``."""
    import pytest

    from minisegnet import train

    real_evaluate, calls = train.evaluate, []

    def evaluate_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)
    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(train, "evaluate", evaluate_then_interrupt)
        train.run(dict(config), out=out, **run_options)


def saved_figures(monkeypatch):
    """Every matplotlib Figure saved from now on (a viz function draws on its own Figure and only
    saves it), in order: the test reads what was drawn from them."""
    from matplotlib.figure import Figure

    saved, save = [], Figure.savefig

    def keep(fig, *args, **kwargs):
        saved.append(fig)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return saved


def png_header_only(path, width, height, colour_type):
    """A PNG whose header claims ``width`` x ``height`` pixels (``colour_type`` 2: RGB, 0: grey)
    with no pixel data: PIL's decompression-bomb check reads the header alone, so a few bytes
    stand for an image past its size limit."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))
