"""The synthscope Voila dashboard (the only package that imports widgets).

`build(path)` returns the app widget; `dashboard/app.ipynb` displays it and `synthscope dashboard PATH`
serves that notebook with Voila.
"""

from __future__ import annotations


def build(path=None, **options):
    """The dashboard widget for `path` (default: $SYNTHSCOPE_DASHBOARD_PATH); see `app.build`."""
    from synthscope_dashboard.app import build as build_app

    return build_app(path, **options)


__all__ = ["build"]
