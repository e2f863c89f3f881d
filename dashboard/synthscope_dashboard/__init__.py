"""The synthscope Voila dashboard (the only package that imports widgets)."""
