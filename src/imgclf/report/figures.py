"""PNG figures of the report: training curves, a confusion matrix and an image grid.

Figures are drawn on matplotlib's Agg canvas (no pyplot, no display) under a fixed style, size,
dpi and font, and saved without the "Software" PNG tag, so the same inputs give the same bytes.
Each file is written under a temporary name and renamed when complete.
"""

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import matplotlib.style
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from imgclf.core.fileio import atomic_output
from imgclf.evaluation.calibration import Reliability
from imgclf.report.loading import CURVE_METRICS, Curves

DPI = 100
# The user's matplotlibrc must not change the report: start from matplotlib's defaults and
# name a font that ships with matplotlib itself.
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8,
}
ANNOTATED_CLASSES = 30  # above this, counts in the confusion matrix cells are unreadable
GRID_PIXELS = 128  # small images are upscaled (nearest neighbour) to about this many pixels


class FigureFolder:
    """A report's `figures/`: records the PNGs this run wrote, so that older ones can go."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.written: set[str] = set()

    def path(self, name: str) -> Path:
        self.written.add(name)
        return self.root / name

    def link(self, name: str, alt: str) -> str:
        """Markdown showing the figure, from a file beside the folder."""
        return f"![{alt}]({self.root.name}/{name})"

    def remove_stale(self) -> None:
        """Delete the PNGs of an earlier run that this one did not write."""
        for old in sorted(self.root.glob("*.png")):
            if old.name not in self.written:
                old.unlink()


@contextlib.contextmanager
def _figure(path: Path, size: tuple[float, float]) -> Iterator[Figure]:
    """A figure drawn under the fixed style, saved to `path` when the block succeeds."""
    with matplotlib.style.context(["default", STYLE]):
        figure = Figure(figsize=size, dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        yield figure
        with atomic_output(path) as temporary:
            figure.savefig(temporary, format="png", dpi=DPI, metadata={"Software": None})


def save_training_figure(
    path: Path, runs: Sequence[tuple[str, Curves]], title: str, boundary: int | None = None
) -> None:
    """Loss and accuracy side by side; one colour per run, train solid, val dashed.

    `boundary`: the last warm-up epoch of a fine-tuning run, marked with a vertical line.
    """
    with _figure(path, (10, 4)) as figure:
        axes = figure.subplots(1, 2)
        for colour, (name, curves) in enumerate(runs):
            for ax, metric in zip(axes, CURVE_METRICS, strict=True):
                for split, style in (("train", "-"), ("val", "--")):
                    if (split, metric) not in curves.series:
                        continue
                    epochs, values = curves.series[split, metric]
                    label = f"{name} {split}".strip()
                    ax.plot(epochs, values, style, color=f"C{colour}", marker=".", label=label)
        for ax, metric in zip(axes, CURVE_METRICS, strict=True):
            ax.set(xlabel="epoch", ylabel=metric, title=metric)
            ax.xaxis.get_major_locator().set_params(integer=True)
            if boundary is not None:
                _mark_boundary(ax, boundary)
        # A first epoch's loss can be ten times the last; on a log scale both stay readable.
        axes[0].set(yscale="log", ylabel="loss (log scale)")
        for axis in (axes[0].yaxis.set_major_formatter, axes[0].yaxis.set_minor_formatter):
            axis(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.4)))  # 1.5, not 10^0.2
        axes[1].set_ylim(0, 1)
        if axes[1].get_legend_handles_labels()[0]:  # a run may have logged loss alone
            axes[1].legend(loc="lower right", ncols=max(1, len(runs) // 4))
        figure.suptitle(title)


def _mark_boundary(ax: Axes, boundary: int) -> None:
    ax.axvline(boundary + 0.5, color="0.3", linestyle=":")
    transform = ax.get_xaxis_transform()  # x in data units, y in axes units
    ax.text(boundary + 0.3, 0.98, "warm-up ", ha="right", va="top", transform=transform)
    ax.text(boundary + 0.7, 0.98, " fine-tune", ha="left", va="top", transform=transform)


def save_reliability_figure(
    path: Path, curves: Sequence[tuple[str, Reliability]], title: str
) -> None:
    """Accuracy against mean confidence per confidence bin, one line per curve, each point's
    area proportional to its bin's images; the diagonal is perfect calibration."""
    with _figure(path, (6, 5.5)) as figure:
        ax = figure.subplots()
        ax.plot([0, 1], [0, 1], ":", color="0.4", label="perfectly calibrated")
        for colour, (name, reliability) in enumerate(curves):
            shares = reliability.count / reliability.count.sum()
            ax.plot(reliability.confidence, reliability.accuracy, color=f"C{colour}", alpha=0.6)
            ax.scatter(
                reliability.confidence,
                reliability.accuracy,
                s=20 + 400 * shares,
                color=f"C{colour}",
                label=f"{name} (ECE {reliability.ece:.3f})",
            )
        ax.set(xlabel="confidence (top-1 probability)", ylabel="accuracy", title=title)
        ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal")
        ax.legend(loc="upper left", fontsize=8)


def save_confusion_figure(
    path: Path, labels: np.ndarray, predicted: np.ndarray, names: Sequence[str], title: str
) -> None:
    """Row-normalised confusion matrix (colour), with the counts written in the cells."""
    classes = len(names)
    counts = np.zeros((classes, classes), np.int64)
    np.add.at(counts, (labels, predicted), 1)
    totals = counts.sum(axis=1, keepdims=True)
    fractions = counts / np.maximum(totals, 1)
    side = min(16.0, max(5.0, 0.55 * classes + 2.5))
    with _figure(path, (side + 1.2, side)) as figure:
        ax = figure.subplots()
        shown = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
        figure.colorbar(shown, ax=ax, shrink=0.8, label="fraction of the true class")
        ticks = np.arange(classes)
        ax.set_xticks(ticks, names, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(ticks, names)
        ax.set(xlabel="predicted", ylabel="true", title=title)
        ax.grid(False)
        if classes <= ANNOTATED_CLASSES:
            for (row, column), count in np.ndenumerate(counts):
                colour = "white" if fractions[row, column] > 0.5 else "black"
                text = str(count) if count else "·"
                ax.text(column, row, text, ha="center", va="center", color=colour, fontsize=8)


def upscale(image: np.ndarray, pixels: int = GRID_PIXELS) -> np.ndarray:
    """Enlarge a small image by a whole factor (nearest neighbour keeps its pixels sharp)."""
    factor = max(1, math.ceil(pixels / max(image.shape[:2])))
    if factor == 1:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def save_image_grid(
    path: Path, images: Sequence[np.ndarray], titles: Sequence[str], columns: int = 4
) -> None:
    """RGB images in rows of `columns`, each under its title."""
    columns = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / columns)
    with _figure(path, (2.6 * columns, 2.8 * rows)) as figure:
        axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
        for ax in axes:
            ax.set_axis_off()
        for ax, image, title in zip(axes, images, titles, strict=False):
            ax.imshow(upscale(image), interpolation="nearest")
            ax.set_title(title, fontsize=9)
