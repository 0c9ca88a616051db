"""The input check every model's ``forward`` starts with, written once."""
from ..autograd import Tensor

__all__ = ["check_image_batch"]


def check_image_batch(x, in_channels, model):
    """``x`` must be a Tensor of shape (N, in_channels, H, W); else a clear error naming ``model``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{model}: input must be a Tensor (wrap an array with msn.tensor), "
                        f"got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(f"{model}: input must be a Tensor of shape (N, {in_channels}, H, W), got {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{model}: input must be floating point, got dtype {x.dtype} (images of bytes: "
                        f"msn.tensor(images.astype(np.float32) / 255))")
    if min(x.shape[2:]) < 1:
        raise ValueError(f"{model}: input images must be at least 1x1 pixels, got {x.shape[2]}x{x.shape[3]} "
                         f"(input shape {x.shape})")
