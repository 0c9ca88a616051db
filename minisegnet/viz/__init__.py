"""Figures drawn from the real ops and formulas (matplotlib):

* ``teaching``: the list of the course's figures, drawn by ``conv_figures``
  (conv arithmetic, im2col, transposed conv, depthwise), ``model_figures``
  (pooling and unpooling, align_corners, the U-Net trace, receptive fields,
  FCN, SegNet, ASPP) and ``course_training_figures`` (autograd, metrics, a
  tiny training run) with ``drawing``'s kit; regenerate every one with
  ``python -m minisegnet.viz docs/figures``;
* ``training``: loss and score curves and prediction overlays, used by
  ``minisegnet train`` and ``predict``;
* ``instances``: one colour per object with outlines, and the U-Net weight map;
* ``panoptic``: stuff by class and things by id, panoptic curves and
  predictions, and the figures drawn from a trained Panoptic-DeepLab's outputs;
* ``sampling``: grid_sample's weights, padding modes and gradient, elastic
  deformation, and the augmentation preview.
"""
import matplotlib

matplotlib.use("Agg")  # files only; never needs a screen

from .teaching import *  # noqa: E402,F401,F403
from .teaching import TEACHING_FIGURES, conv_animation, draw_conv, save_teaching_figures  # noqa: E402,F401
from .training import overlay, plot_curves, plot_predictions, save_overlay  # noqa: E402,F401
from .instances import instance_overlay, save_instance_overlay  # noqa: E402,F401
from .panoptic import panoptic_overlay  # noqa: E402,F401
from .sampling import plot_augment_preview  # noqa: E402,F401
