"""minisegnet: a from-scratch deep-learning engine for image segmentation.

    import minisegnet as msn
    from minisegnet import functional as F, nn, shapes

NumPy on the CPU or CuPy on a GPU behind one switch (``msn.set_backend``).
"""
try:
    from . import backend, parallel  # noqa: F401
except ValueError as error:        # MINISEGNET_BACKEND or MINISEGNET_NUM_THREADS misspelt: what they raise on import
    from .cli import exit_if_starting_the_command
    exit_if_starting_the_command(error)
    raise
from . import shapes  # noqa: F401
from .autograd import (Function, Tensor, as_tensor, enable_grad, inference_mode, is_grad_enabled, no_grad,  # noqa: F401
                       set_grad_enabled, tensor)
from .backend import get_backend, set_backend  # noqa: F401
from .random import manual_seed  # noqa: F401
from . import functional  # noqa: F401
from .functional.basic import cat, stack  # noqa: F401
from . import nn  # noqa: F401
from .io import save, load  # noqa: F401
from . import metrics, optim  # noqa: F401
from . import parallel  # noqa: F401
from .parallel import get_num_threads, set_num_threads  # noqa: F401

__version__ = "0.1.0"
