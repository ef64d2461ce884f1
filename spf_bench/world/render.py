"""The deterministic portrait renderer of the synthetic world.

A portrait is drawn in two steps. ``label_map`` paints the scene's geometry as a map of
part labels (background, hair, shirt, skin, eyes, glasses...) on a grid of at least 128 px
that is averaged down to the output size, so edges come out anti-aliased; it depends only
on the attributes and the identity.
``render`` colours the labels and applies the image style (photo lighting and grain,
coloured-pencil hatching, cartoon outlines). The only randomness is the grain and hatching
phase, drawn from ``seed``, so (attributes, identity, seed) fixes every pixel.

The face sits where the tiny zoo's face detector puts its box (centre at 0.5, 0.45 of the
image, half-side 0.25) and the eyes, nose and mouth sit near ArcFace's alignment template
inside it, so the suite's face pipeline crops the face the way it would crop a real one.
"""

from __future__ import annotations

import numpy as np

from spf_bench.world.attributes import identity_factors, value_of



def supersample(size: int) -> int:
    # Geometry is drawn on a grid of at least 128 px so small portraits stay anti-aliased.
    return max(2, 128 // size)

# Part labels of the label map, in no particular order; the novel attributes' parts come last.
BG, HAIR, SHIRT, SKIN, BEARD, EYE_WHITE, PUPIL, BROW, NOSE, MOUTH, TEETH, GLASSES, HAT = range(13)
FRECKLE, TIE, STREAK, EARRING = range(13, 17)
N_LABELS = 17

SKIN_RGB = {"pale": (240, 205, 180), "tan": (200, 145, 95), "dark": (115, 72, 44)}
HAIR_RGB = {"black": (28, 24, 24), "blond": (236, 204, 104), "red": (182, 64, 24)}
SHIRT_RGB = {"red": (205, 35, 40), "blue": (35, 70, 195), "yellow": (232, 200, 35)}
BACKGROUND_RGB = {"green": (80, 170, 80), "blue": (110, 165, 225), "grey": (150, 150, 150), "pink": (238, 150, 190)}
FIXED_RGB = {
    BEARD: (70, 45, 30), EYE_WHITE: (250, 250, 250), PUPIL: (20, 20, 30), BROW: (45, 35, 30),
    MOUTH: (140, 30, 45), TEETH: (250, 250, 245), GLASSES: (15, 15, 15), HAT: (95, 50, 140),
    FRECKLE: (205, 85, 35), TIE: (25, 25, 40), STREAK: (20, 190, 175), EARRING: (255, 200, 0),
}
# Watercolour: pigment bleeds this far (in super-sampled pixels, per output pixel's ``ss``)
# across part edges; masks.py widens every mask of a watercolour portrait by as much.
def watercolour_bleed(ss: int) -> int:
    return max(1, ss // 2)

# Freckles: spots on each cheek, as (dx, dy) from the eye centre, in image units.
FRECKLE_SPOTS = ((-0.035, 0.07), (-0.01, 0.085), (0.015, 0.068), (0.035, 0.088), (-0.02, 0.105), (0.01, 0.11), (0.04, 0.112))


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    n = size * supersample(size)
    c = (np.arange(n) + 0.5) / n
    return np.meshgrid(c, c, indexing="xy")  # x grows right, y grows down, both in [0, 1]


def _ellipse(x, y, cx, cy, a, b):
    return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0


def _segment(x, y, p, q, half_width):
    # Points within half_width of the segment p-q (a stroke with round caps).
    px, py = p
    qx, qy = q
    dx, dy = qx - px, qy - py
    t = np.clip(((x - px) * dx + (y - py) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return (x - px - t * dx) ** 2 + (y - py - t * dy) ** 2 <= half_width**2


def face_geometry(identity: int) -> dict[str, float]:
    """Where the identity's face parts are, in image units."""
    f = identity_factors(identity)
    return {
        "cx": 0.5, "cy": 0.47,
        "a": 0.135 + 0.06 * f["face_width"], "b": 0.185 + 0.05 * f["face_height"],
        "eye_dx": 0.06 + 0.04 * f["eye_spacing"], "eye_y": 0.43, "eye_r": 0.02 + 0.012 * f["eye_size"],
        "nose_len": 0.045 + 0.05 * f["nose_length"], "nose_w": 0.012 + 0.02 * f["nose_width"],
        "mouth_y": 0.61, "mouth_w": 0.035 + 0.035 * f["mouth_width"], "brow_tilt": (f["brow_tilt"] - 0.5) * 0.06,
    }


def label_map(attributes: dict[str, str], identity: int, size: int = 64) -> np.ndarray:
    """Part labels [size*ss, size*ss] (uint8, ss = ``supersample(size)``) of the portrait, before colour and style."""
    x, y = _grid(size)
    g = face_geometry(identity)
    cx, cy, a, b = g["cx"], g["cy"], g["a"], g["b"]
    labels = np.full(x.shape, BG, dtype=np.uint8)
    face = _ellipse(x, y, cx, cy, a, b)
    if attributes["hair_length"] == "long":
        # Long hair falls behind the face down to the shoulders.
        labels[(np.abs(x - cx) <= a + 0.05) & (y >= cy - 0.1) & (y <= 0.86)] = HAIR
    labels[_ellipse(x, y, 0.5, 1.08, 0.42, 0.28)] = SHIRT
    labels[(np.abs(x - cx) <= 0.055) & (y >= cy + 0.5 * b) & (y <= 0.86) & (labels != SHIRT)] = SKIN
    labels[face] = SKIN
    hair_top = _ellipse(x, y, cx, cy - 0.01, a + 0.03, b + 0.035) & (y < cy - 0.55 * b)
    labels[hair_top] = HAIR
    if attributes["beard"] == "yes":
        labels[face & (y > cy + 0.42 * b)] = BEARD
    _paint_novel_under_features(labels, x, y, g, attributes)
    _paint_features(labels, x, y, g, attributes)
    if attributes["hat"] == "yes":
        top = cy - b - 0.01
        labels[(np.abs(x - cx) <= a + 0.02) & (y >= top - 0.13) & (y <= top + 0.04)] = HAT
        labels[(np.abs(x - cx) <= a + 0.09) & (y >= top + 0.01) & (y <= top + 0.05)] = HAT
    if value_of(attributes, "earrings") == "yes":
        # Hoops hanging at the ear lobes, over hair and face edge alike.
        for side in (-1, 1):
            ex, ey = cx + side * (a + 0.004), cy + 0.06
            labels[_ellipse(x, y, ex, ey, 0.03, 0.036) & ~_ellipse(x, y, ex, ey, 0.012, 0.016)] = EARRING
    return labels


def _paint_novel_under_features(labels, x, y, g, attributes) -> None:
    # Drawn before the eyes, brows, nose and mouth, which stay on top of them.
    cx, cy, b = g["cx"], g["cy"], g["b"]
    if value_of(attributes, "freckles") == "yes":
        spots = np.zeros(labels.shape, dtype=bool)
        for side in (-1, 1):
            ex = cx + side * g["eye_dx"]
            for dx, dy in FRECKLE_SPOTS:
                spots |= _ellipse(x, y, ex + side * dx, g["eye_y"] + dy, 0.016, 0.016)
        labels[spots & (labels == SKIN)] = FRECKLE  # on bare skin only: a beard hides them
    if value_of(attributes, "hair_streak") == "yes":
        # A dyed lock from the crown falling across the forehead.
        lock = _segment(x, y, (cx - 0.07, cy - b - 0.02), (cx + 0.06, cy - 0.5 * b), 0.022)
        labels[lock & np.isin(labels, (HAIR, SKIN))] = STREAK
    if value_of(attributes, "tie") == "yes":
        # A knot at the collar and a blade widening down the shirt.
        blade = (y >= 0.81) & (np.abs(x - cx) <= 0.022 + 0.09 * (y - 0.81))
        labels[(blade | _ellipse(x, y, cx, 0.81, 0.03, 0.022)) & (labels == SHIRT)] = TIE


def _paint_features(labels, x, y, g, attributes) -> None:
    cx = g["cx"]
    for side in (-1, 1):
        ex = cx + side * g["eye_dx"]
        labels[_ellipse(x, y, ex, g["eye_y"], 1.7 * g["eye_r"], 1.2 * g["eye_r"])] = EYE_WHITE
        labels[_ellipse(x, y, ex, g["eye_y"], g["eye_r"], g["eye_r"])] = PUPIL
        by = g["eye_y"] - 0.045
        inner, outer = (ex - side * 0.025, by + g["brow_tilt"]), (ex + side * 0.025, by - g["brow_tilt"])
        labels[_segment(x, y, inner, outer, 0.008)] = BROW
    ny = g["eye_y"] + 0.03
    nose = (y >= ny) & (y <= ny + g["nose_len"]) & (np.abs(x - cx) <= g["nose_w"] * (y - ny) / g["nose_len"] + 0.004)
    labels[nose] = NOSE
    my, mw = g["mouth_y"], g["mouth_w"]
    if attributes["smiling"] == "yes":
        # An open smile: a lower half-ellipse with a band of teeth along its top.
        open_mouth = _ellipse(x, y, cx, my - 0.005, mw * 1.1, 0.04) & (y >= my - 0.005)
        labels[open_mouth] = MOUTH
        labels[open_mouth & (y <= my + 0.012)] = TEETH
    else:
        labels[(np.abs(x - cx) <= mw) & (np.abs(y - my) <= 0.01)] = MOUTH
    if attributes["glasses"] == "yes":
        for side in (-1, 1):
            ex = cx + side * g["eye_dx"]
            ring = _ellipse(x, y, ex, g["eye_y"], 0.058, 0.048) & ~_ellipse(x, y, ex, g["eye_y"], 0.036, 0.026)
            labels[ring] = GLASSES
        labels[_segment(x, y, (cx - g["eye_dx"] + 0.05, g["eye_y"]), (cx + g["eye_dx"] - 0.05, g["eye_y"]), 0.01)] = GLASSES


def _palette(attributes: dict[str, str]) -> np.ndarray:
    skin = np.array(SKIN_RGB[attributes["skin"]], dtype=np.float32)
    colours = np.zeros((N_LABELS, 3), dtype=np.float32)
    colours[BG] = BACKGROUND_RGB[attributes["background"]]
    colours[HAIR] = HAIR_RGB[attributes["hair_colour"]]
    colours[SHIRT] = SHIRT_RGB[attributes["shirt"]]
    colours[SKIN] = skin
    colours[NOSE] = skin * 0.8
    for label, rgb in FIXED_RGB.items():
        colours[label] = rgb
    return colours / 255.0


def _boundaries(labels: np.ndarray, width: int) -> np.ndarray:
    # Pixels whose label differs from a neighbour's within `width` pixels: where outlines go.
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    out = edge.copy()
    for _ in range(width - 1):
        grown = out.copy()
        grown[:, 1:] |= out[:, :-1]
        grown[1:, :] |= out[:-1, :]
        out = grown
    return out


def _stylise(rgb: np.ndarray, labels: np.ndarray, style: str, rng: np.random.Generator, ss: int) -> np.ndarray:
    # Lengths below are in output pixels times ``ss``, so a style looks alike at every size.
    n = labels.shape[0]
    x, y = np.meshgrid(np.arange(n) // ss, np.arange(n) // ss, indexing="xy")
    if style == "photo":
        # Soft light from the upper left and fine grain: no outlines anywhere.
        light = 1.08 - 0.22 * np.hypot(x * ss / n - 0.3, y * ss / n - 0.25)
        rgb = rgb * light[..., None] + rng.normal(0.0, 0.025, rgb.shape)
    elif style == "cartoon":
        grey = rgb.mean(axis=-1, keepdims=True)
        rgb = grey + 1.35 * (rgb - grey)  # flat, saturated colours
        rgb[_boundaries(labels, max(1, ss // 2))] = 0.0  # bold black ink lines
    elif style == "pencil sketch":
        rgb = 0.6 * rgb + 0.4  # coloured pencil on white paper: pale colours
        phase = int(rng.integers(4))
        hatch = ((x + y + phase) % 4) < 2  # diagonal strokes, 4 output pixels apart
        rgb = rgb * np.where(hatch, 0.82, 1.0)[..., None]
        rgb[_boundaries(labels, max(1, ss // 4))] *= 0.45  # thin graphite outlines
        rgb = rgb + rng.normal(0.0, 0.015, rgb.shape)
    else:
        raise ValueError(f"unknown style {style!r}")
    return rgb


def _box_blur(rgb: np.ndarray, radius: int) -> np.ndarray:
    # Summed shifted copies rather than scipy's running-sum filter: a running sum carries
    # rounding from one end of a row to the other, so a colour change would move pixels far
    # outside the bleed radius, and the masks could not be exact.
    n, width = rgb.shape[0], 2 * radius + 1
    padded = np.pad(rgb, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    rows = sum(padded[i : i + n] for i in range(width))
    return sum(rows[:, j : j + n] for j in range(width)) / (width * width)


def _watercolour(rgb: np.ndarray, seed: int, ss: int) -> np.ndarray:
    # A wash over whatever style is underneath: pigment bleeds across edges, pools into
    # blotches of uneven strength, and warm paper shows through. Its randomness has a
    # generator of its own, so the other styles' grain and hatching are drawn as without it.
    from scipy.ndimage import zoom

    n = rgb.shape[0]
    rng = np.random.default_rng([0xA7E2, int(seed)])
    rgb = _box_blur(rgb, watercolour_bleed(ss))
    blotches = zoom(rng.random((5, 5)), n / 5, order=1, mode="nearest")[:n, :n]
    rgb = rgb * (0.72 + 0.4 * blotches)[..., None]
    return 0.78 * rgb + 0.22 * np.array([1.0, 0.96, 0.86])


def render(attributes: dict[str, str], identity: int, seed: int, size: int = 64) -> np.ndarray:
    """The portrait as an RGB uint8 array [size, size, 3]."""
    labels = label_map(attributes, identity, size)
    rgb = _palette(attributes)[labels]
    rng = np.random.default_rng([0x5EED, int(seed)])
    ss = supersample(size)
    rgb = _stylise(rgb, labels, attributes["style"], rng, ss)
    if value_of(attributes, "watercolour") == "yes":
        rgb = _watercolour(rgb, seed, ss)
    rgb = rgb.reshape(size, ss, size, ss, 3).mean(axis=(1, 3))
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
