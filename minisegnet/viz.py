"""Figures drawn from the real ops and formulas (matplotlib).

Regenerate every figure the docs use with ``python -m minisegnet.viz docs/figures``.
"""
import matplotlib

matplotlib.use("Agg")  # files only; never needs a screen

# ---- teaching figures (conv arithmetic, pooling, resizing, U-Net) ----------------


# ---- training figures (curves, prediction overlays; used by the CLI) --------------
