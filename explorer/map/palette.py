"""Categorical colours for the map's classes, distinct for dozens of classes (no Qt here).

Two classes drawn in nearly the same colour read as one (the old Tableau-like list gave 11
classes #86bcb6 and #76b7b2, 3 CIEDE2000 units apart). Glasbey et al.'s method picks each next
colour as far as possible, in a perceptual space, from those already chosen; colorcet ships such
a palette (``glasbey_category10``: Tableau's first ten, then Glasbey's). We keep its colours
bright enough to read on the map's dark background and saturated enough not to be one more
"white" (pale pinks and creams read alike on a dark map, whatever their distance), and reorder
them greedily by CIEDE2000 (farthest-point order), so that *any* first ``n`` colours are spread
as far apart as this pool allows: at least 16 units for 20 classes, where 2.3 is a
just-noticeable difference.
"""

from __future__ import annotations

from functools import cache

import numpy as np

#: the map's background (explorer.map.map_view draws on it)
BACKGROUND = "#1e1f22"
#: colours darker than this CIELAB lightness vanish on the background
MIN_LIGHTNESS = 50.0
#: lighter than this, or less chromatic than MIN_CHROMA, and a colour reads as white
MAX_LIGHTNESS = 90.0
MIN_CHROMA = 30.0


def _hex_to_rgb(colours: list[str]) -> np.ndarray:
    return np.array([[int(h[i:i + 2], 16) / 255.0 for i in (1, 3, 5)] for h in colours])


def _rgb_to_hex(rgb: np.ndarray) -> str:
    r, g, b = (int(round(float(v) * 255)) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


@cache
def _ordered_pool() -> tuple[str, ...]:
    """Glasbey's colours, light enough for the background, in farthest-point CIEDE2000 order."""
    import colorcet
    from skimage.color import deltaE_ciede2000, rgb2lab

    pool = colorcet.palette["glasbey_category10"]
    rgb = _hex_to_rgb(list(pool)) if isinstance(pool[0], str) else np.asarray(pool, float)
    lab = rgb2lab(rgb[None])[0]
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    keep = (lab[:, 0] >= MIN_LIGHTNESS) & (lab[:, 0] <= MAX_LIGHTNESS) & (chroma >= MIN_CHROMA)
    rgb, lab = rgb[keep], lab[keep]
    dist = deltaE_ciede2000(lab[:, None, :], lab[None, :, :])
    order = [0]  # Tableau's orange (its blue is too dark here): the same first colour every time
    nearest = dist[0].copy()
    for _ in range(len(rgb) - 1):
        j = int(np.argmax(nearest))
        order.append(j)
        nearest = np.minimum(nearest, dist[j])
    return tuple(_rgb_to_hex(rgb[j]) for j in order)


def categorical_palette(n: int) -> list[str]:
    """``n`` distinct colours as ``"#rrggbb"``; the first ``k`` are the same for any ``n >= k``.

    Past the pool's size (100 colours) colours repeat: no map legend is read at that point.
    """
    pool = _ordered_pool()
    return [pool[k % len(pool)] for k in range(max(0, int(n)))]


def min_distance(colours: list[str]) -> float:
    """The smallest CIEDE2000 difference between two of ``colours`` (inf for fewer than two)."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    if len(colours) < 2:
        return float("inf")
    lab = rgb2lab(_hex_to_rgb(colours)[None])[0]
    d = deltaE_ciede2000(lab[:, None, :], lab[None, :, :])
    np.fill_diagonal(d, np.inf)
    return float(d.min())
