"""synthscope: fingerprints of generative models in synthetic lung-CT images."""

__version__ = "0.1.0"
