"""Layers that hold parameters and state, wrapping ``functional``: ``from minisegnet import nn``."""
from . import init  # noqa: F401
from .module import *  # noqa: F401,F403
from .activation import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
