"""The course's figures: which files the docs show, and the functions that draw them.

The figures live by concept: ``conv_figures`` (conv arithmetic, im2col, the
transposed conv, depthwise), ``model_figures`` (pooling, resizing, U-Net,
FCN, SegNet, DeepLab), ``course_training_figures`` (autograd, metrics, a tiny
training run), all drawn with ``drawing``'s kit. Each ``figure_*`` function
returns a matplotlib Figure; ``TEACHING_FIGURES`` maps the file names used in
docs/ to them, and ``save_teaching_figures(directory)`` writes them all.
Geometry comes from ``minisegnet.shapes`` and numbers from the real ops, so a
figure cannot drift from the code it explains.
"""
from .conv_figures import (conv_animation, conv_matrix, draw_conv, figure_conv_arithmetic, figure_conv_matrix,
                           figure_depthwise, figure_dilation, figure_im2col, figure_im2col_memory,
                           figure_stride_ambiguity, figure_transposed_conv)  # noqa: F401
from .model_figures import (figure_align_corners, figure_aspp, figure_encoder_decoder, figure_fcn_strides,
                            figure_max_unpool, figure_overlap_tile, figure_receptive_field,
                            figure_segnet_unpool, figure_unet_trace, segnet_round_trip, street_scene)  # noqa: F401
from .course_training_figures import (figure_autograd_graph, figure_confusion_matrix, save_training_figures,
                                      tiny_training_run)  # noqa: F401

# The files the docs show, and the functions that draw them.
TEACHING_FIGURES = {
    "encoder_decoder.png": figure_encoder_decoder,
    "autograd_graph.png": figure_autograd_graph,
    "im2col.png": figure_im2col,
    "conv_arithmetic.png": figure_conv_arithmetic,
    "stride_ambiguity.png": figure_stride_ambiguity,
    "dilation.png": figure_dilation,
    "receptive_field.png": figure_receptive_field,
    "depthwise.png": figure_depthwise,
    "transposed_conv.png": figure_transposed_conv,
    "conv_matrix.png": figure_conv_matrix,
    "max_unpool.png": figure_max_unpool,
    "align_corners.png": figure_align_corners,
    "fcn_strides.png": figure_fcn_strides,
    "segnet_unpool.png": figure_segnet_unpool,
    "unet_trace.png": figure_unet_trace,
    "overlap_tile.png": figure_overlap_tile,
    "aspp.png": figure_aspp,
    "confusion_matrix.png": figure_confusion_matrix,
    "im2col_memory.png": figure_im2col_memory,
}


def save_teaching_figures(directory, gifs=True):
    """Write every figure in ``TEACHING_FIGURES`` (and the GIF) into ``directory``; returns the paths."""
    import os

    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    written = []
    for name, draw in TEACHING_FIGURES.items():
        fig = draw()
        path = os.path.join(directory, name)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    written += save_training_figures(directory)
    if gifs:
        path = os.path.join(directory, "conv_stride2.gif")
        conv_animation(path)
        written.append(path)
    return written
