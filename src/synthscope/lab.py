"""A generator lab: train a small zoo of generative models on chosen subsets of real images and write a
benchmark in the ImageCLEFmedical GANs 2024 layout whose ground truth is real.

The zoo (all 1-channel, trained at a low internal resolution, default 64 px, then upsampled
bilinearly to 256 px, so every model shares that last upsampling step):

- ``dcgan``     transposed-convolution GAN (ConvTranspose2d k4 s2 + BatchNorm), hinge loss
- ``upconv``    nearest-upsample + 3x3 conv GAN, same discriminator and loss
- ``vae``       convolutional VAE, bilinear-upsampling decoder, Gaussian likelihood
- ``diffusion`` a tiny DDPM (small UNet, x0 prediction), sampled with deterministic DDIM

Each model trains on its own training set (disjoint groups of images), so the sub-task 1 labels
(used / not used) and sub-task 2 labels (which model) are facts of the training run, not simulations.
The splits are group-aware: slices of one patient (or any group the user gives) never straddle
used / not used or dev / test.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

IMAGE_SIZE = 256
MODEL_NAMES = ("dcgan", "upconv", "vae", "diffusion")
ARCHITECTURES = {
    "dcgan": "transposed-conv GAN (ConvTranspose2d k4 s2 + BatchNorm, spectral-norm discriminator, hinge loss)",
    "upconv": "upsample+conv GAN (nearest Upsample + Conv3x3 + BatchNorm, spectral-norm discriminator, hinge loss)",
    "vae": "convolutional VAE (32-d latent, bilinear-upsampling decoder, Gaussian likelihood sigma=0.25; sampled from a Gaussian fit to its training latents)",
    "diffusion": "tiny DDPM (UNet 16/32/64 channels, 200 linear-beta steps, x0-prediction, 25-step DDIM sampling)",
}
GAN_LR = 2e-4
GAN_BETAS = (0.0, 0.99)  # beta1 = 0 kept more diversity than 0.5 in a few hundred steps here
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


class LabError(ValueError):
    """Bad lab input (too few images, unknown model, unreadable folder)."""


# --------------------------------------------------------------------------------------------- torch set-up


def available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def choose_threads() -> int:
    """Torch threads for CPU work: every available core, but one when the machine is already busy
    (with more runnable processes than cores, OpenMP threads mostly wait for each other: measured 10x
    slower here with 2 threads than with 1 under a load of 8 on 2 cores)."""
    cpus = available_cpus()
    try:
        busy = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not available on this platform
        busy = 0.0
    return 1 if busy >= cpus else cpus


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise LabError("--device cuda was asked for but torch sees no CUDA device")
    if device not in {"cpu", "cuda"}:
        raise LabError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


def _to_tensor(images: np.ndarray, resolution: int) -> torch.Tensor:
    """uint8 [n,H,W] -> float32 [n,1,r,r] in [-1, 1], area-downsampled."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(127.5).sub_(1.0).unsqueeze(1)
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="area")
    return x


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] float [n,1,r,r] -> uint8 [n,256,256], bilinear upsampling then the usual quantisation."""
    x = x.float().cpu()
    if x.shape[-1] != IMAGE_SIZE:
        x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).squeeze(1).numpy()


def _n_up(resolution: int) -> int:
    n = int(round(math.log2(resolution / 4)))
    if n < 2 or 4 * 2**n != resolution:
        raise LabError(f"resolution must be a power of two >= 16, got {resolution}")
    return n


# ------------------------------------------------------------------------------------------------- networks


class DCGANGenerator(nn.Module):
    def __init__(self, resolution: int, z_dim: int = 64, width: int = 128):
        super().__init__()
        n_up = _n_up(resolution)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, width, 4, 1, 0, bias=False)]
        ch = width
        for _ in range(n_up - 1):
            layers += [nn.BatchNorm2d(ch), nn.ReLU(True), nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False)]
            ch //= 2
        layers += [nn.BatchNorm2d(ch), nn.ReLU(True), nn.ConvTranspose2d(ch, 1, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim

    def forward(self, z):
        return self.net(z.view(z.shape[0], -1, 1, 1))


class UpconvGenerator(nn.Module):
    def __init__(self, resolution: int, z_dim: int = 64, width: int = 128):
        super().__init__()
        n_up = _n_up(resolution)
        self.fc = nn.Linear(z_dim, width * 16)
        layers: list[nn.Module] = [nn.BatchNorm2d(width), nn.ReLU(True)]
        ch = width
        for _ in range(n_up):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch // 2, 3, 1, 1, bias=False),
                       nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.Conv2d(ch, 1, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.width, self.z_dim = width, z_dim

    def forward(self, z):
        return self.net(self.fc(z).view(z.shape[0], self.width, 4, 4))


class Discriminator(nn.Module):
    def __init__(self, resolution: int, width: int = 16):
        super().__init__()
        sn = nn.utils.spectral_norm
        layers: list[nn.Module] = []
        ch_in, ch = 1, width
        for _ in range(_n_up(resolution)):
            layers += [sn(nn.Conv2d(ch_in, ch, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
            ch_in, ch = ch, min(ch * 2, 256)
        self.features = nn.Sequential(*layers)
        self.head = sn(nn.Linear(ch_in * 16, 1))

    def forward(self, x):
        return self.head(self.features(x).flatten(1)).squeeze(1)


class VAE(nn.Module):
    def __init__(self, resolution: int, z_dim: int = 32, width: int = 16):
        super().__init__()
        n_up = _n_up(resolution)
        enc: list[nn.Module] = []
        ch_in, ch = 1, width
        for _ in range(n_up):
            enc += [nn.Conv2d(ch_in, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            ch_in, ch = ch, ch * 2
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self.to_stats = nn.Linear(ch_in * 16, 2 * z_dim)
        self.top = ch_in
        self.from_z = nn.Linear(z_dim, ch_in * 16)
        dec: list[nn.Module] = []
        ch = ch_in
        for _ in range(n_up):
            dec += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                    nn.Conv2d(ch, ch // 2, 3, 1, 1), nn.LeakyReLU(0.2, True)]
            ch //= 2
        self.decoder = nn.Sequential(*dec, nn.Conv2d(ch, 1, 3, 1, 1), nn.Tanh())
        self.z_dim = z_dim

    def decode(self, z):
        return self.decoder(self.from_z(z).view(z.shape[0], self.top, 4, 4))

    def forward(self, x):
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decode(z), mu, logvar


def _timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=1)


class _ResBlock(nn.Module):
    def __init__(self, ch_in: int, ch_out: int, t_dim: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, ch_in), nn.Conv2d(ch_in, ch_out, 3, 1, 1)
        self.t_proj = nn.Linear(t_dim, ch_out)
        self.norm2, self.conv2 = nn.GroupNorm(8, ch_out), nn.Conv2d(ch_out, ch_out, 3, 1, 1)
        self.skip = nn.Conv2d(ch_in, ch_out, 1) if ch_in != ch_out else nn.Identity()

    def forward(self, x, t_emb):
        h = self.conv1(F.silu(self.norm1(x))) + self.t_proj(t_emb)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class TinyUNet(nn.Module):
    def __init__(self, channels: Sequence[int] = (16, 32, 64), t_dim: int = 64):
        super().__init__()
        self.t_dim = t_dim
        self.t_mlp = nn.Sequential(nn.Linear(t_dim, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.inp = nn.Conv2d(1, channels[0], 3, 1, 1)
        self.down_blocks, self.downs = nn.ModuleList(), nn.ModuleList()
        ch = channels[0]
        for c in channels:
            self.down_blocks.append(_ResBlock(ch, c, t_dim))
            self.downs.append(nn.Conv2d(c, c, 4, 2, 1))
            ch = c
        self.mid = _ResBlock(ch, ch, t_dim)
        self.up_blocks, self.ups = nn.ModuleList(), nn.ModuleList()
        for c in reversed(channels):
            self.ups.append(nn.Upsample(scale_factor=2, mode="nearest"))
            self.up_blocks.append(_ResBlock(ch + c, c, t_dim))
            ch = c
        self.out = nn.Sequential(nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, 1, 3, 1, 1))

    def forward(self, x, t):
        t_emb = self.t_mlp(_timestep_embedding(t, self.t_dim))
        h = self.inp(x)
        skips = []
        for block, down in zip(self.down_blocks, self.downs):
            h = block(h, t_emb)
            skips.append(h)
            h = down(h)
        h = self.mid(h, t_emb)
        for block, up in zip(self.up_blocks, self.ups):
            h = block(torch.cat([up(h), skips.pop()], dim=1), t_emb)
        return self.out(h)


# ------------------------------------------------------------------------------------------------- training


@dataclass
class TrainingSummary:
    model: str
    architecture: str
    n_train: int
    resolution: int
    steps: int
    batch_size: int
    seconds: float
    device: str
    final_losses: dict[str, float]
    n_parameters: int


@dataclass
class TrainedGenerator:
    """A trained model that draws uint8 [n, 256, 256] images from a seed."""

    name: str
    network: nn.Module
    summary: TrainingSummary
    history: pd.DataFrame = field(repr=False)
    _sampler: Callable[[nn.Module, int, torch.Generator, torch.device], torch.Tensor] = field(repr=False, default=None)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @torch.no_grad()
    def sample(self, n: int, seed: int, batch_size: int = 128) -> np.ndarray:
        gen = torch.Generator().manual_seed(int(seed))
        self.network.eval()
        out = []
        for start in range(0, n, batch_size):
            out.append(_to_uint8(self._sampler(self.network, min(batch_size, n - start), gen, self.device)))
        return np.concatenate(out) if out else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)


def _batches(x: torch.Tensor, steps: int, batch_size: int, gen: torch.Generator):
    """Yield `steps` minibatches, reshuffling every epoch."""
    n = x.shape[0]
    perm, pos = torch.randperm(n, generator=gen), 0
    for _ in range(steps):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos:pos + min(batch_size, n)]
        pos += batch_size
        yield x[idx]


def _log(history: list[dict], step: int, t0: float, **losses: float) -> None:
    history.append({"step": step, "t_s": round(time.perf_counter() - t0, 2), **{k: float(v) for k, v in losses.items()}})


def _train_gan(generator: nn.Module, x, steps, batch_size, device, gen, history, t0, log_every):
    disc = Discriminator(x.shape[-1]).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=GAN_LR, betas=GAN_BETAS)
    opt_d = torch.optim.Adam(disc.parameters(), lr=GAN_LR, betas=GAN_BETAS)
    for step, real in enumerate(_batches(x, steps, batch_size, gen), 1):
        real = real.to(device)
        z = torch.randn(real.shape[0], generator.z_dim, generator=gen).to(device)
        fake = generator(z)
        d_real, d_fake = disc(real), disc(fake.detach())
        loss_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = -disc(fake).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if step % log_every == 0 or step == steps:
            _log(history, step, t0, loss_D=loss_d.item(), loss_G=loss_g.item(),
                 D_real=d_real.mean().item(), D_fake=d_fake.mean().item())
    # Re-estimate BatchNorm statistics on generated batches so eval-mode sampling matches training.
    with torch.no_grad():
        for m in generator.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        generator.train()
        for _ in range(8):
            generator(torch.randn(64, generator.z_dim, generator=gen).to(device))
    generator.eval()


def _gan_sampler(net, n, gen, device):
    return net(torch.randn(n, net.z_dim, generator=gen).to(device))


def _train_vae(vae: VAE, x, steps, batch_size, device, gen, history, t0, log_every, sigma: float = 0.25):
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    n_px = x.shape[-1] * x.shape[-2]
    for step, real in enumerate(_batches(x, steps, batch_size, gen), 1):
        real = real.to(device)
        recon, mu, logvar = vae(real)
        mse = F.mse_loss(recon, real, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        loss = (mse / (2 * sigma**2) + kl).mean() / n_px
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % log_every == 0 or step == steps:
            _log(history, step, t0, loss_per_px=loss.item(), mse=(mse / n_px).mean().item(), kl=kl.mean().item())
    vae.eval()
    # Briefly trained, the prior N(0, I) covers the latents of the training images poorly and its samples are
    # grey blobs; sample instead from a Gaussian fitted to the training latents (ex-post density estimation,
    # Ghosh et al. 2020), with a small ridge so the covariance stays positive definite.
    with torch.no_grad():
        mu = torch.cat([vae.to_stats(vae.encoder(b.to(device))).chunk(2, dim=1)[0] for b in x.split(64)]).double().cpu()
    cov = torch.cov(mu.T) + 1e-3 * torch.eye(mu.shape[1], dtype=torch.float64)
    vae.latent_mean = mu.mean(0).float()
    vae.latent_chol = torch.linalg.cholesky(cov).float()


def _vae_sampler(net, n, gen, device):
    eps = torch.randn(n, net.z_dim, generator=gen)
    return net.decode((net.latent_mean + eps @ net.latent_chol.T).to(device))


_DIFFUSION_T = 200
# The network predicts the clean image (x0) rather than the noise: with a few hundred CPU steps, eps-prediction
# left grey, noisy backgrounds here, x0-prediction gave blurry but recognisable chest slices.
DIFFUSION_TARGET = "x0"
_DDIM_STEPS = 25


def _alpha_bars(device) -> torch.Tensor:
    betas = torch.linspace(1e-4, 0.02 * 1000 / _DIFFUSION_T, _DIFFUSION_T, device=device)
    return torch.cumprod(1 - betas, dim=0)


def _train_diffusion(unet: TinyUNet, x, steps, batch_size, device, gen, history, t0, log_every):
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-3)
    abar = _alpha_bars(device)
    for step, real in enumerate(_batches(x, steps, batch_size, gen), 1):
        real = real.to(device)
        t = torch.randint(0, _DIFFUSION_T, (real.shape[0],), generator=gen).to(device)
        noise = torch.randn(real.shape, generator=gen).to(device)
        a = abar[t][:, None, None, None]
        target = real if DIFFUSION_TARGET == "x0" else noise
        loss = F.mse_loss(unet(a.sqrt() * real + (1 - a).sqrt() * noise, t), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % log_every == 0 or step == steps:
            _log(history, step, t0, **{f"loss_{DIFFUSION_TARGET}_mse": loss.item()})
    unet.eval()


def _diffusion_sampler(net, n, gen, device):
    """Deterministic DDIM (eta = 0) with x0 clipped to [-1, 1]."""
    res = net.resolution
    abar = _alpha_bars(device)
    x = torch.randn(n, 1, res, res, generator=gen).to(device)
    times = torch.linspace(_DIFFUSION_T - 1, 0, _DDIM_STEPS).round().long().tolist()
    for i, t in enumerate(times):
        a_t = abar[t]
        out = net(x, torch.full((n,), t, device=device))
        if DIFFUSION_TARGET == "x0":
            x0 = out.clamp(-1, 1)
        else:
            x0 = ((x - (1 - a_t).sqrt() * out) / a_t.sqrt()).clamp(-1, 1)
        eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        if i + 1 == len(times):
            x = x0
        else:
            a_prev = abar[times[i + 1]]
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x


def train_generator(name: str, images: np.ndarray, *, steps: int, resolution: int = 64, batch_size: int = 32,
                    device: str | torch.device = "auto", seed: int = 0, log_every: int = 25) -> TrainedGenerator:
    """Train one model of the zoo on uint8 [n, H, W] images (downsampled to ``resolution``)."""
    if name not in MODEL_NAMES:
        raise LabError(f"unknown model {name!r}; the zoo has {', '.join(MODEL_NAMES)}")
    if len(images) < 2:
        raise LabError(f"{name}: needs at least 2 training images, got {len(images)}")
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = _to_tensor(images, resolution)
    history: list[dict] = []
    t0 = time.perf_counter()
    if name in ("dcgan", "upconv"):
        net = (DCGANGenerator if name == "dcgan" else UpconvGenerator)(resolution).to(dev)
        _train_gan(net, x, steps, batch_size, dev, gen, history, t0, log_every)
        sampler = _gan_sampler
    elif name == "vae":
        net = VAE(resolution).to(dev)
        _train_vae(net, x, steps, batch_size, dev, gen, history, t0, log_every)
        sampler = _vae_sampler
    else:
        net = TinyUNet().to(dev)
        net.resolution = resolution
        _train_diffusion(net, x, steps, batch_size, dev, gen, history, t0, log_every)
        sampler = _diffusion_sampler
    seconds = time.perf_counter() - t0
    hist = pd.DataFrame(history)
    tail = hist.drop(columns=["step", "t_s"]).tail(max(1, len(hist) // 10)).mean()
    summary = TrainingSummary(
        model=name, architecture=ARCHITECTURES[name], n_train=len(images), resolution=resolution, steps=steps,
        batch_size=batch_size, seconds=round(seconds, 2), device=str(dev),
        final_losses={k: round(float(v), 5) for k, v in tail.items()},
        n_parameters=sum(p.numel() for p in net.parameters()),
    )
    return TrainedGenerator(name=name, network=net, summary=summary, history=hist, _sampler=sampler, device=dev)


# ------------------------------------------------------------------------------------ benchmark in 2024 layout

#: default training length per model (steps of `batch_size`), sized for a couple of CPU minutes in all
DEFAULT_STEPS = {"dcgan": 300, "upconv": 250, "vae": 300, "diffusion": 350}


@dataclass
class LabConfig:
    """What to train and how much to generate. The first ``membership_models`` models also get sub-task 1
    folders; the last ``unseen_models`` models are left out of the sub-task 2 dev set (as in 2024)."""

    models: tuple[str, ...] = ("dcgan", "vae", "diffusion", "upconv")
    membership_models: int = 2
    unseen_models: int = 1
    train_size: int = 72
    resolution: int = 64
    resolution_overrides: dict[str, int] = field(default_factory=lambda: {"diffusion": 32})
    steps: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_STEPS))
    batch_size: int = 32
    n_generated_dev: int = 100
    n_generated_test: int = 150
    n_attribution_dev: int = 60
    n_attribution_test: int = 75
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # torch CPU threads; None = choose_threads()

    def validate(self) -> None:
        unknown = [m for m in self.models if m not in MODEL_NAMES]
        if unknown:
            raise LabError(f"unknown model(s) {', '.join(unknown)}; the zoo has {', '.join(MODEL_NAMES)}")
        if len(set(self.models)) != len(self.models):
            raise LabError(f"each model may appear once, got {', '.join(self.models)}")
        if len(self.models) < 2:
            raise LabError("the lab needs at least 2 models (sub-task 2 tells models apart)")
        if not 0 <= self.membership_models <= len(self.models):
            raise LabError(f"membership_models must be between 0 and {len(self.models)}")
        if not 0 <= self.unseen_models < len(self.models):
            raise LabError(f"unseen_models must be between 0 and {len(self.models) - 1}")
        if self.train_size < 2:
            raise LabError("train_size must be at least 2")
        missing = [m for m in self.models if m not in self.steps]
        if missing:
            raise LabError(f"no training steps given for {', '.join(missing)}")

    def resolution_of(self, model: str) -> int:
        return int(self.resolution_overrides.get(model, self.resolution))

    def steps_for_epochs(self, epochs: float) -> dict[str, int]:
        """Steps that make ``epochs`` passes over a training set of ``train_size`` images."""
        per_epoch = max(1, math.ceil(self.train_size / self.batch_size))
        return {m: max(1, int(round(epochs * per_epoch))) for m in self.models}


@dataclass
class LabResult:
    root: Path
    subtask1_dev: Path | None
    subtask1_test: Path | None
    subtask1_truth: Path | None
    subtask2_dev: Path
    subtask2_test: Path
    subtask2_truth: Path
    model_key: Path
    training: list[TrainingSummary]
    seconds: float


@dataclass
class RealSplits:
    """Source indices (into the real pool) of each model's training set and not-used sets."""

    train: dict[str, list[int]]
    used_dev: dict[str, list[int]]
    used_test: dict[str, list[int]]
    not_used_dev: dict[str, list[int]]
    not_used_test: dict[str, list[int]]


def split_real_pool(groups: Sequence, config: LabConfig) -> RealSplits:
    """Group-aware, disjoint splits: every model trains on its own whole groups; the membership models get
    not-used sets of the same size from groups no model trained on; used and not-used sets are each cut in
    a dev and a test half along group lines."""
    groups = np.asarray(groups)
    rng = np.random.default_rng([config.seed, 11])
    unique = pd.unique(groups)
    order = list(rng.permutation(len(unique)))
    members = {g: np.flatnonzero(groups == g).tolist() for g in unique}

    def take(n_images: int, what: str) -> list[int]:
        picked: list[int] = []
        while len(picked) < n_images:
            if not order:
                needed = config.train_size * (len(config.models) + config.membership_models)
                raise LabError(
                    f"not enough real images for {what}: the lab needs about {needed} "
                    f"({len(config.models)} training sets + {config.membership_models} not-used sets of "
                    f"{config.train_size}), the pool has {len(groups)} in {len(unique)} groups; "
                    "lower train_size or give more images"
                )
            picked += members[unique[order.pop(0)]]
        return sorted(picked)

    def halve(indices: list[int]) -> tuple[list[int], list[int]]:
        dev: list[int] = []
        test: list[int] = []
        set_groups = list(pd.unique(groups[indices]))
        for k in rng.permutation(len(set_groups)):
            part = [i for i in indices if groups[i] == set_groups[k]]
            (dev if len(dev) <= len(test) else test).extend(part)
        return sorted(dev), sorted(test)

    train = {m: take(config.train_size, f"the training set of {m}") for m in config.models}
    splits = RealSplits(train=train, used_dev={}, used_test={}, not_used_dev={}, not_used_test={})
    for m in config.models[: config.membership_models]:
        not_used = take(len(train[m]), f"the not-used set of {m}")
        splits.used_dev[m], splits.used_test[m] = halve(train[m])
        splits.not_used_dev[m], splits.not_used_test[m] = halve(not_used)
    return splits


def _save_png(path: Path, image: np.ndarray) -> None:
    Image.fromarray(image, mode="L").save(path, format="PNG")


def _write_images(folder: Path, names: Sequence[str], images: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, img in zip(names, images):
        _save_png(folder / f"{name}.png", img)


def build_benchmark(images: np.ndarray, source_ids: Sequence[str], out_dir: str | Path, config: LabConfig | None = None,
                    *, groups: Sequence | None = None, progress: Callable[[str], None] | None = None,
                    description: str = "a folder of real images") -> LabResult:
    """Train the zoo on disjoint subsets of ``images`` (uint8 [n,256,256]) and write the benchmark to
    ``out_dir`` (which must not exist or be empty). ``groups`` keeps near-duplicates (slices of one
    patient) together; without it every image is its own group."""
    config = config or LabConfig()
    config.validate()
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or images.dtype != np.uint8:
        raise LabError(f"images must be uint8 [n, {IMAGE_SIZE}, {IMAGE_SIZE}], got {images.dtype} {images.shape}")
    source_ids = [str(s) for s in source_ids]
    if len(source_ids) != len(images):
        raise LabError(f"{len(source_ids)} source ids for {len(images)} images")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise LabError(f"{out_dir} exists and is not empty; the lab writes only into a new or empty folder")
    say = progress or (lambda message: None)
    groups = np.arange(len(images)) if groups is None else np.asarray(groups)
    splits = split_real_pool(groups, config)
    device = resolve_device(config.device)
    if device.type == "cpu":
        torch.set_num_threads(config.threads or choose_threads())
    t_start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, dict[str, int]] = {}
    summaries: list[TrainingSummary] = []
    generators: dict[str, TrainedGenerator] = {}
    for k, model in enumerate(config.models):
        train_idx = splits.train[model]
        say(f"training {model} on {len(train_idx)} images for {config.steps[model]} steps "
            f"at {config.resolution_of(model)} px on {device}")
        g = train_generator(model, images[train_idx], steps=config.steps[model], resolution=config.resolution_of(model),
                            batch_size=config.batch_size, device=device, seed=config.seed * 1000 + k)
        generators[model] = g
        summaries.append(g.summary)
        seeds[model] = {"train": config.seed * 1000 + k}
        log_dir = out_dir / "training_logs" / model
        log_dir.mkdir(parents=True, exist_ok=True)
        g.history.to_csv(log_dir / "losses.csv", index=False)
        (log_dir / "summary.json").write_text(json.dumps(asdict(g.summary), indent=1))
        say(f"  {model}: {g.summary.seconds:.1f} s, final losses {g.summary.final_losses}")

    def sample(model: str, n: int, purpose: str, offset: int) -> np.ndarray:
        s = config.seed * 1000 + 100 * (config.models.index(model) + 1) + offset
        seeds[model][purpose] = s
        return generators[model].sample(n, seed=s)

    st1 = out_dir / "subtask1"
    truth_rows, source_rows = [], []
    shuffle_rng = np.random.default_rng([config.seed, 3001])
    for i, model in enumerate(config.models[: config.membership_models], 1):
        say(f"writing sub-task 1 folders of {model} (model_{i} / folder_{i})")
        dev = st1 / "dev" / f"model_{i}"
        _write_images(dev / "generated", [f"generated_{i}_{k:06d}" for k in range(1, config.n_generated_dev + 1)],
                      sample(model, config.n_generated_dev, "subtask1_dev", 11))
        for label, idx in (("real_used", splits.used_dev[model]), ("real_not_used", splits.not_used_dev[model])):
            names = [f"{label}_{i}_{k:06d}" for k in range(1, len(idx) + 1)]
            _write_images(dev / label, names, images[idx])
            source_rows += [(n, source_ids[j]) for n, j in zip(names, idx)]
        test = st1 / "test" / f"folder_{i}"
        _write_images(test / "generated", [f"generated_{i}_{k:06d}" for k in range(1, config.n_generated_test + 1)],
                      sample(model, config.n_generated_test, "subtask1_test", 12))
        unknown = [(j, 1) for j in splits.used_test[model]] + [(j, 0) for j in splits.not_used_test[model]]
        unknown = [unknown[p] for p in shuffle_rng.permutation(len(unknown))]
        names = [f"real_unknown_{i}_{k:06d}" for k in range(1, len(unknown) + 1)]
        _write_images(test / "real_unknown", names, images[[j for j, _ in unknown]])
        truth_rows += [(n, used) for n, (_, used) in zip(names, unknown)]
        source_rows += [(n, source_ids[j]) for n, (j, _) in zip(names, unknown)]
    st1_truth = None
    if config.membership_models:
        st1_truth = st1 / "test_ground_truth.csv"
        pd.DataFrame(truth_rows, columns=["image_id", "used"]).to_csv(st1_truth, index=False)
        pd.DataFrame(source_rows, columns=["image_id", "pool_id"]).to_csv(st1 / "real_source.csv", index=False)

    st2 = out_dir / "subtask2"
    seen = config.models[: len(config.models) - config.unseen_models]
    pool_images, pool_labels = [], []
    diversity: dict[str, tuple[float, float]] = {}
    for j, model in enumerate(config.models, 1):
        if model in seen:
            say(f"writing sub-task 2 dev folder model_{j} ({model})")
            _write_images(st2 / "dev" / f"model_{j}", [f"model_{j}_{k:04d}" for k in range(1, config.n_attribution_dev + 1)],
                          sample(model, config.n_attribution_dev, "subtask2_dev", 21))
        pool_images.append(sample(model, config.n_attribution_test, "subtask2_test", 22))
        diversity[model] = (_diversity(pool_images[-1]), _diversity(images[splits.train[model]]))
        pool_labels += [f"model_{j}"] * config.n_attribution_test
    say("writing sub-task 2 test folder generated_unknown")
    order = shuffle_rng.permutation(len(pool_labels))
    pool = np.concatenate(pool_images)[order]
    names = [f"generated_unknown_{k:05d}" for k in range(1, len(order) + 1)]
    _write_images(st2 / "test" / "generated_unknown", names, pool)
    st2_truth = st2 / "test_ground_truth.csv"
    pd.DataFrame({"image_id": names, "model": [pool_labels[p] for p in order]}).to_csv(st2_truth, index=False)
    model_key = st2 / "model_key.csv"
    pd.DataFrame({"model": [f"model_{j}" for j in range(1, len(config.models) + 1)],
                  "architecture": list(config.models)}).to_csv(model_key, index=False)

    seconds = time.perf_counter() - t_start
    record = {
        "config": asdict(config),
        "real_pool": description,
        "splits": {name: {m: [source_ids[j] for j in idx] for m, idx in getattr(splits, name).items()}
                   for name in ("train", "used_dev", "used_test", "not_used_dev", "not_used_test")},
        "sample_seeds": seeds,
        "training": [asdict(s) for s in summaries],
        "diversity": {m: {"generated": g, "training_set": r} for m, (g, r) in diversity.items()},
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    (out_dir / "config.json").write_text(json.dumps(record, indent=1))
    (out_dir / "README.md").write_text(_readme(config, splits, summaries, description, seconds, device, diversity))
    say(f"benchmark written to {out_dir} in {seconds:.0f} s")
    return LabResult(
        root=out_dir,
        subtask1_dev=st1 / "dev" if config.membership_models else None,
        subtask1_test=st1 / "test" if config.membership_models else None,
        subtask1_truth=st1_truth, subtask2_dev=st2 / "dev", subtask2_test=st2 / "test",
        subtask2_truth=st2_truth, model_key=model_key, training=summaries, seconds=seconds,
    )


def _diversity(images: np.ndarray) -> float:
    """Mean per-pixel standard deviation across images at 64 px (grey levels): near 0 = mode collapse."""
    x = F.interpolate(torch.from_numpy(np.ascontiguousarray(images)).float().unsqueeze(1), size=(64, 64), mode="area")
    return round(float(x.std(0).mean()), 2)


def _readme(config: LabConfig, splits: RealSplits, summaries: list[TrainingSummary], description: str,
            seconds: float, device: torch.device, diversity: dict[str, tuple[float, float]]) -> str:
    n_mem = config.membership_models
    seen = config.models[: len(config.models) - config.unseen_models]
    lines = [
        "# Generator-lab benchmark (written by `synthscope lab`)",
        "",
        f"Real images: {description}. Every model below was really trained on its own training set, so the",
        "ground truth of both sub-tasks is a fact of this run, not a simulation. All parameters, splits and",
        "seeds are in `config.json`; losses per model in `training_logs/<model>/`.",
        "",
        "## Layout (ImageCLEFmedical GANs 2024 style)",
        "```",
    ]
    for i, m in enumerate(config.models[:n_mem], 1):
        nu, nt = len(splits.used_dev[m]), len(splits.not_used_dev[m])
        tu, tn = len(splits.used_test[m]), len(splits.not_used_test[m])
        lines += [
            f"subtask1/dev/model_{i}/generated/generated_{i}_000001..{config.n_generated_dev:06d}.png   model {i} = {m}",
            f"subtask1/dev/model_{i}/real_used/ ({nu})  real_not_used/ ({nt})",
            f"subtask1/test/folder_{i}/generated/ ({config.n_generated_test})  real_unknown/ ({tu + tn} = {tu} used + {tn} not used, shuffled)",
        ]
    if n_mem:
        lines += ["subtask1/test_ground_truth.csv   image_id, used (1 = in that model's training set)",
                  "subtask1/real_source.csv         image_id -> pool_id (the source image)"]
    for j, m in enumerate(config.models, 1):
        if m in seen:
            lines.append(f"subtask2/dev/model_{j}/model_{j}_0001..{config.n_attribution_dev:04d}.png   ({m})")
    lines += [
        f"subtask2/test/generated_unknown/generated_unknown_00001..{config.n_attribution_test * len(config.models):05d}.png"
        f"   {config.n_attribution_test} per model x {len(config.models)} models, shuffled",
        "subtask2/test_ground_truth.csv   image_id, model"
        + (f"  ({', '.join(f'model_{j}' for j in range(len(seen) + 1, len(config.models) + 1))} absent from dev)"
           if config.unseen_models else ""),
        "subtask2/model_key.csv           model -> architecture",
        "```",
        "",
        "## Splits",
        f"Each model trained on its own {config.train_size}-image set (whole groups; no image or group in two",
        "training sets). Not-used images come from groups no model trained on. Used and not-used sets are each",
        "cut into a dev and a test half along group lines, so dev and test real images are disjoint and",
        "no group straddles them. Generated images of dev and test are different draws (different seeds).",
        "",
        "## Models",
        "Diversity = mean per-pixel standard deviation across images at 64 px, of the model's sub-task 2 test",
        "samples and of its training set; a generated value far below the training set's means mode collapse.",
        "",
        "| model | architecture | train imgs | resolution | steps | train s | final losses | diversity gen / train |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        losses = ", ".join(f"{k} {v:.3g}" for k, v in s.final_losses.items())
        gen_div, real_div = diversity[s.model]
        lines.append(f"| {s.model} | {s.architecture} | {s.n_train} | {s.resolution} px | {s.steps} | {s.seconds:.0f} "
                     f"| {losses} | {gen_div:.1f} / {real_div:.1f} |")
    res = sorted({config.resolution_of(m) for m in config.models})
    lines += [
        "",
        "## Honest notes",
        f"- The models train and sample at a low internal resolution ({', '.join(f'{r} px' for r in res)}) to fit a",
        "  CPU budget; their outputs are upsampled bilinearly to 256x256 before quantisation",
        "  (uint8 = round((clip(x, -1, 1) + 1) * 127.5)). That shared upsampling is a fingerprint common to",
        "  every model here and makes all images smoother than real 256 px CT.",
        f"- Training is brief (total {seconds:.0f} s on {device}, {torch.get_num_threads()} threads); short-trained",
        "  models memorise little, so sub-task 1 signal may be weak or absent. Test for leakage before claiming any.",
        "- Each model trained on a different image set, so sub-task 2 clusters can also differ in content.",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- real images from disk


def load_real_folder(path: str | Path, groups_csv: str | Path | None = None,
                     size_policy: str = "resize") -> tuple[np.ndarray, list[str], np.ndarray | None, list[str]]:
    """Read every image under ``path`` (recursively, sorted) as uint8 [n,256,256].

    Returns images, ids (file stems), groups (from ``groups_csv``: first column the id, second the group;
    ids it does not list become their own group) and a list of skipped files with the reason.
    """
    root = Path(path)
    if not root.is_dir():
        raise LabError(f"{root} is not a folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise LabError(f"no images ({', '.join(sorted(_IMAGE_SUFFIXES))}) found under {root}")
    stems = [p.stem for p in files]
    dupes = pd.Series(stems)[pd.Series(stems).duplicated(keep=False)]
    if len(dupes):
        first = dupes.iloc[0]
        both = [str(p) for p in files if p.stem == first][:2]
        raise LabError(f"duplicate image id {first!r}: {both[0]} and {both[1]}")
    try:
        from synthscope.data import read_image  # the project's reader (palette, RGB, 16-bit handled)
    except ImportError:  # pragma: no cover - used only before synthscope.data exists
        read_image = None
    images, ids, skipped = [], [], []
    for p in files:
        try:
            if read_image is not None:
                img = read_image(p, size_policy=size_policy)
            else:
                with Image.open(p) as im:
                    im = im.convert("L")
                    if im.size != (IMAGE_SIZE, IMAGE_SIZE):
                        im = im.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
                    img = np.asarray(im, dtype=np.uint8)
        except Exception as exc:  # unreadable files are reported, never fatal
            skipped.append(f"{p}: {exc}")
            continue
        images.append(img)
        ids.append(p.stem)
    if not images:
        raise LabError(f"none of the {len(files)} images under {root} could be read: {skipped[0]}")
    groups = None
    if groups_csv is not None:
        table = pd.read_csv(groups_csv)
        if table.shape[1] < 2:
            raise LabError(f"{groups_csv}: needs two columns, image id and group")
        mapping = dict(zip(table.iloc[:, 0].astype(str), table.iloc[:, 1].astype(str)))
        groups = np.array([mapping.get(i, f"__own_{i}") for i in ids], dtype=object)
    return np.stack(images), ids, groups, skipped
