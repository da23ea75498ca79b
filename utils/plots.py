"""Plots for the notebooks: training curves (live and final) and image grids.

Every function returns the Matplotlib ``Figure`` and works headless (any backend):
call ``plt.show()`` in a notebook, or ``fig.savefig(...)`` in a script.

Introduced in ``notebooks/01_tensors_gradienttape.ipynb``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def _as_curves(history: Any) -> dict[str, list[float]]:
    """Accept a Keras ``History``, a ``{name: values}`` mapping, or one sequence."""
    if hasattr(history, "history"):
        history = history.history
    if isinstance(history, Mapping):
        return {str(k): [float(v) for v in vals] for k, vals in history.items()}
    return {"loss": [float(v) for v in history]}


def plot_curves(
    history: Any,
    xlabel: str = "epoch",
    title: str | None = None,
    logy: bool = False,
) -> Figure:
    """Training curves: one panel per quantity, ``val_*`` drawn dashed beside its twin.

    >>> fig = plot_curves({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]})
    >>> [ax.get_title() for ax in fig.axes]
    ['loss', 'accuracy']
    """
    curves = _as_curves(history)
    if not curves or not any(curves.values()):
        raise ValueError("nothing to plot: the history is empty")
    bases = list(dict.fromkeys(k.removeprefix("val_") for k in curves))
    fig, axes = plt.subplots(1, len(bases), figsize=(4.2 * len(bases), 3.2), squeeze=False)
    for ax, base in zip(axes[0], bases):
        for key, style in ((base, "-"), (f"val_{base}", "--")):
            if key in curves:
                values = curves[key]
                ax.plot(np.arange(1, len(values) + 1), values, style, label=key)
        ax.set_title(base)
        ax.set_xlabel(xlabel)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


class LiveCurves:
    """Redraw training curves in place while a loop runs; the last drawing stays.

    Use it from a custom loop (``live.update(step, loss=...)``) or pass
    ``live.keras_callback()`` to ``model.fit``. Outside Jupyter nothing is drawn until
    ``done()``, which returns the final figure.
    """

    def __init__(self, xlabel: str = "epoch", every: int = 1, logy: bool = False) -> None:
        if every < 1:
            raise ValueError("every must be >= 1")
        self.xlabel, self.every, self.logy = xlabel, every, logy
        self.history: dict[str, list[float]] = {}
        self._handle: Any = None
        self._calls = 0

    def update(self, **values: float) -> None:
        """Append one value per named curve and redraw every ``every`` calls."""
        for key, value in values.items():
            self.history.setdefault(key, []).append(float(value))
        self._calls += 1
        if self._calls % self.every == 0:
            self._draw()

    def _draw(self) -> Figure | None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:  # pragma: no cover
            return None
        if get_ipython() is None:
            return None
        fig = plot_curves(self.history, xlabel=self.xlabel, logy=self.logy)
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)
        return fig

    def done(self) -> Figure:
        """Draw the final curves once more and return that figure."""
        fig = plot_curves(self.history, xlabel=self.xlabel, logy=self.logy)
        if self._handle is not None:
            self._handle.update(fig)
            plt.close(fig)
        return fig

    def keras_callback(self) -> Any:
        """A ``keras.callbacks.Callback`` that feeds every epoch's logs to this plot."""
        import keras

        live = self

        class _Live(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
                live.update(**(logs or {}))

        return _Live()


def image_grid(
    images: Sequence[Any] | np.ndarray,
    labels: Sequence[Any] | None = None,
    ncols: int = 8,
    cmap: str = "gray",
    size: float = 1.1,
) -> Figure:
    """Show images (``(n, h, w)`` or ``(n, h, w, c)``) in a grid, with optional titles.

    >>> fig = image_grid(np.zeros((5, 28, 28)), labels=list("abcde"), ncols=4)
    >>> len(fig.axes)
    8
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(f"expected images of shape (n, h, w) or (n, h, w, c), got {images.shape}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    ncols = max(1, min(ncols, len(images)))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.2 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap=cmap)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=9)
    fig.tight_layout()
    return fig


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int = 10) -> Figure:
    """A confusion matrix (rows: true class, columns: predicted), counts in the cells.

    >>> fig = confusion_matrix([0, 1, 1], [0, 1, 0], num_classes=2)
    >>> fig.axes[0].get_xlabel()
    'predicted'
    """
    counts = confusion_counts(y_true, y_pred, num_classes)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.imshow(np.log1p(counts), cmap="Blues")
    for i in range(num_classes):
        for j in range(num_classes):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if i == j else "black")
    ax.set_xticks(range(num_classes))
    ax.set_yticks(range(num_classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    return fig


def confusion_counts(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int) -> np.ndarray:
    """The confusion counts as an integer array (rows: true, columns: predicted).

    >>> confusion_counts([0, 1, 1], [0, 1, 0], 2).tolist()
    [[1, 0], [1, 1]]
    """
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.shape} true labels vs {y_pred.shape} predictions")
    counts = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def bar_counts(labels: Sequence[int] | np.ndarray, title: str = "", num_classes: int | None = None) -> Figure:
    """A bar chart of how often each class occurs.

    >>> fig = bar_counts([0, 1, 1, 2])
    >>> [int(p.get_height()) for p in fig.axes[0].patches]
    [1, 2, 1]
    """
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=num_classes or 0)
    fig, ax = plt.subplots(figsize=(5, 2.6))
    ax.bar(range(len(counts)), counts, color="tab:blue")
    ax.set_xticks(range(len(counts)))
    ax.set_xlabel("class")
    ax.set_ylabel("count")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _canvas(images: Any, ncols: int, pad: int = 1) -> np.ndarray:
    """Grey images ``(n, h, w[, 1])`` in ``[0, 1]`` (or ``[-1, 1]``, mapped to it) tiled
    into one array, ``ncols`` per row, ``pad`` white pixels between them."""
    x = np.asarray(images, dtype="float32")
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or len(x) == 0:
        raise ValueError(f"expected grey images of shape (n, h, w) or (n, h, w, 1), got {x.shape}")
    if x.min() < 0:
        x = (x + 1) / 2
    n, h, w = x.shape
    nrows = -(-n // ncols)
    canvas = np.ones((nrows * (h + pad) - pad, ncols * (w + pad) - pad), dtype="float32")
    for i in range(n):
        r, c = divmod(i, ncols)
        canvas[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = x[i]
    return np.clip(canvas, 0, 1)


def mosaic(images: Sequence[Any] | np.ndarray, ncols: int, title: str = "", size: float = 0.45, pad: int = 1) -> Figure:
    """Many small grey images as one picture (one ``imshow``: fast for hundreds of
    tiles), ``ncols`` per row, separated by ``pad`` pixels, on a fixed 0..1 scale
    (images in ``[-1, 1]`` are mapped to it).

    >>> fig = mosaic(np.zeros((6, 28, 28)), ncols=3)
    >>> fig.axes[0].images[0].get_array().shape
    (57, 86)
    """
    canvas = _canvas(images, ncols, pad)
    nrows = -(-len(images) // ncols)
    fig, ax = plt.subplots(figsize=(size * ncols, size * nrows + (0.3 if title else 0)))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def latent_scatter(codes: np.ndarray, labels: Sequence[int] | np.ndarray, title: str = "") -> Figure:
    """2-D codes as points coloured by digit, with a legend.

    >>> fig = latent_scatter(np.zeros((10, 2)), np.arange(10))
    >>> len(fig.axes[0].collections)
    10
    """
    codes, labels = np.asarray(codes), np.asarray(labels)
    if codes.ndim != 2 or codes.shape[1] != 2 or len(codes) != len(labels):
        raise ValueError(f"expected codes (n, 2) and n labels, got {codes.shape} and {labels.shape}")
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    cmap = plt.get_cmap("tab10")
    for digit in range(10):
        chosen = labels == digit
        ax.scatter(codes[chosen, 0], codes[chosen, 1], s=3, alpha=0.6, color=cmap(digit), label=str(digit))
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.legend(markerscale=4, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def save_gif(
    frames: Sequence[Any], path: Any, ncols: int = 8, scale: int = 1, seconds_per_frame: float = 0.5, levels: int = 16
) -> Any:
    """Write an animated GIF of image grids (one grid per frame: ``(n, h, w[, 1])`` grey
    images in ``[0, 1]`` or ``[-1, 1]``), each pixel ``scale`` x ``scale``, grey levels
    rounded to ``levels`` values (a small file: GIF compresses flat areas), the last frame
    held twice as long. Uses Pillow (a Matplotlib dependency). Returns the path.

    >>> import tempfile, pathlib
    >>> out = save_gif([np.zeros((4, 28, 28)), np.ones((4, 28, 28))], pathlib.Path(tempfile.mkdtemp()) / "a.gif", ncols=2)
    >>> from PIL import Image; Image.open(out).n_frames
    2
    """
    from pathlib import Path

    from PIL import Image

    tiles = []
    for frame in frames:
        grey = np.round(_canvas(frame, ncols) * (levels - 1)) / (levels - 1)
        pixels = (grey * 255).astype("uint8").repeat(scale, 0).repeat(scale, 1)
        tiles.append(Image.fromarray(pixels, mode="L"))
    if not tiles:
        raise ValueError("save_gif needs at least one frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    durations = [int(seconds_per_frame * 1000)] * (len(tiles) - 1) + [int(seconds_per_frame * 2000)]
    tiles[0].save(path, save_all=True, append_images=tiles[1:], duration=durations, loop=0)
    return path



def attention_heatmaps(
    maps: Mapping[str, Any],
    queries: Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
    size: float = 2.6,
) -> Figure:
    """Attention weights as heat-maps side by side, one per ``{title: (T_q, T_k) array}``:
    rows are queries, columns keys, each cell the weight (0 white .. 1 dark), with the
    value written in it when the map is small.

    Introduced in ``notebooks/07_attention.ipynb``.

    >>> fig = attention_heatmaps({"none": np.full((3, 3), 1 / 3), "causal": np.tril(np.ones((3, 3))) / 2},
    ...                          queries=list("abc"), keys=list("abc"))
    >>> [ax.get_title() for ax in fig.axes]
    ['none', 'causal']
    """
    if not maps:
        raise ValueError("attention_heatmaps needs at least one map")
    arrays = {title: np.asarray(weights, dtype=float) for title, weights in maps.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"every map must be one (T_q, T_k) array of the same shape, got {sorted(shapes)}")
    t_q, t_k = next(iter(shapes))
    fig, axes = plt.subplots(1, len(arrays), figsize=(size * len(arrays), size * max(t_q / t_k, 0.5) + 0.4),
                             squeeze=False)
    for ax, (title, weights) in zip(axes.flat, arrays.items()):
        ax.imshow(weights, cmap="Blues", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(t_k), list(keys) if keys is not None else range(t_k), fontsize=7)
        ax.set_yticks(range(t_q), list(queries) if queries is not None else range(t_q), fontsize=7)
        ax.set_xlabel("key", fontsize=8)
        if t_q * t_k <= 64:
            for (i, j), w in np.ndenumerate(weights):
                ax.text(j, i, f"{w:.2f}", ha="center", va="center", fontsize=6, color="white" if w > 0.6 else "black")
    axes.flat[0].set_ylabel("query", fontsize=8)
    fig.tight_layout()
    return fig
