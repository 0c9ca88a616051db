"""Stateless ops, each a forward/backward pair: ``from minisegnet import functional as F``.

One module per concept: basic arithmetic and shapes, activations,
convolution (im2col), pooling, resizing, sampling at arbitrary points
(grid_sample, affine_grid), padding/cropping, normalization,
losses. Names and arguments follow ``torch.nn.functional``.
"""
from .basic import *  # noqa: F401,F403
from .activation import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .resize import *  # noqa: F401,F403
from .padding import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .sampling import *  # noqa: F401,F403
from .indexing import *  # noqa: F401,F403
