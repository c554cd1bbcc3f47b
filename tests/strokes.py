"""Pen paths traced from MNIST digits, for drawing them with a mouse in browser tests.

The digit is thinned to a one-pixel skeleton (scikit-image), walked into polylines from its end
points, and simplified (Douglas-Peucker) to a handful of points per stroke, because the
sketchpad under software WebGL takes about two mouse moves a second.
"""

from __future__ import annotations

import numpy as np
from skimage.measure import approximate_polygon
from skimage.morphology import skeletonize

TOLERANCE_PX = 1.0  # simplification tolerance on the 28x28 grid
MIN_STROKE_PX = 3  # skeleton branches shorter than this are spurs, not strokes


def trace(digit: np.ndarray) -> list[np.ndarray]:
    """(x, y) polylines in 28x28 pixel coordinates that redraw `digit` (uint8, ink = bright)."""
    skeleton = skeletonize(digit > 100)
    points = {tuple(p) for p in np.argwhere(skeleton)}
    neighbours = lambda p: [(p[0] + dy, p[1] + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy or dx) and (p[0] + dy, p[1] + dx) in points]  # noqa: E731
    strokes = []
    while points:
        ends = [p for p in points if len(neighbours(p)) == 1]
        current = min(ends or points)
        path = [current]
        points.discard(current)
        while True:
            nxt = neighbours(current)
            if not nxt:
                break
            current = min(nxt, key=lambda q: abs(q[0] - current[0]) + abs(q[1] - current[1]))
            path.append(current)
            points.discard(current)
        if len(path) > 4 and max(abs(path[0][0] - path[-1][0]), abs(path[0][1] - path[-1][1])) <= 1:
            path.append(path[0])  # a closed loop, as in 0, 6, 8 and 9
        if len(path) >= MIN_STROKE_PX:
            yx = approximate_polygon(np.array(path, float), TOLERANCE_PX)
            strokes.append(yx[:, ::-1])
    return strokes
