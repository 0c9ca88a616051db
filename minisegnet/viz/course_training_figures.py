"""The course's figures for autograd, metrics and training: the autograd graph of a
tiny expression, a confusion matrix with the FCN scores, and a tiny training run
(curves and predictions) drawn from the real training loop.
"""
import numpy as _np

from .drawing import _INPUT, _OUTPUT_HI, _WARN, _cell, _fit, _grid_axes, _new_figure, _ops


def figure_autograd_graph():
    """The graph ``autograd`` records for ``loss = relu(x * w + b).sum()``: each op a
    ``Function`` node linked to its inputs; ``backward`` walks it right to left."""
    msn, F = _ops()
    # the shapes of the code on the autograd page: x, w (1, 3) and b (3,)
    x = msn.tensor(_np.array([[1.0, -2.0, 3.0]]), requires_grad=True)
    w = msn.tensor(_np.array([[0.5, 0.5, -1.0]]), requires_grad=True)
    b = msn.tensor(_np.array([0.25, 0.25, 0.25]), requires_grad=True)
    loss = (x * w + b).relu().sum()
    names = {id(t): f"{label} {tuple(t.shape)}" for t, label in ((x, "x"), (w, "w"), (b, "b"))}
    level, order = {}, []

    def depth(fn):                      # longest path from a leaf, memoised
        if id(fn) not in level:
            level[id(fn)] = 1 + max([depth(t.creator) for t in fn.inputs if t is not None and t.creator]
                                    or [0])
            order.append(fn)
        return level[id(fn)]

    depth(loss.creator)
    fig = _new_figure(10, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    where = {}
    leaves = [t for fn in order for t in fn.inputs if t is not None and t.creator is None]
    seen = []
    for t in leaves:
        if id(t) not in [id(u) for u in seen]:
            seen.append(t)
    for n, t in enumerate(seen):
        where[id(t)] = (0, 1 - n)
        ax.text(0, 1 - n, names[id(t)], ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round", fc=_INPUT, ec="#333"))
    for fn in order:
        ys = [where[id(t.creator) if t.creator else id(t)][1] for t in fn.inputs if t is not None]
        pos = (1.6 * level[id(fn)], sum(ys) / len(ys))
        where[id(fn)] = pos
        for t in fn.inputs:
            src = where[id(t.creator) if t.creator else id(t)]
            ax.annotate("", xy=(pos[0] - 0.45, pos[1]), xytext=(src[0] + 0.45, src[1]),
                        arrowprops=dict(arrowstyle="->", color="#555", lw=1.2))
        ax.text(*pos, type(fn).__name__, ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round", fc="#fdd0a2", ec="#333"))
    end = where[id(loss.creator)]
    out = (end[0] + 1.6, end[1])                    # the loss, one step right of the last Function
    ax.annotate("", xy=(out[0] - 0.45, out[1]), xytext=(end[0] + 0.45, end[1]),
                arrowprops=dict(arrowstyle="->", color="#555", lw=1.2))
    ax.text(*out, "loss ()", ha="center", va="center", fontsize=10, bbox=dict(boxstyle="round", fc="#fff", ec="#333"))
    ax.annotate("", xy=(0.3, -1.75), xytext=(out[0] + 0.2, -1.75),
                arrowprops=dict(arrowstyle="->", color=_WARN, lw=1.5))
    ax.text(out[0] / 2, -1.6, "loss.backward(): each Function's backward, in reverse topological order",
            ha="center", fontsize=9, color=_WARN)
    ax.set_xlim(-0.6, out[0] + 0.8)
    ax.set_ylim(-2.0, 1.5)
    ax.axis("off")
    fig.tight_layout()
    return fig


def figure_confusion_matrix():
    """A 3-class confusion matrix from ``metrics.confusion_matrix`` (rows truth,
    columns prediction) with the parts of class 1's IU marked."""
    from .. import metrics

    truth = _np.array([0] * 50 + [1] * 30 + [2] * 20)
    pred = truth.copy()
    pred[:5] = 1          # 5 background pixels called class 1
    pred[50:56] = 0       # 6 class-1 pixels missed
    pred[80:84] = 1       # 4 class-2 pixels called class 1
    cm = metrics.confusion_matrix(pred, truth, 3)
    iou = metrics.iou_per_class(cm)
    fig = _new_figure(8, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    for r in range(3):
        for c in range(3):
            face = _OUTPUT_HI if r == c == 1 else (_INPUT if r == 1 else ("#fdd0a2" if c == 1 else "#f7f7f7"))
            _cell(ax, c, r, face, text=f"{cm[r, c]}", fontsize=12)
        ax.text(-0.2, r + 0.5, f"truth {r}", ha="right", va="center", fontsize=10)
    for c in range(3):
        ax.text(c + 0.5, -0.2, f"pred {c}", ha="center", fontsize=10)
    tp, t1, p1 = cm[1, 1], cm[1].sum(), cm[:, 1].sum()
    ax.text(3.5, 0.6, "class 1:", fontsize=11)
    ax.text(3.5, 1.2, f"t_1 = row sum = {t1}  (blue row)", fontsize=10, color="#3182bd")
    ax.text(3.5, 1.7, f"predicted as 1 = column sum = {p1}  (orange column)", fontsize=10, color="#e6550d")
    ax.text(3.5, 2.2, f"IU = n_11 / (t_1 + col - n_11) = {tp} / ({t1} + {p1} - {tp}) = {iou[1]:.3f}",
            fontsize=10)
    ax.text(3.5, 2.7, f"mean IU = {metrics.mean_iou(cm):.3f}, pixel acc = {metrics.pixel_accuracy(cm):.3f}",
            fontsize=10)
    _grid_axes(ax)
    _fit(ax, -1.3, -0.6, 9.5, 3)
    fig.tight_layout()
    return fig


def tiny_training_run(weighted, epochs=4, seed=0):
    """The training page's experiment: a same-padding U-Net (8 channels, depth 2) on 64
    ``Shapes`` images of 32x32, Adam at 3e-3, batch 8, with a plain or a median-frequency
    weighted cross-entropy. Returns ``(model, history, (images, masks))``: ``history`` has
    the trainer's per-epoch keys (train_loss, val_loss, pixel_acc, mean_acc, mean_iou,
    fw_iou), scored on 32 held-out images, which are returned too."""
    import minisegnet as msn
    from minisegnet import functional as F, metrics, optim
    from ..data import DataLoader, Shapes
    from ..models import UNet

    train = Shapes(num_samples=64, size=32, seed=seed)
    val = Shapes(num_samples=32, size=32, seed=seed, split="val")
    masks = _np.stack([train[i][1] for i in range(len(train))])
    freq = _np.bincount(masks.ravel(), minlength=4) / masks.size
    weight = msn.tensor((_np.median(freq) / freq).astype(_np.float32)) if weighted else None
    images = _np.stack([val[i][0] for i in range(len(val))])
    truth = _np.stack([val[i][1] for i in range(len(val))])
    msn.manual_seed(seed)
    model = UNet(3, 4, base_channels=8, depth=2, padding="same")
    opt = optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for epoch in range(epochs):
        losses = []
        for x, y in DataLoader(train, batch_size=8, shuffle=True, seed=epoch):
            loss = F.cross_entropy(model(msn.tensor(x)), msn.tensor(y), weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        with msn.no_grad():
            logits = model(msn.tensor(images))
            val_loss = F.cross_entropy(logits, msn.tensor(truth), weight=weight).item()
        model.train()
        scores = metrics.scores(metrics.confusion_matrix(logits.numpy().argmax(1), truth, 4))
        history.append(dict(epoch=epoch + 1, train_loss=float(_np.mean(losses)), val_loss=val_loss,
                            **{k: float(v) for k, v in scores.items()}))
    return model, history, (images, truth)


def save_training_figures(directory, epochs=4):
    """``training_curves.png`` and ``training_predictions.png``: what the trainer's
    ``curves.png`` and ``predictions.png`` look like (drawn by the same functions),
    for the weighted run of ``tiny_training_run``."""
    import os

    import minisegnet as msn
    from ..data import Shapes
    from .training import plot_curves, plot_predictions

    model, history, (images, truth) = tiny_training_run(weighted=True, epochs=epochs)
    model.eval()
    with msn.no_grad():
        preds = model(msn.tensor(images[:3])).numpy().argmax(1)
    curves = plot_curves(history, os.path.join(directory, "training_curves.png"))
    shapes_data = Shapes(num_samples=1, size=32)
    predictions = plot_predictions(images[:3], truth[:3], preds, shapes_data.palette,
                                   os.path.join(directory, "training_predictions.png"),
                                   class_names=list(Shapes.class_names))
    return [curves, predictions]
