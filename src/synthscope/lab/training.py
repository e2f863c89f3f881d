"""Training and sampling each model of the zoo on a set of real images."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from synthscope.lab.models import ARCHITECTURES, DCGANGenerator, Discriminator, GAN_BETAS, GAN_LR, IMAGE_SIZE, LabError, MODEL_NAMES, TinyUNet, UpconvGenerator, VAE, _to_tensor, _to_uint8, resolve_device


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


# left grey, noisy backgrounds here, x0-prediction gave blurry but recognisable chest slices.
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
        loss = F.mse_loss(unet(a.sqrt() * real + (1 - a).sqrt() * noise, t), real)   # x0 prediction
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % log_every == 0 or step == steps:
            _log(history, step, t0, loss_x0_mse=loss.item())
    unet.eval()


def _diffusion_sampler(net, n, gen, device):
    """Deterministic DDIM (eta = 0) with x0 clipped to [-1, 1]."""
    res = net.resolution
    abar = _alpha_bars(device)
    x = torch.randn(n, 1, res, res, generator=gen).to(device)
    times = torch.linspace(_DIFFUSION_T - 1, 0, _DDIM_STEPS).round().long().tolist()
    for i, t in enumerate(times):
        a_t = abar[t]
        x0 = net(x, torch.full((n,), t, device=device)).clamp(-1, 1)
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

