"""The segmentation model zoo, each model readable top to bottom in its own file:

* ``UNet`` (``unet.py``): contracting and expanding paths with copy-and-crop skips.
* ``FCN`` (``fcn.py``): FCN-32s/16s/8s, a convolutionalised VGG with learned upsampling.
* ``SegNet`` (``segnet.py``): an encoder-decoder that passes only max-pool indices.
* ``DeepLabV3Plus`` (``deeplab.py``): MobileNetV2-style backbone, atrous convolution, ASPP.
* ``PanopticDeepLab`` (``panoptic_deeplab.py``): DeepLabV3+ plus a class-agnostic
  instance branch (object centre heatmap and offsets): panoptic segmentation.

``build_model(name, in_channels, num_classes, **kwargs)`` maps the command-line
names to constructors. ``minisegnet.export.to_torch`` turns any of them into a
PyTorch module with the same weights.
"""
import inspect

from .deeplab import DeepLabV3Plus
from .fcn import FCN
from .panoptic_deeplab import PanopticDeepLab
from .segnet import SegNet
from .unet import UNet

__all__ = ["UNet", "FCN", "SegNet", "DeepLabV3Plus", "PanopticDeepLab", "build_model", "model_options",
           "MODEL_NAMES"]

MODEL_NAMES = ("unet", "fcn8s", "fcn16s", "fcn32s", "segnet", "deeplabv3plus", "panoptic-deeplab")


def model_options(name):
    """The keyword options of model ``name``'s constructor that ``build_model`` passes on
    (all but those it fills in itself: the channels, the classes and FCN's variant)."""
    cls = {"unet": UNet, "fcn8s": FCN, "fcn16s": FCN, "fcn32s": FCN, "segnet": SegNet,
           "deeplabv3plus": DeepLabV3Plus, "panoptic-deeplab": PanopticDeepLab}.get(name)
    if cls is None:
        raise ValueError(f"unknown model name {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    filled = ("self", "in_channels", "num_classes", "variant")
    return [p for p in inspect.signature(cls.__init__).parameters if p not in filled]


def build_model(name, in_channels, num_classes, **kwargs):
    """A model by its command-line name; ``kwargs`` go to its constructor.

    ``"unet"`` -> ``UNet``, ``"fcn8s"`` / ``"fcn16s"`` / ``"fcn32s"`` -> ``FCN`` with
    that variant, ``"segnet"`` -> ``SegNet``, ``"deeplabv3plus"`` -> ``DeepLabV3Plus``.
    An option the model does not have is a ``TypeError`` listing the ones it has.
    """
    unknown = sorted(set(kwargs) - set(model_options(name)))
    if unknown:
        raise TypeError(f"{name} has no option {', '.join(map(repr, unknown))}; its options: "
                        f"{', '.join(model_options(name))}")
    if name == "unet":
        return UNet(in_channels=in_channels, num_classes=num_classes, **kwargs)
    if name in ("fcn8s", "fcn16s", "fcn32s"):
        return FCN(num_classes, variant=name[3:], in_channels=in_channels, **kwargs)
    if name == "segnet":
        return SegNet(in_channels=in_channels, num_classes=num_classes, **kwargs)
    if name == "deeplabv3plus":
        return DeepLabV3Plus(in_channels=in_channels, num_classes=num_classes, **kwargs)
    if name == "panoptic-deeplab":
        return PanopticDeepLab(in_channels=in_channels, num_classes=num_classes, **kwargs)
    raise ValueError(f"unknown model name {name!r}; choose one of {', '.join(MODEL_NAMES)}")
