"""The one matplotlib figure helper: an Agg-backed Figure, saved as PNG bytes or atomically.

Figures are built on `matplotlib.figure.Figure` with its own Agg canvas, never through pyplot,
so no global figure list, interactive backend or display is touched; matplotlib is imported
on first use.
"""

import io

from kerascnn.files import atomic_path

DPI = 100


def figure(width, height, *, layout="constrained"):
    """A new matplotlib Figure of `width` × `height` inches, drawn by Agg.

    Args:
        width, height: size in inches.
        layout: matplotlib's layout engine ("constrained", "tight" or None).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    drawn = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(drawn)
    return drawn


def png_bytes(drawn, dpi=DPI):
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    drawn.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def write_png(drawn, path, dpi=DPI):
    """Writes the figure to `path` as a PNG, atomically; returns `path`."""
    with atomic_path(path, suffix=".png") as tmp:
        drawn.savefig(tmp, format="png", dpi=dpi)
    return path
