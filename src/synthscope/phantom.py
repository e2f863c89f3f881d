"""Procedural CT-like axial chest slices: the project's own "real" images for the offline demo.

Each synthetic patient has its own anatomy (body shape, lungs, heart, spine, ribs, a branching vessel
tree per lung, zero to three nodules or lesions). A few neighbouring slices are rendered per patient:
they differ slightly (organs grow or shrink with depth, vessels and ribs drift, nodules appear as
cross-sections of spheres), so the nearest neighbour of a slice is usually a slice of the same patient,
as in real CT. Intensities imitate the dark, grainy windowing of the IQ-OTH/NCCD slices: black air,
grainy soft tissue, near-black lungs with bright vessels, bright bone, a patient couch below the body.

Everything is seeded: patient ``p`` of seed ``s`` is the same whatever the number of patients asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from skimage.draw import line_aa

IMAGE_SIZE = 256

_SLICE_THICKNESS_PX = 2.5  # slice spacing in in-plane pixels, for spheres
_YY, _XX = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32)


@dataclass(frozen=True)
class Nodule:
    """A sphere (cross-sections vary with depth) inside one lung."""

    x: float
    y: float
    z: float
    radius: float
    kind: str  # "solid" | "spiculated" | "ground_glass" | "cavitary"
    spikes: tuple[float, ...] = ()  # radial modulation for spiculated nodules


@dataclass(frozen=True)
class VesselSegment:
    x0: float
    y0: float
    x1: float
    y1: float
    width: int  # 0 = thin, 1 = medium, 2 = thick
    drift: tuple[float, float]  # pixels per slice of depth
    z_centre: float  # depth where the branch lies in plane; it fades away from it


@dataclass(frozen=True)
class PatientAnatomy:
    """Anatomy parameters of one synthetic patient (pixels unless said otherwise)."""

    centre: tuple[float, float]
    body_axes: tuple[float, float]
    body_exponent: float
    fat_thickness: float
    lung_offset: float
    lung_axes: tuple[float, float]
    lung_tilt: float
    lung_wobble: tuple[float, ...]
    heart: tuple[float, float, float, float]  # x, y, ax, ay
    aorta_radius: float
    vertebra_radius: float
    rib_angles: tuple[float, ...]
    depth_trend: float  # how fast lungs and heart grow per slice
    brightness: float
    contrast: float
    noise_sigma: float
    has_couch: bool
    vessels: tuple[VesselSegment, ...] = field(repr=False)
    end_on_vessels: np.ndarray = field(repr=False)  # [m, 5]: x, y, radius, z_centre, drift angle
    nodules: tuple[Nodule, ...] = ()


@dataclass
class PhantomSet:
    """Rendered slices with their patient and slice indices (row-aligned)."""

    images: np.ndarray  # uint8 [n, 256, 256]
    patient: np.ndarray  # int [n]
    slice_index: np.ndarray  # int [n]
    image_ids: list[str]


def sample_anatomy(rng: np.random.Generator) -> PatientAnatomy:
    """Draw one patient's anatomy."""
    cx = 128 + rng.normal(0, 5)
    cy = 118 + rng.normal(0, 5)
    ax = rng.uniform(92, 116)
    ay = rng.uniform(62, 82)
    lung_ax = ax * rng.uniform(0.30, 0.36)
    lung_ay = ay * rng.uniform(0.62, 0.74)
    lung_offset = ax * rng.uniform(0.40, 0.47)
    heart = (
        cx + rng.uniform(4, 16),
        cy + rng.uniform(-2, 12),
        ax * rng.uniform(0.17, 0.24),
        ay * rng.uniform(0.32, 0.42),
    )
    n_ribs = int(rng.integers(5, 8))
    rib_angles = tuple(
        float(a) for a in np.sort(np.linspace(0.15, np.pi - 0.15, n_ribs) + rng.normal(0, 0.06, n_ribs))
    )
    vessels: list[VesselSegment] = []
    for side in (-1, 1):
        hilum = (cx + side * lung_offset * 0.45, cy + rng.normal(0, 4))
        vessels += _vessel_tree(rng, hilum, side, lung_ax, lung_ay)
    n_dots = int(rng.integers(25, 45))
    dots = np.column_stack(
        [
            rng.uniform(-1, 1, n_dots),  # position relative to the lung, mapped at render time
            rng.uniform(-1, 1, n_dots),
            rng.uniform(0.8, 2.4, n_dots),
            rng.uniform(-4, 4, n_dots),
            rng.uniform(0, 2 * np.pi, n_dots),
        ]
    ).astype(np.float32)
    nodules = []
    for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
        side = rng.choice([-1, 1])
        angle, rad = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0, 0.55))
        kind = str(rng.choice(["solid", "solid", "spiculated", "ground_glass", "cavitary"]))
        nodules.append(
            Nodule(
                x=float(cx + side * lung_offset + rad * lung_ax * np.cos(angle)),
                y=float(cy - 4 + rad * lung_ay * np.sin(angle)),
                z=float(rng.uniform(-3, 3)),
                radius=float(rng.choice([rng.uniform(2.5, 6), rng.uniform(6, 15)])),
                kind=kind,
                spikes=tuple(float(v) for v in rng.uniform(0, 1, 9)) if kind == "spiculated" else (),
            )
        )
    return PatientAnatomy(
        centre=(float(cx), float(cy)),
        body_axes=(float(ax), float(ay)),
        body_exponent=float(rng.uniform(2.0, 2.7)),
        fat_thickness=float(rng.uniform(5, 14)),
        lung_offset=float(lung_offset),
        lung_axes=(float(lung_ax), float(lung_ay)),
        lung_tilt=float(rng.normal(0, 0.12)),
        lung_wobble=tuple(float(v) for v in rng.normal(0, 0.05, 6)),
        heart=tuple(float(v) for v in heart),
        aorta_radius=float(rng.uniform(8, 12)),
        vertebra_radius=float(rng.uniform(12, 16)),
        rib_angles=rib_angles,
        depth_trend=float(rng.uniform(0.01, 0.03)),
        brightness=float(rng.uniform(0.85, 1.15)),
        contrast=float(rng.uniform(0.85, 1.2)),
        noise_sigma=float(rng.uniform(9, 20)),
        has_couch=bool(rng.uniform() < 0.8),
        vessels=tuple(vessels),
        end_on_vessels=dots,
        nodules=tuple(nodules),
    )


def _vessel_tree(rng, root, side, lung_ax, lung_ay) -> list[VesselSegment]:
    """A recursively branching tree from the hilum towards the lung periphery."""
    segments: list[VesselSegment] = []
    # Three trunks (upper, middle, lower lobe) leave the hilum, pointing away from the mediastinum.
    lateral = 0.0 if side > 0 else np.pi
    stack = [
        (root[0], root[1], lateral + side * (trunk + rng.normal(0, 0.15)), 0.38 * max(lung_ax, lung_ay), 0)
        for trunk in (-1.1, -0.1, 0.9)
    ]
    while stack:
        x, y, angle, length, depth = stack.pop()
        x1, y1 = x + length * np.cos(angle), y + length * np.sin(angle)
        segments.append(
            VesselSegment(
                float(x), float(y), float(x1), float(y1),
                width=max(0, 2 - depth), drift=(float(rng.normal(0, 0.7)), float(rng.normal(0, 0.7))),
                z_centre=float(rng.normal(0, 2.5 + depth)),
            )
        )
        if depth < 3:
            for turn in (-1, 1):
                if depth > 0 and rng.uniform() < 0.15:
                    continue
                stack.append(
                    (x1, y1, angle + turn * rng.uniform(0.25, 0.7), length * rng.uniform(0.55, 0.8), depth + 1)
                )
    return segments


def _superellipse(cx, cy, ax, ay, exponent, wobble=(), tilt=0.0, grid=None) -> np.ndarray:
    """Normalised radius (1 on the outline) of a tilted, wobbly super-ellipse; on ``grid`` = (xx, yy) if given."""
    xx, yy = grid if grid is not None else (_XX, _YY)
    dx, dy = xx - cx, yy - cy
    if tilt:
        c, s = np.cos(tilt), np.sin(tilt)
        dx, dy = c * dx + s * dy, -s * dx + c * dy
    if exponent == 2.0:
        r = np.sqrt((dx / ax) ** 2 + (dy / ay) ** 2)
    else:
        r = (np.abs(dx / ax) ** exponent + np.abs(dy / ay) ** exponent) ** (1.0 / exponent)
    if wobble:
        theta = np.arctan2(dy, dx)
        r = r * (1 + sum(w * np.cos((k + 2) * theta + k) for k, w in enumerate(wobble)))
    return r


def _window(cx: float, cy: float, half: float):
    """A square crop around (cx, cy): its slices into the image and its coordinate grids."""
    y0, y1 = int(max(cy - half, 0)), int(min(cy + half + 1, IMAGE_SIZE))
    x0, x1 = int(max(cx - half, 0)), int(min(cx + half + 1, IMAGE_SIZE))
    if y0 >= y1 or x0 >= x1:
        return None, None
    return (slice(y0, y1), slice(x0, x1)), (_XX[y0:y1, x0:x1], _YY[y0:y1, x0:x1])


def _smooth_step(r: np.ndarray, edge: float = 1.0, softness: float = 0.02) -> np.ndarray:
    """1 inside (r < edge), 0 outside, with a soft partial-volume rim."""
    return np.clip((edge - r) / softness + 0.5, 0.0, 1.0)


def render_slice(anatomy: PatientAnatomy, depth: float, rng: np.random.Generator) -> np.ndarray:
    """Render one axial slice at ``depth`` (slices, 0 = the patient's middle slice) as uint8 [256, 256]."""
    a = anatomy
    cx, cy = a.centre
    ax, ay = a.body_axes
    grow = 1 + a.depth_trend * depth

    body_r = _superellipse(cx, cy, ax, ay, a.body_exponent)
    body = _smooth_step(body_r, 1.0, 0.012)
    inner = _smooth_step(body_r, 1.0 - a.fat_thickness / ay, 0.03)
    img = 62 * body + 48 * inner  # subcutaneous fat, then muscle and mediastinum

    lung_ax, lung_ay = a.lung_axes
    lungs = np.zeros_like(img)
    lung_centres = []
    for side in (-1, 1):
        lx = cx + side * a.lung_offset
        ly = cy - 4
        lung_centres.append((lx, ly))
        r = _superellipse(lx, ly, lung_ax * grow, lung_ay * grow, 2.2, a.lung_wobble, side * a.lung_tilt)
        lungs = np.maximum(lungs, _smooth_step(r, 1.0, 0.03))
    hx, hy, hax, hay = a.heart
    heart_r = _superellipse(hx, hy, hax * grow, hay * grow, 2.0, tilt=-0.4)
    heart = _smooth_step(heart_r, 1.0, 0.04)
    vert_x, vert_y = cx, cy + ay * 0.62
    spine_zone = _smooth_step(_superellipse(vert_x, vert_y - 6, 26, 30, 2.0), 1.0, 0.05)
    lungs = lungs * (1 - heart) * (1 - spine_zone) * inner
    img = img * (1 - lungs) + 14 * lungs  # aerated lung is nearly black in this window
    img += 28 * heart

    # Vessels: branches in plane (lines) and end-on vessels (dots), only inside the lungs.
    vessel_canvases = [np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32) for _ in range(3)]
    for seg in a.vessels:
        fade = np.exp(-0.5 * ((depth - seg.z_centre) / 2.2) ** 2)
        if fade < 0.08:
            continue
        # Branches drift with depth, as vessels run obliquely through the slab.
        sx, sy = seg.x0 + seg.drift[0] * depth, seg.y0 + seg.drift[1] * depth
        ex, ey = seg.x1 + seg.drift[0] * depth, seg.y1 + seg.drift[1] * depth
        rr, cc, val = line_aa(*np.clip(np.round([sy, sx, ey, ex]), 0, IMAGE_SIZE - 1).astype(int))
        np.maximum.at(vessel_canvases[seg.width], (rr, cc), val.astype(np.float32) * fade)
    vessels = np.zeros_like(img)
    for canvas, sigma in zip(vessel_canvases, (0.6, 1.0, 1.6)):
        vessels = np.maximum(vessels, ndimage.gaussian_filter(canvas, sigma) * (np.sqrt(2 * np.pi) * sigma))
    # End-on vessels: points splatted per size class, then blurred to discs of that size.
    dot_canvases = [np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32) for _ in range(2)]
    for (lx, ly), sign in zip(lung_centres, (-1, 1)):
        ux, uy, rad, zc, drift_angle = a.end_on_vessels.T
        fade = np.exp(-0.5 * ((depth - zc) / 1.5) ** 2)
        px = np.round(lx + sign * ux * lung_ax * 0.85 + np.cos(drift_angle) * depth).astype(int)
        py = np.round(ly + uy * lung_ay * 0.85 + np.sin(drift_angle) * depth).astype(int)
        keep = (fade > 0.1) & (px >= 0) & (px < IMAGE_SIZE) & (py >= 0) & (py < IMAGE_SIZE)
        big = rad > 1.6
        for canvas, sel in zip(dot_canvases, (keep & ~big, keep & big)):
            np.maximum.at(canvas, (py[sel], px[sel]), fade[sel])
    dots = np.maximum(
        ndimage.gaussian_filter(dot_canvases[0], 0.8) * (2 * np.pi * 0.8**2),
        ndimage.gaussian_filter(dot_canvases[1], 1.3) * (2 * np.pi * 1.3**2),
    )
    img += 120 * np.clip(np.maximum(vessels, dots), 0, 1) * lungs

    # Nodules and lesions: cross-sections of spheres.
    for nod in a.nodules:
        dz_px = (depth - nod.z) * _SLICE_THICKNESS_PX
        if abs(dz_px) >= nod.radius:
            continue
        r_slice = max(np.sqrt(nod.radius**2 - dz_px**2), 1.0)
        where, (xx, yy) = _window(nod.x, nod.y, r_slice * 1.5 + 3)
        if where is None:
            continue
        dx, dy = xx - nod.x, yy - nod.y
        dist = np.sqrt(dx**2 + dy**2)
        if nod.kind == "spiculated":
            theta = np.arctan2(dy, dx)
            bumps = sum(0.35 * s * np.maximum(np.cos((k + 3) * theta + 7 * s), 0) ** 8 for k, s in enumerate(nod.spikes))
            dist = dist / (1 + bumps)
        mask = _smooth_step(dist / r_slice, 1.0, 0.25)
        local_lungs = lungs[where]
        if nod.kind == "ground_glass":
            img[where] += 45 * mask * local_lungs
        elif nod.kind == "cavitary":
            hole = _smooth_step(dist / (0.5 * r_slice), 1.0, 0.3)
            img[where] += 105 * mask * (1 - hole) * np.maximum(local_lungs, 0.5)
        else:
            img[where] += 110 * mask * np.maximum(local_lungs, 0.5)

    # Aorta, spine (vertebral body, canal, spinous process), sternum, ribs.
    aorta = _smooth_step(np.hypot(_XX - (cx + 14), _YY - (vert_y - a.vertebra_radius - a.aorta_radius - 2)) / a.aorta_radius, 1.0, 0.1)
    img += 30 * aorta * (1 - lungs)
    vr = a.vertebra_radius
    vert = np.hypot(_XX - vert_x, (_YY - vert_y) * 1.1) / vr
    bone = 150 * _smooth_step(vert, 1.0, 0.08) + 60 * (_smooth_step(vert, 1.0, 0.08) - _smooth_step(vert, 0.78, 0.08))
    canal = _smooth_step(np.hypot(_XX - vert_x, _YY - (vert_y + vr + 6)) / (vr * 0.45), 1.0, 0.15)
    arch = _smooth_step(np.hypot(_XX - vert_x, _YY - (vert_y + vr + 6)) / (vr * 0.85), 1.0, 0.1) - canal
    spinous = _smooth_step(_superellipse(vert_x, vert_y + vr * 2.0 + 6, 3.5, 9 + 2 * np.sin(depth), 2.0), 1.0, 0.15)
    lamina_y = vert_y + vr + 6
    processes = sum(
        _smooth_step(_superellipse(vert_x + s * vr * 1.1, lamina_y - 2, vr * 0.7, 3.5, 2.0, tilt=s * 0.35), 1.0, 0.15)
        for s in (-1, 1)
    )
    bone = bone + 200 * np.clip(arch + spinous + processes, 0, 1)
    img = img * (1 - canal * 0.5)
    sternum_y = cy - ay + a.fat_thickness + 7
    bone += 190 * _smooth_step(_superellipse(cx, sternum_y, 10, 4.5, 2.0), 1.0, 0.12)
    for k, angle in enumerate(a.rib_angles):
        for side in (-1, 1):
            ang = angle + 0.03 * depth * side + 0.01 * k
            rx = cx + side * (ax - a.fat_thickness - 6) * np.cos(ang) * 0.97
            ry = cy - (ay - a.fat_thickness - 6) * np.sin(ang) * 0.97
            ry = 2 * cy - ry if ang > np.pi / 2 + 0.6 else ry  # lower ribs wrap behind the lungs
            tangent = np.arctan2(np.cos(ang) * ay, -np.sin(ang) * ax)
            where, grid = _window(rx, ry, 9)
            if where is None:
                continue
            rib = _superellipse(rx, ry, 6.5, 3.2, 2.0, tilt=tangent, grid=grid)
            cortex = _smooth_step(rib, 1.0, 0.15) - 0.45 * _smooth_step(rib, 0.6, 0.2)
            bone[where] += 210 * cortex
    img = np.maximum(img, np.minimum(bone, 255) * body)

    if a.has_couch:
        couch_y = cy + ay + 10
        curve = couch_y + 0.0009 * (_XX - cx) ** 2
        couch = (np.abs(_YY - curve) < 1.6).astype(np.float32) * 150 + ((_YY > curve + 6) & (_YY < curve + 20)) * 35.0
        couch *= np.abs(_XX - cx) < ax * 1.1
        img = np.maximum(img, couch)

    # Partial-volume blur, then correlated quantum noise (stronger in dense tissue), then the window.
    img = ndimage.gaussian_filter(img, 0.7)
    noise = ndimage.gaussian_filter(rng.standard_normal(img.shape).astype(np.float32), 0.8) * 2.2
    tissue = np.clip(img / 60.0, 0, 1.5)
    img = img + a.noise_sigma * noise * tissue
    img = (img - 12) * a.contrast * a.brightness + 12 * a.brightness
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def phantom_patient(seed: int, patient: int, n_slices: int = 6, *, spacing: float = 1.0) -> np.ndarray:
    """``n_slices`` neighbouring slices (uint8 [n_slices, 256, 256]) of one synthetic patient."""
    anatomy = sample_anatomy(np.random.default_rng([seed, patient]))
    depths = (np.arange(n_slices) - (n_slices - 1) / 2) * spacing
    return np.stack(
        [render_slice(anatomy, float(d), np.random.default_rng([seed, patient, k, 1])) for k, d in enumerate(depths)]
    )


def phantom_slices(n_patients: int, slices_per_patient: int = 6, *, seed: int = 0, spacing: float = 1.0) -> PhantomSet:
    """Render ``n_patients`` x ``slices_per_patient`` slices; ids look like ``p0003_s02``."""
    if n_patients < 1 or slices_per_patient < 1:
        raise ValueError("n_patients and slices_per_patient must be at least 1")
    images = np.concatenate(
        [phantom_patient(seed, p, slices_per_patient, spacing=spacing) for p in range(n_patients)]
    )
    patient = np.repeat(np.arange(n_patients), slices_per_patient)
    slice_index = np.tile(np.arange(slices_per_patient), n_patients)
    ids = [f"p{p:04d}_s{s:02d}" for p, s in zip(patient, slice_index)]
    return PhantomSet(images=images, patient=patient, slice_index=slice_index, image_ids=ids)
