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

Modules: models (the zoo), training, splits (configuration and group-aware splits), writer
(the 2024-layout benchmark), sources (real images from disk).
"""

from synthscope.lab.models import (  # noqa: F401
    IMAGE_SIZE,
    MODEL_NAMES,
    ARCHITECTURES,
    GAN_LR,
    GAN_BETAS,
    LabError,
    resolve_device,
    DCGANGenerator,
    UpconvGenerator,
    Discriminator,
    VAE,
    TinyUNet,
)
from synthscope.lab.training import (  # noqa: F401
    TrainingSummary,
    TrainedGenerator,
    train_generator,
)
from synthscope.lab.splits import (  # noqa: F401
    DEFAULT_STEPS,
    LabConfig,
    LabResult,
    RealSplits,
    split_real_pool,
)
from synthscope.lab.writer import (  # noqa: F401
    build_benchmark,
)
from synthscope.lab.sources import (  # noqa: F401
    load_real_folder,
)

__all__ = [
    "IMAGE_SIZE",
    "MODEL_NAMES",
    "ARCHITECTURES",
    "GAN_LR",
    "GAN_BETAS",
    "LabError",
    "resolve_device",
    "DCGANGenerator",
    "UpconvGenerator",
    "Discriminator",
    "VAE",
    "TinyUNet",
    "TrainingSummary",
    "TrainedGenerator",
    "train_generator",
    "DEFAULT_STEPS",
    "LabConfig",
    "LabResult",
    "RealSplits",
    "split_real_pool",
    "build_benchmark",
    "load_real_folder",
]
