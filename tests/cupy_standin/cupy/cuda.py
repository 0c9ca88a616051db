"""``cupy.cuda`` for the CPU stand-in: one pretend device, and the few calls code needs.

The device count is 1, or 0 when ``CUDA_VISIBLE_DEVICES`` is set to the empty
string (then ``runtime.getDeviceCount()`` raises as CUDA does on a machine
without a GPU). Synchronising does nothing (the stand-in runs every "kernel"
at once); events time with the host clock. Memory pools report 0 bytes:
GPU memory is not modelled.
"""
import os
import time

__all__ = ["runtime", "Device", "Stream", "Event", "get_current_stream", "get_elapsed_time", "is_available",
           "MemoryPool", "MemoryHook", "set_allocator", "CUDARuntimeError"]


class CUDARuntimeError(RuntimeError):
    pass


def _device_count():
    return 0 if os.environ.get("CUDA_VISIBLE_DEVICES") == "" else 1


class runtime:
    """``cupy.cuda.runtime`` (a namespace of CUDA runtime calls)."""

    CUDARuntimeError = CUDARuntimeError

    @staticmethod
    def getDeviceCount():
        if _device_count() == 0:
            raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        return _device_count()

    @staticmethod
    def runtimeGetVersion():
        return 12080

    @staticmethod
    def driverGetVersion():
        return 12080

    @staticmethod
    def getDeviceProperties(device):
        return {"name": b"CPU stand-in for CuPy (tests/cupy_standin)", "totalGlobalMem": 0,
                "major": 0, "minor": 0}

    @staticmethod
    def deviceSynchronize():
        pass

    @staticmethod
    def memGetInfo():
        return 0, 0


class Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)
        if self.id >= _device_count():
            raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")

    compute_capability = "00"

    def synchronize(self):
        pass

    def use(self):
        pass

    @property
    def mem_info(self):
        return 0, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class Stream:
    def __init__(self, null=False, non_blocking=False, ptds=False):
        pass

    def synchronize(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


Stream.null = Stream(null=True)


def get_current_stream():
    return Stream.null


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self._t = None

    def record(self, stream=None):
        self._t = time.perf_counter()

    def synchronize(self):
        pass


def get_elapsed_time(start_event, end_event):
    """Milliseconds between two recorded events."""
    return (end_event._t - start_event._t) * 1000.0


def is_available():
    return _device_count() > 0


class MemoryPool:
    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_bytes(self):
        return 0

    def free_all_blocks(self, stream=None):
        pass

    def malloc(self, size):
        raise NotImplementedError("GPU memory is not modelled by the CPU stand-in")


class MemoryHook:
    """Base class of memory hooks (the stand-in never calls them)."""

    name = "MemoryHook"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def alloc_preprocess(self, **kwargs):
        pass

    def alloc_postprocess(self, **kwargs):
        pass

    def malloc_preprocess(self, **kwargs):
        pass

    def malloc_postprocess(self, **kwargs):
        pass

    def free_preprocess(self, **kwargs):
        pass

    def free_postprocess(self, **kwargs):
        pass


def set_allocator(allocator=None):
    pass
