"""Move a trained minisegnet model to PyTorch.

``to_torch(model)`` builds the model's PyTorch twin (``minisegnet.torch_models``:
the same architecture written in ``torch.nn``, with the same module names and
so the same state-dict keys) and copies every parameter and buffer into it::

    from minisegnet.export import to_torch
    twin = to_torch(model)          # a torch.nn.Module, same weights, same mode
    logits = twin(torch.from_numpy(images))

PyTorch is imported only when these functions are called, so minisegnet itself
never needs it.
"""
import numpy as np

__all__ = ["to_torch", "torch_twin"]


def torch_twin(model):
    """A freshly initialised PyTorch twin of ``model`` (same class, same
    constructor arguments, same state-dict keys), without copying weights."""
    from . import torch_models as tm
    from .models import FCN, DeepLabV3Plus, PanopticDeepLab, SegNet, UNet

    if isinstance(model, UNet):
        return tm.UNet(model.in_channels, model.num_classes, model.base_channels, model.depth, model.padding,
                       model.batch_norm, model.up_mode)
    if isinstance(model, FCN):
        return tm.FCN(model.num_classes, model.variant, model.in_channels, model.width, model.fc_channels,
                      model.dropout)
    if isinstance(model, SegNet):
        return tm.SegNet(model.in_channels, model.num_classes, model.base_channels, model.depth,
                         model.convs_per_stage)
    if isinstance(model, DeepLabV3Plus):
        return tm.DeepLabV3Plus(model.in_channels, model.num_classes, model.output_stride, model.atrous_rates,
                                model.width_mult, model.aspp_channels, model.low_level_channels,
                                model.decoder_channels, model.dropout)
    if isinstance(model, PanopticDeepLab):
        return tm.PanopticDeepLab(model.in_channels, model.num_classes, model.output_stride, model.atrous_rates,
                                  model.width_mult, model.aspp_channels, model.low_level_channels,
                                  model.decoder_channels, model.dropout, model.instance_aspp_channels,
                                  model.instance_low_level_channels, model.instance_decoder_channels,
                                  model.head_channels)
    raise TypeError(f"to_torch: no PyTorch twin for {type(model).__name__}; "
                    "supported: UNet, FCN, SegNet, DeepLabV3Plus, PanopticDeepLab")


def to_torch(model):
    """An equivalent ``torch.nn.Module`` holding ``model``'s weights and buffers.

    The twin has exactly ``model``'s state-dict keys (a mismatch is an error,
    not a silent partial load), the dtype of ``model``'s parameters (float32 or
    float64), each layer's train/eval mode (a model training with frozen batch norms
    keeps them so) and batch norm's ``eps`` and ``momentum``. It lives on the CPU; move it with
    ``.to("cuda")`` as usual.
    """
    import torch

    twin = torch_twin(model)
    state = model.state_dict()
    dtypes = {str(np.dtype(v.dtype)) for v in state.values()
              if np.dtype(v.dtype).kind == "f"}
    if len(dtypes) != 1:
        raise ValueError(f"to_torch: the model's floating-point weights mix dtypes {sorted(dtypes)}; "
                         "cast it with model.to(dtype) first")
    dtype = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16}[dtypes.pop()]
    twin = twin.to(dtype)
    ours, theirs = set(state), set(twin.state_dict())
    if ours != theirs:
        raise KeyError(f"to_torch: state-dict keys differ from the PyTorch twin's: only in minisegnet "
                       f"{sorted(ours - theirs)}, only in torch {sorted(theirs - ours)}")
    twin.load_state_dict({name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()})
    # what a layer holds past its weights: its own mode (a model may train with frozen batch
    # norms) and batch norm's eps and momentum (set on the layer, not through the constructor)
    theirs = dict(twin.named_modules())
    for name, module in model.named_modules():
        other = theirs.get(name)
        if other is None:
            continue
        other.training = module.training
        if isinstance(other, torch.nn.modules.batchnorm._BatchNorm):
            other.eps, other.momentum = module.eps, module.momentum
    return twin
