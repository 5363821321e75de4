"""The notebook front end: the IPython magics, the live sampler panel, background training with
its dashboard, widget progress and the SVG loss curve.

It is built on the engine (the modules at the top of ``charrnn_magic``), which never imports it
or IPython. The panel and background training are importable from here::

    from charrnn_magic.notebook import sampler_panel, train_in_background

Importing this package imports ipywidgets; the magics (and IPython) load with
``%load_ext charrnn_magic``.
"""
from .background import BackgroundTraining, train_in_background
from .panel import SamplerPanel, sampler_panel

__all__ = ["BackgroundTraining", "SamplerPanel", "sampler_panel", "train_in_background"]
