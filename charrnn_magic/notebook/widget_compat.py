"""Everything that differs between ipywidgets 7 (7.7 and 7.8: Colab, older JupyterHubs) and 8.

The panel, the inspector, the progress display and the training dashboard use only core
widgets, and every one of them, with every option they set, exists in both majors. Two things
differ, and the rest of the package goes through this module for both:

* **Display.** An ipywidgets 8 widget hands IPython its display data (``_repr_mimebundle_``);
  an ipywidgets 7 widget displays itself (``_ipython_display_``) and has no such method. The
  objects that wrap a widget tree (the panel, the inspector, the dashboard) give IPython the
  data of their top widget with :func:`widget_bundle`, which works with both.
* **Tooltips.** In 8 every widget has a ``tooltip``; in 7 only buttons do, and the other
  widgets show theirs over the description as ``description_tooltip``, a name 8 deprecates.
  :func:`tooltip` gives the keyword argument the widget class takes.

Each difference is found by asking ipywidgets what it has, not by its version number.
"""
from __future__ import annotations

import ipywidgets as W

__all__ = ["VIEW_MIMETYPE", "tooltip", "widget_bundle"]

#: The display data key under which Jupyter front ends look for a widget to draw.
VIEW_MIMETYPE = "application/vnd.jupyter.widget-view+json"


def widget_bundle(widget: W.Widget, **kwargs) -> dict:
    """The display data of ``widget`` (a ``_repr_mimebundle_`` result), in ipywidgets 7 and 8."""
    own = getattr(widget, "_repr_mimebundle_", None)
    if own is not None:                                    # ipywidgets 8
        return own(**kwargs)
    # ipywidgets 7: the same two entries its _ipython_display_ would show.
    return {"text/plain": repr(widget), VIEW_MIMETYPE: widget.get_view_spec()}


def tooltip(widget_class: type, text: str) -> dict:
    """The keyword argument that gives a widget of ``widget_class`` the tooltip ``text``."""
    name = "tooltip" if "tooltip" in widget_class.class_trait_names() else "description_tooltip"
    return {name: text}
