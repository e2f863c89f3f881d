"""The procedural CT-like slices: seeded, anatomically plausible intensities, and patients that nearest
neighbours can tell apart."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from synthscope.phantom import phantom_patient, phantom_slices, render_slice, sample_anatomy


@pytest.fixture(scope="module")
def phantoms():
    return phantom_slices(8, 4, seed=3)


def test_shape_ids_and_indices(phantoms):
    assert phantoms.images.shape == (32, 256, 256)
    assert phantoms.images.dtype == np.uint8
    assert phantoms.patient.tolist() == [p for p in range(8) for _ in range(4)]
    assert phantoms.slice_index.tolist() == [s for _ in range(8) for s in range(4)]
    assert phantoms.image_ids[:2] == ["p0000_s00", "p0000_s01"]
    assert len(set(phantoms.image_ids)) == 32


def test_same_seed_same_images_and_patients_do_not_depend_on_count(phantoms):
    again = phantom_slices(3, 4, seed=3)
    np.testing.assert_array_equal(again.images, phantoms.images[:12])
    np.testing.assert_array_equal(phantom_patient(3, 5, 4), phantoms.images[20:24])
    other = phantom_slices(1, 4, seed=4)
    assert np.abs(other.images.astype(int) - phantoms.images[:4].astype(int)).mean() > 5


def test_ct_like_intensities(phantoms):
    for image in phantoms.images:
        body = ndimage.binary_fill_holes(ndimage.gaussian_filter(image.astype(float), 2) > 30)
        labels, n = ndimage.label(body)
        body = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1  # the largest blob is the body
        assert 0.2 < body.mean() < 0.6
        assert image[~ndimage.binary_dilation(body, iterations=25)].mean() < 12  # air outside: black
        # Aerated lung inside the body: a large dark area enclosed by soft tissue.
        dark_inside = body & (ndimage.gaussian_filter(image.astype(float), 2) < 30)
        assert dark_inside.sum() > 0.1 * body.sum()
        # Bone (spine, ribs, sternum) is the brightest tissue.
        assert (image > 200).sum() > 80
        # CT noise: the soft tissue is grainy, not flat.
        soft = body & ~dark_inside & (image > 40) & (image < 180)
        assert image[soft].std() > 8


def test_neighbouring_slices_differ_slightly_and_are_nearest_neighbours(phantoms):
    small = phantoms.images.reshape(32, 64, 4, 64, 4).mean(axis=(2, 4)).reshape(32, -1)
    dist = ((small[:, None, :] - small[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    nearest = dist.argmin(1)
    same_patient = phantoms.patient[nearest] == phantoms.patient
    assert same_patient.mean() >= 0.9
    for p in range(8):
        a, b = phantoms.images[4 * p].astype(int), phantoms.images[4 * p + 1].astype(int)
        assert 0 < np.abs(a - b).mean()


def test_patients_vary_in_anatomy():
    anatomies = [sample_anatomy(np.random.default_rng([0, p])) for p in range(20)]
    assert len({round(a.body_axes[0], 3) for a in anatomies}) == 20
    assert len({len(a.nodules) for a in anatomies}) >= 3  # some without, some with several lesions
    assert len({n.kind for a in anatomies for n in a.nodules}) >= 3


def test_nodule_is_a_sphere_seen_in_some_slices_only():
    rng = np.random.default_rng(0)
    for p in range(40):
        anatomy = sample_anatomy(np.random.default_rng([0, p]))
        solid = [n for n in anatomy.nodules if n.kind == "solid" and n.radius > 7]
        if solid:
            break
    nodule = solid[0]
    x, y = int(round(nodule.x)), int(round(nodule.y))
    centre = render_slice(anatomy, nodule.z, rng)[y - 2:y + 3, x - 2:x + 3].mean()
    far = render_slice(anatomy, nodule.z + 20, rng)[y - 2:y + 3, x - 2:x + 3].mean()
    assert centre > far + 40


def test_bad_counts_raise():
    with pytest.raises(ValueError, match="at least 1"):
        phantom_slices(0, 3)
