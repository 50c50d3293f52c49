"""Where class-centre labels go on the map so they do not cover each other (no Qt).

Centres of similar classes sit close together (PCA squeezes them into the middle), so labels
drawn at a fixed offset pile up. This is the usual greedy cartographic placement: the most
important label first, each tries a few spots around its marker (above, below, right, left) and
takes the first one that overlaps nothing placed so far; a label with no free spot is hidden
(the map shows it on hover). Hand-written because it is ~30 lines and needs no library.
"""

from __future__ import annotations

import numpy as np

#: candidate spots, tried in order; the names the view maps to text anchors
SIDES = ("above", "below", "right", "left")


def _rect(cx: float, cy: float, w: float, h: float, side: str, gap: float) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a ``w`` x ``h`` label beside a marker at ``(cx, cy)``; y grows upwards."""
    if side == "above":
        return cx - w / 2, cy + gap, cx + w / 2, cy + gap + h
    if side == "below":
        return cx - w / 2, cy - gap - h, cx + w / 2, cy - gap
    if side == "right":
        return cx + gap, cy - h / 2, cx + gap + w, cy + h / 2
    return cx - gap - w, cy - h / 2, cx - gap, cy + h / 2


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(
    anchors: np.ndarray,
    sizes: np.ndarray,
    priority: np.ndarray,
    *,
    gap: float = 8.0,
    marker: float = 6.0,
) -> list[str | None]:
    """Pick a side for each label, or ``None`` to hide it.

    Parameters
    ----------
    anchors : np.ndarray [shape=(n, 2)]
        Marker positions in screen pixels, y growing upwards.
    sizes : np.ndarray [shape=(n, 2)]
        Label width and height in pixels.
    priority : np.ndarray [shape=(n,)]
        Higher is placed first (e.g. the class size).
    gap : float
        Pixels between a marker's centre and its label.
    marker : float
        Half-size of a marker: labels also keep off every marker.

    Returns
    -------
    list of str or None
        One of ``SIDES`` per label, in the input order.
    """
    anchors, sizes = np.asarray(anchors, float).reshape(-1, 2), np.asarray(sizes, float).reshape(-1, 2)
    taken = [(x - marker, y - marker, x + marker, y + marker) for x, y in anchors]
    out: list[str | None] = [None] * len(anchors)
    for i in np.argsort(-np.asarray(priority, float), kind="stable"):
        (cx, cy), (w, h) = anchors[i], sizes[i]
        own = int(i)
        for side in SIDES:
            r = _rect(cx, cy, w, h, side, gap)
            # its own marker is never in the way (the gap keeps the label off it)
            if not any(_overlaps(r, t) for k, t in enumerate(taken) if k != own):
                out[own] = side
                taken.append(r)
                break
    return out
