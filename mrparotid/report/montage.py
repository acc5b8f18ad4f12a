"""A patient's decisive slices as one PNG: T1, CE-T1 and T2 crops with the gland and tumour
contours, the Grad-CAM map over T1, and a strip of every selected slice by predicted class.

Crops are shown as stored: (y, x) with y towards Posterior and x towards patient Left, so the
view is radiological (anterior up, the patient's right on the viewer's left). Matplotlib's
object API (no pyplot state), Agg canvas.
"""

from __future__ import annotations

import io

import numpy as np

from mrparotid.constants import CLASSES
from mrparotid.data.crops import MASK_PLANES
from mrparotid.data.preprocess import PatientSlices

#: Colour of each predicted class (strip, row labels).
CLASS_COLOURS = {"no_tumour": "#9e9e9e", "pleomorphic_adenoma": "#1f77b4", "warthin": "#2ca02c",
                 "malignant": "#d62728"}
SHORT = {"no_tumour": "no tumour", "pleomorphic_adenoma": "PA", "warthin": "Warthin",
         "malignant": "malignant"}
GLAND_COLOUR, TUMOUR_COLOUR = "#ffd400", "#00e5ff"
#: At most this many rows; more decisive slices keep the most probable ones.
MAX_ROWS = 12


def decisive_class(probs: np.ndarray, diagnosis: str) -> str:
    """The class whose slices decided ``diagnosis``: the diagnosis itself when it is a slice class,
    else (``no_tumour_found``) the majority predicted class."""
    if diagnosis in CLASSES:
        return diagnosis
    counts = np.bincount(probs.argmax(1), minlength=len(CLASSES)) if len(probs) else np.zeros(4)
    return CLASSES[int(np.argmax(counts))]


def decisive_slices(probs: np.ndarray, z_mm: np.ndarray, diagnosis: str, *,
                    max_rows: int = MAX_ROWS) -> np.ndarray:
    """Indices of the slices predicted :func:`decisive_class`, the ``max_rows`` most probable
    of them, in z order (inferior first)."""
    cls = CLASSES.index(decisive_class(probs, diagnosis))
    idx = np.flatnonzero(probs.argmax(1) == cls) if len(probs) else np.zeros(0, int)
    if len(idx) > max_rows:
        idx = idx[np.argsort(-probs[idx, cls], kind="stable")[:max_rows]]
    return idx[np.argsort(z_mm[idx], kind="stable")]


def montage_png(slices: PatientSlices, probs: np.ndarray, cams: np.ndarray | None, *,
                diagnosis: str, malignant_min_slices: int, title: str, synthetic: bool,
                missing: tuple[str, ...] = (), dpi: int = 100) -> bytes | None:
    """The montage as PNG bytes; None when the patient has no selected slice.

    ``slices``: crops in ``slices.planes`` order (one column per MR series plane); ``probs`` (n, 4); ``cams`` (n, H, W) Grad-CAM maps or None
    (the heat-map column is left out); ``missing``: series the patient lacks (their panels say so).
    """
    if len(slices) == 0:
        return None
    fig = montage_figure(slices, probs, cams, diagnosis=diagnosis, title=title, synthetic=synthetic,
                         malignant_min_slices=malignant_min_slices, missing=missing, dpi=dpi)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def montage_figure(slices: PatientSlices, probs: np.ndarray, cams: np.ndarray | None, *,
                   diagnosis: str, malignant_min_slices: int, title: str, synthetic: bool,
                   missing: tuple[str, ...] = (), dpi: int = 100):
    """The montage as a matplotlib ``Figure`` (Agg canvas) of a patient with >= 1 slice."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = decisive_slices(probs, slices.z_mm, diagnosis)
    cls = decisive_class(probs, diagnosis)
    n_cols = len(_series(slices)) + (cams is not None)
    panel, label_w, strip_h, head_h, foot_h = 1.8, 1.45, 1.9, 0.6, 0.3
    grid_h = len(rows) * panel
    width, height = label_w + n_cols * panel + 0.1, head_h + strip_h + 0.3 + grid_h + foot_h
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    fig.suptitle(("SYNTHETIC data or model: not a clinical result\n" if synthetic else "") + title,
                 fontsize=9, y=1 - 0.08 / height, va="top",
                 color="#b00020" if synthetic else "black")
    box_top, box_h = head_h + 0.3, 0.65
    strip = fig.add_axes([label_w / width, 1 - (box_top + box_h) / height,
                          (n_cols * panel - 2.3) / width, box_h / height])
    gauge = fig.add_axes([(width - 1.6) / width, 1 - (box_top + box_h) / height,
                          1.45 / width, box_h / height])
    _strip(strip, slices, probs, rows)
    _gauge(gauge, probs, malignant_min_slices)
    grid = fig.add_axes([label_w / width, foot_h / height, n_cols * panel / width, grid_h / height])
    heads = [*_series(slices)] + ([f"Grad-CAM ({SHORT[cls]}) over T1"] if cams is not None else [])
    _grid(grid, slices, rows, cams, heads, set(missing))
    for r, i in enumerate(rows):
        pred = CLASSES[int(probs[i].argmax())]
        fig.text(0.1 / width, (foot_h + grid_h - (r + 0.5) * panel) / height,
                 f"side {slices.sides[i]}, slice {int(slices.slice_index[i])}\n"
                 f"z = {float(slices.z_mm[i]):.1f} mm\n{SHORT[pred]}\np = {float(probs[i].max()):.2f}",
                 fontsize=8, va="center", color=CLASS_COLOURS[pred])
    fig.text(0.1 / width, 0.1 / height,
             "contours: gland (yellow), tumour (cyan); heat map scaled to the maximum over the rows "
             "shown; radiological view (anterior up, patient's right on the left)",
             fontsize=6.5, color="#444444")
    return fig


def _series(slices: PatientSlices) -> tuple[str, ...]:
    """The MR series planes of the crops, one montage column each."""
    return tuple(p for p in slices.planes if p not in MASK_PLANES)


def _grid(ax, slices: PatientSlices, rows: np.ndarray, cams: np.ndarray | None, heads: list[str],
          missing: set[str]) -> None:
    """All panels as one image (rows x columns, crops at full resolution, 4 px gaps), the
    contours drawn over it, the column heads above it."""
    from matplotlib import colormaps

    size, gap = slices.crops.shape[-1], 4
    step = size + gap
    n_cols = len(heads)
    canvas = np.ones((len(rows) * step - gap, n_cols * step - gap, 3))
    series = _series(slices)
    absent = missing | {s for s in series if not slices.plane(s).any()}
    scale = float(cams[rows].max()) if cams is not None and cams[rows].max() > 0 else 1.0
    lines: dict[str, list[np.ndarray]] = {GLAND_COLOUR: [], TUMOUR_COLOUR: []}
    for r, i in enumerate(rows):
        for c in range(n_cols):
            y0, x0 = r * step, c * step
            plane = series[c] if c < len(series) else "T1"
            if plane in absent:
                rgb = np.full((size, size, 3), 0.19)
                ax.text(x0 + size / 2, y0 + size / 2, f"{plane}\nnot acquired", color="white",
                        ha="center", va="center", fontsize=8)
            else:
                rgb = np.repeat(slices.plane(plane)[i][..., None] / 255.0, 3, axis=2)
            if c == len(series):
                rgb = 0.5 * rgb + 0.5 * colormaps["inferno"](np.clip(cams[i] / scale, 0, 1))[..., :3]
            canvas[y0:y0 + size, x0:x0 + size] = rgb
            masks = (("gland", GLAND_COLOUR),) if c < len(series) else ()
            for name, colour in (*masks, ("tumour", TUMOUR_COLOUR)):
                lines[colour] += [line + (y0, x0) for line in _outline(slices.plane(name)[i])]
    ax.imshow(canvas, interpolation="antialiased", aspect="auto",
              extent=(-0.5, canvas.shape[1] - 0.5, canvas.shape[0] - 0.5, -0.5))
    for colour, parts in lines.items():
        if parts:
            joined = np.concatenate([np.vstack([p, [np.nan, np.nan]]) for p in parts])
            ax.plot(joined[:, 1], joined[:, 0], color=colour, linewidth=1.1)
    for c, head in enumerate(heads):
        ax.text(c * step + size / 2, -gap - 2, head, ha="center", va="bottom", fontsize=8)
    ax.set_xlim(-0.5, canvas.shape[1] - 0.5)
    ax.set_ylim(canvas.shape[0] - 0.5, -0.5)
    ax.axis("off")


def _outline(plane: np.ndarray) -> list[np.ndarray]:
    """Contour lines (row, col in crop pixels) of a uint8 mask plane (255 = inside)."""
    from skimage.measure import find_contours

    mask = plane > 0
    if not mask.any():
        return []
    return [line - 1 for line in find_contours(np.pad(mask, 1).astype(np.float32), 0.5)]


def _strip(ax, slices: PatientSlices, probs: np.ndarray, shown: np.ndarray) -> None:
    """Every selected slice as a cell coloured by its predicted class, one row per side, in z
    order; the montage's slices are dotted."""
    from matplotlib.patches import Patch, Rectangle

    sides = sorted(set(str(s) for s in slices.sides))
    z = np.round(slices.z_mm, 3)
    levels = np.unique(z)
    for i in range(len(slices)):
        col, row = int(np.searchsorted(levels, z[i])), sides.index(str(slices.sides[i]))
        ax.add_patch(Rectangle((col, row), 0.92, 0.85,
                               color=CLASS_COLOURS[CLASSES[int(probs[i].argmax())]]))
        if i in set(shown.tolist()):
            ax.plot(col + 0.46, row + 0.42, "o", color="white", markersize=2.5)
    ax.set_xlim(0, max(len(levels), 1))
    ax.set_ylim(len(sides), 0)
    ax.set_yticks(np.arange(len(sides)) + 0.42, [f"side {s}" for s in sides], fontsize=7)
    ticks = np.arange(0, len(levels), max(1, int(np.ceil(len(levels) / 12))))
    ax.set_xticks(ticks + 0.46, [f"{levels[t]:.0f}" for t in ticks], fontsize=6.5)
    ax.set_xlabel("z (mm); dot = shown below", fontsize=7, labelpad=1)
    ax.set_title("every selected slice, by predicted class", fontsize=8, loc="left", pad=3)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.legend(handles=[Patch(color=CLASS_COLOURS[c], label=SHORT[c]) for c in CLASSES],
              fontsize=6.5, ncol=4, loc="upper left", bbox_to_anchor=(0, -0.62), frameon=False,
              handlelength=1, columnspacing=0.8)


def _gauge(ax, probs: np.ndarray, malignant_min_slices: int) -> None:
    """Slices per predicted class, with the rule's threshold on the malignant count."""
    counts = np.bincount(probs.argmax(1), minlength=len(CLASSES)) if len(probs) else np.zeros(4)
    y = np.arange(len(CLASSES))
    ax.barh(y, counts, color=[CLASS_COLOURS[c] for c in CLASSES], height=0.7)
    for yi, n in zip(y, counts):
        ax.text(n + 0.25, yi, str(int(n)), va="center", fontsize=6.5)
    limit = malignant_min_slices + 0.5
    row = CLASSES.index("malignant")
    ax.plot([limit, limit], [row - 0.5, row + 0.5], color="#d62728", linestyle="--", linewidth=1.2)
    ax.set_xlabel(f"dashed: rule, > {malignant_min_slices} malignant", color="#d62728",
                  fontsize=6.5,
                  labelpad=1)
    ax.set_yticks(y, [SHORT[c] for c in CLASSES], fontsize=6.5)
    ax.set_xlim(0, max(float(counts.max()) * 1.25, limit + 1))
    ax.set_ylim(len(CLASSES) - 0.5, -0.5)
    ax.tick_params(labelsize=6, length=2)
    ax.set_title("slices per class", fontsize=8, loc="left", pad=3)
