"""Two questions every notebook piece asks: are we in a kernel, and how to free a widget tree."""
from __future__ import annotations

__all__ = ["in_kernel", "close_tree"]


def in_kernel() -> bool:
    """True inside a Jupyter kernel (ipykernel's shell, or a subclass such as Colab's): there
    widgets render, and their messages arrive on the kernel's main thread."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    # By class name, so that this module never has to import ipykernel.
    return shell is not None and any(
        cls.__name__ == "ZMQInteractiveShell" for cls in type(shell).__mro__)


def close_tree(widget) -> None:
    """Close a widget and everything inside it (``Widget.close_all`` would close *every* widget)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
        if part is not None:                           # layouts and styles are widgets too
            part.close()
    widget.close()
