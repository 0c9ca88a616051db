"""Data parallelism: one training step shared by several processes, each on a slice of the batch.

Threads in one Python process overlap only inside NumPy's loops: between
two operations each needs the interpreter lock, so a second thread buys our
step little (docs/performance.md, "Using both cores"). Processes have an
interpreter each and share nothing, so they do not wait for one another.
Data parallelism uses them for training: every process holds a copy of the
model and works on its own slice of the batch. The scheme is close to
PyTorch's ``nn.DataParallel`` (one optimizer; the weights sent out and the
gradients and outputs gathered every step), with processes where it has
threads; unlike it, each process also computes its own slice's loss (where
``nn.DataParallel`` computes one loss on the gathered outputs), as
``DistributedDataParallel`` does. One step with ``K`` processes (this one
and ``K - 1`` workers, started once):

1. the batch of ``N`` images (and its targets) is cut into ``K`` slices of
   ``n_k`` images, about ``N / K`` each;
2. each worker is sent the current weights and its slice through a pipe
   (the arrays through shared memory beside it: ``array_pipe.py``); this
   process keeps slice 0;
3. all of them run forward, loss and backward on their slice at once;
4. the loss of slice ``k`` is a mean over its images, so the batch's
   gradient is the weighted mean of theirs (and the loss likewise)::

       g = sum_k (n_k / N) g_k          loss = sum_k (n_k / N) loss_k

   written into this process's parameters' ``.grad``; the workers also
   send their outputs back, so the step returns the whole batch's;
5. the optimizer then updates the weights here, once, as after a
   one-process backward.

For a loss that is a mean over pixels, each image weighing the same
(cross-entropy without ignored pixels), this is the one-process gradient up
to rounding (a test checks it). A loss averaged over a count that differs
between slices (ignored pixels, objects) is averaged by images instead
(``DistributedDataParallel`` averages its processes' gradients too, with
equal weights instead of by images); a slice whose pixels are all ignored has no mean at
all (its loss is NaN), which is why the trainer uses one process when the
data have an ignored label. BatchNorm would compute its statistics per
slice, not per batch, so a model with BatchNorm is refused.

The held-out pass is shared the same way (``forward``): each process runs the
model in eval mode, without gradients, on its slice, and this one joins the
outputs (the weights are sent first: the optimizer has moved them since the
last step).

Each process runs one thread (``parallel.one_thread``; OpenBLAS too, where
its thread count can be set): the processes, not threads, share the cores.
A worker, which runs nothing but steps, keeps its freed memory for the next
one (``allocator.keep_freed_memory``; not when ``allocator.KEEP_FREED`` was
off in this process when the workers started).
``benchmarks/bench_processes.py`` measures the step both ways. ``OneProcess``
is the same step without workers (the plain forward, loss and backward), so
that a training loop calls one or the other the same way. NumPy only: a GPU
runs one process.
"""
import contextlib
import multiprocessing
import pickle
import signal
import threading
import traceback

import numpy as np

from . import allocator, backend, checks, parallel, random
from .array_pipe import ArrayPipe
from .autograd import Tensor, no_grad
from .nn.normalization import BatchNorm2d
from .run_config import UserError

__all__ = ["OneProcess", "DataParallel", "training_step", "has_batch_norm", "worker_seed", "processes_for"]


class OneProcess:
    """``step(images, targets) -> (outputs, loss value)``: forward, loss and backward in this process;
    ``forward(images) -> outputs``: the held-out pass (eval mode, no gradients).

    ``loss_of(model, images, targets) -> (outputs, loss)``; ``forward_of(model,
    images) -> outputs`` (default: ``model(images)``). The gradients are left in
    the parameters' ``.grad`` (cleared first), ready for the optimizer. The
    outputs are for scoring the step, not for another backward pass
    (``DataParallel`` returns them cut from the graph).
    """

    def __init__(self, model, loss_of, forward_of=None):
        self.model, self.loss_of, self.forward_of = model, loss_of, forward_of or _call

    def step(self, images, targets):
        for p in self.model.parameters():
            p.grad = None
        outputs, loss = self.loss_of(self.model, images, targets)
        loss.backward()
        return outputs, loss.item()

    def forward(self, images):
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        try:
            with no_grad():
                return self.forward_of(self.model, images)
        finally:
            for m, training in modes:           # each layer's own mode back (a layer in eval() stays so)
                m.training = training

    def set_epoch(self, epoch):
        """Nothing to reseed: this process draws from the shared ``generator()``
        (``DataParallel.set_epoch`` reseeds its workers)."""

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DataParallel(OneProcess):
    """The same step shared by ``processes`` processes (this one and ``processes - 1`` workers).

    Start it once, use it for every step, and close it (or use it as a
    context manager): ``close`` stops the workers. ``seed`` seeds each
    worker's random numbers (dropout), per epoch: ``set_epoch(epoch)``
    reseeds worker ``k`` from ``(seed, epoch, k)`` (``worker_seed``), and a
    new ``DataParallel`` starts at epoch 0. So the numbers a worker draws in
    an epoch depend on the seed, the epoch and the worker alone, not on the
    epochs before it, and a run resumed at an epoch draws what an
    uninterrupted one does there. (This process's numbers are the shared
    ``generator()``, whose state a training checkpoint saves.) The workers are started with ``spawn`` (a
    fresh interpreter, sent a copy of ``model`` and ``loss_of``, which must
    therefore be picklable: a module-level function, or a
    ``functools.partial`` of one).
    """

    def __init__(self, model, loss_of, processes, seed=0, forward_of=None, shared_memory=True):
        super().__init__(model, loss_of, forward_of)
        if not isinstance(processes, int) or isinstance(processes, bool) or processes < 2:
            raise ValueError(f"DataParallel: processes must be an integer of at least 2, got {processes!r}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"DataParallel: seed must be a non-negative integer, got {seed!r}")
        shared_memory = checks.flag(shared_memory, "shared_memory", "DataParallel")
        if has_batch_norm(model):
            raise ValueError("DataParallel: the model has BatchNorm, whose statistics would be per process "
                             "instead of per batch; train it in one process")
        if any(backend.get_array_module(p.data) is not np for p in model.parameters()):
            raise ValueError("DataParallel: the model's parameters must be NumPy arrays (a GPU runs one process)")
        self.processes, self.seed = processes, int(seed)
        self.params = model.parameters()
        context = multiprocessing.get_context("spawn")
        self.pipes, self.workers = [], []
        self.waiting = set()                            # indices of the workers whose answer is due
        try:
            for k in range(1, processes):
                here, there = context.Pipe()
                worker = context.Process(target=_worker, args=(there, worker_seed(seed, 0, k), shared_memory,
                                                               allocator.KEEP_FREED),
                                         name=f"minisegnet-data-parallel-{k}", daemon=True)
                with _ctrl_c_ignored():     # a Ctrl-C while it starts up (imports) must not kill it
                    worker.start()
                there.close()
                self.pipes.append(ArrayPipe(here, shared_memory))     # the arrays: array_pipe.py
                self.workers.append(worker)
                # the model and the functions go through our pipe, not start(): a worker that dies
                # early (see _send) then breaks the pipe instead of hanging start()
                try:
                    _send(self.pipes[-1], (model, loss_of, self.forward_of))
                except (pickle.PicklingError, AttributeError, TypeError) as error:
                    raise ValueError(f"DataParallel: cannot send the model and loss_of to a worker process "
                                     f"({type(error).__name__}: {error}); loss_of must be a module-level "
                                     f"function (or a functools.partial of one), or train in one "
                                     f"process") from None
        except BaseException:
            self.close()
            raise

    def set_epoch(self, epoch):
        """Reseed each worker's random numbers for ``epoch`` (from ``worker_seed(seed, epoch, k)``)."""
        if not isinstance(epoch, (int, np.integer)) or isinstance(epoch, bool) or epoch < 0:
            raise ValueError(f"DataParallel.set_epoch: epoch must be a non-negative integer, got {epoch!r}")
        if not self.workers:
            raise RuntimeError("DataParallel: closed (its workers have stopped); start a new one")
        try:
            for k, pipe in enumerate(self.pipes, start=1):
                _send(pipe, ("seed", worker_seed(self.seed, int(epoch), k)))    # no answer: pipes keep order
        except BaseException:
            self.close()
            raise

    def step(self, images, targets):
        with parallel.one_thread():                     # the processes share the cores, not threads
            return self._step(images, targets)

    def _slices(self, n):
        """Images ``a:b`` of a batch of ``n`` for each process, the larger slices first (so this
        process's slice 0 is never empty; a batch smaller than K leaves workers idle), and the
        ``(worker, slice)`` pairs of the workers with images."""
        if not self.workers:
            raise RuntimeError("DataParallel: closed (its workers have stopped); start a new one")
        if n == 0:                                      # (n_k / N would divide by zero)
            raise ValueError("DataParallel: the batch has no images; there is nothing to share")
        sizes = [n // self.processes + (k < n % self.processes) for k in range(self.processes)]
        # Python ints, not NumPy's: a share n_k / N that is a NumPy float64 makes float32 gradients float64
        bounds = np.cumsum([0] + sizes).tolist()
        slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        return slices, [(k, part) for k, part in enumerate(slices[1:]) if part.stop > part.start]

    def _step(self, images, targets):
        # 1. cut the batch: n_k images for process k
        n = len(images)
        slices, busy = self._slices(n)
        try:
            # 2. each busy worker gets the current weights and its slice
            weights = [p.data for p in self.params]
            modes = [m.training for m in self.model.modules()]      # eval() layers stay so in the workers
            for k, part in busy:
                self.waiting.add(k)
                _send(self.pipes[k], ("step", weights, images[part], _cut(targets, part), modes))
            # 3. this process's slice, while the workers do theirs
            outputs, loss_value = super().step(images[slices[0]], _cut(targets, slices[0]))
            # 4. the weighted means: g = sum_k (n_k / N) g_k, and the loss likewise
            share = (slices[0].stop - slices[0].start) / n
            grads = [None if p.grad is None else share * p.grad.data for p in self.params]
            loss_value *= share
            parts = [_arrays(outputs)]
            for k, part in busy:
                their_loss, their_grads, their_outputs = _receive(self.pipes[k])
                self.waiting.discard(k)
                share = (part.stop - part.start) / n
                loss_value += share * their_loss
                for i, g in enumerate(their_grads):
                    if g is not None:
                        grads[i] = share * g if grads[i] is None else grads[i] + share * g
                parts.append(their_outputs)
        except BaseException:           # an error here or in a worker, a dead worker, Ctrl-C: stop them all
            self.close()
            raise
        for p, g in zip(self.params, grads):
            p.grad = None if g is None else Tensor(g)
        return _joined(parts), loss_value

    def forward(self, images):
        """The held-out pass shared like a step: each process's slice in eval mode, without
        gradients, with the current weights; the outputs joined back by image."""
        with parallel.one_thread():
            slices, busy = self._slices(len(images))
            try:
                weights = [p.data for p in self.params]
                for k, part in busy:
                    self.waiting.add(k)
                    _send(self.pipes[k], ("forward", weights, images[part]))
                parts = [_arrays(super().forward(images[slices[0]]))]
                for k, _ in busy:
                    parts.append(_receive(self.pipes[k])[1])
                    self.waiting.discard(k)
            except BaseException:
                self.close()
                raise
        return _joined(parts)

    def close(self):
        """Stop the workers: an idle one is told to and waited for; one still working on a step
        whose answer is not wanted any more (after an error or Ctrl-C) is ended at once."""
        for k, (pipe, worker) in enumerate(zip(self.pipes, self.workers)):
            if k in self.waiting:
                worker.terminate()
                continue
            try:
                pipe.send(None)
            except (OSError, ValueError):
                pass
        for worker in self.workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        for pipe in self.pipes:
            pipe.close(remove_mapped=True)      # a worker that was killed could not remove its block
        self.pipes, self.workers, self.waiting = [], [], set()


def has_batch_norm(model):
    """Whether ``model`` has a BatchNorm layer (which cannot be shared between processes)."""
    return any(isinstance(m, BatchNorm2d) for m in model.modules())


def training_step(model, loss_of, processes, seed=0, forward_of=None):
    """``OneProcess(model, loss_of, forward_of)`` for one process, else ``DataParallel`` of ``processes``."""
    if processes == 1:
        return OneProcess(model, loss_of, forward_of)
    return DataParallel(model, loss_of, processes, seed, forward_of)


def worker_seed(seed, epoch, k):
    """The seed of worker ``k``'s random numbers in ``epoch`` of a run seeded ``seed``: one
    64-bit number that NumPy's ``SeedSequence`` draws from the three, so that nearby seeds,
    epochs and workers get unrelated streams."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(k)]).generate_state(1, np.uint64)[0])


def _call(model, images):
    """The default ``forward_of``: the model on the images, as a Tensor."""
    return model(Tensor(images))


# ---- the workers' side ----------------------------------------------------------------------
def _worker(pipe, seed, shared_memory, keep_freed):
    """A worker's whole life: one thread; first the model, ``loss_of`` and ``forward_of``, then
    for each message ``("step", weights, images, targets, modes)``, load the weights and each
    module's training mode (the parent's), run the step on the slice and send back
    ``(loss, gradients, outputs)``; for ``("forward", weights, images)``, the held-out pass's
    outputs; for ``("seed", seed)``, reseed (no answer); stop on ``None``. An error is sent back
    as ``("error", its traceback)`` instead of raised here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # Ctrl-C is for the parent, which stops us
    signal.signal(signal.SIGTERM, _exit)                # terminate(): still remove our shared memory
    backend.set_backend("numpy")                        # whatever MINISEGNET_BACKEND says
    if keep_freed:
        allocator.keep_freed_memory()                   # as the parent: the steps reuse their memory
    pipe = ArrayPipe(pipe, shared_memory)
    try:
        _serve(pipe, seed)
    finally:
        pipe.close()


@contextlib.contextmanager
def _ctrl_c_ignored():
    """SIGINT ignored while a worker is started, so that the new process starts with it ignored:
    Ctrl-C in a terminal reaches the whole process group, and a worker still importing
    minisegnet (before ``_worker`` ignores it) would die with a traceback. The parent's own
    handler is back at once (signals can only be set from the main thread: elsewhere, as is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _exit(signum, frame):
    raise SystemExit(0)


def _serve(pipe, seed):
    try:
        first = pipe.recv()
    except EOFError:
        return
    if first is None:                                   # stopped before it began
        return
    model, loss_of, forward_of = first
    with parallel.one_thread():
        random.manual_seed(seed)
        one = OneProcess(model, loss_of, forward_of)
        params, modules = model.parameters(), model.modules()
        while True:
            try:
                message = pipe.recv()
            except EOFError:                            # the parent has gone without a word
                break
            if message is None:
                break
            if message[0] == "seed":                    # set_epoch: this epoch's random numbers
                random.manual_seed(message[1])
                continue
            kind, weights, images, *step = message        # step: (targets, each module's training flag)
            try:
                for p, w in zip(params, weights):
                    p.data[...] = w
                if kind == "forward":
                    pipe.send(("outputs", _arrays(one.forward(images))))
                    continue
                targets, modes = step
                for m, training in zip(modules, modes):          # the parent's modes, layer by layer
                    m.training = training
                outputs, loss_value = one.step(images, targets)
                grads = [None if p.grad is None else p.grad.data for p in params]
                pipe.send((loss_value, grads, _arrays(outputs)))
            except Exception:
                pipe.send(("error", traceback.format_exc()))


def _send(pipe, message):
    """``pipe.send(message)``; a worker found dead is a RuntimeError saying the likely reason."""
    try:
        pipe.send(message)
    except OSError as error:
        raise _worker_stopped(error) from None


def _receive(pipe):
    """A worker's answer; its error (or its death) raised here as a RuntimeError."""
    try:
        answer = pipe.recv()
    except (EOFError, OSError) as error:
        raise _worker_stopped(error) from None
    if answer[0] == "error":
        raise RuntimeError(f"DataParallel: the step (or held-out pass) failed in a worker process:\n{answer[1]}")
    return answer


def _worker_stopped(error):
    return RuntimeError(f"DataParallel: a worker process has stopped ({type(error).__name__}: {error}; its "
                        "output above may say why). A script that starts one must keep its top-level code "
                        "under if __name__ == '__main__': (each worker imports the script); or use "
                        "processes=1 (minisegnet train --processes 1)")


# ---- cutting a batch and joining the outputs ------------------------------------------------------
def _cut(targets, part):
    """Images ``part`` of the targets: an array, or a tuple, list or dict of arrays (each batch-first)."""
    if isinstance(targets, dict):
        return {key: _cut(value, part) for key, value in targets.items()}
    if isinstance(targets, (tuple, list)):
        return type(targets)(_cut(value, part) for value in targets)
    if not isinstance(targets, np.ndarray):
        raise TypeError("DataParallel: the targets must be arrays (or a tuple, list or dict of them), one row "
                        f"per image, to be cut between the processes; got {type(targets).__name__}")
    return targets[part]


def _arrays(outputs):
    """A model's outputs (a Tensor, or a dict of Tensors) as arrays, cut from the graph."""
    if isinstance(outputs, dict):
        return {key: value.data for key, value in outputs.items()}
    return outputs.data


def _joined(parts):
    """The slices' outputs put back together along the batch, as Tensors."""
    if isinstance(parts[0], dict):
        return {key: Tensor(np.concatenate([part[key] for part in parts])) for key in parts[0]}
    return Tensor(np.concatenate(parts))


def processes_for(config, model, task):
    """How many processes share each training step of ``minisegnet train``: ``--processes``, else 2
    where they were measured to pay and fit: on the CPU with two threads allowed
    (``parallel.get_num_threads() == 2``: two cores; more were not measured), a batch of at least
    two images, a model without BatchNorm (whose statistics would be per process) and data
    without an ignored label (a slice of ignored pixels only would have no mean loss)."""
    batch_norm = has_batch_norm(model)
    requested = config["processes"]
    if requested is None:
        fits = (config["backend"] == "numpy" and parallel.get_num_threads() == 2 and config["batch_size"] >= 2
                and not batch_norm and getattr(task, "ignore_index", None) is None)
        return 2 if fits else 1
    requested = int(requested)
    if requested > 1 and config["backend"] != "numpy":
        raise UserError(f"--processes {requested}: several processes share a step on the CPU (numpy) only; "
                        f"--backend {config['backend']} runs one")
    if requested > 1 and batch_norm:
        raise UserError(f"--processes {requested}: this model has BatchNorm, whose statistics would be per "
                        "process instead of per batch; use --processes 1")
    if requested > 1 and getattr(task, "ignore_index", None) is not None:
        raise UserError(f"--processes {requested}: this data may mark ignored pixels (label {task.ignore_index}); "
                        "a process whose slice of a batch has only ignored pixels has no mean loss (0/0), and "
                        "the slices' losses are mixed by image count; use --processes 1")
    return requested
