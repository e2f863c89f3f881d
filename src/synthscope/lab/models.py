"""The lab zoo: small 1-channel generators (DCGAN, upconv GAN, VAE, tiny DDPM UNet) and the tensor conversions they share."""

from __future__ import annotations

import math
from typing import Sequence
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from synthscope.runtime import DeviceUnavailable
from synthscope.runtime import resolve_device as runtime_device


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


class LabError(ValueError):
    """Bad lab input (too few images, unknown model, unreadable folder)."""


def resolve_device(device: str = "auto") -> torch.device:
    """The runtime's device rule (synthscope.runtime), as a torch device; a bad one is a LabError."""
    try:
        return torch.device(runtime_device(device))
    except DeviceUnavailable as error:
        raise LabError(str(error)) from None


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

