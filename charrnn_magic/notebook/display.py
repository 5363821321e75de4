"""How a sample returned by ``%charrnn_sample`` shows up in a cell: printed once, not echoed."""
from __future__ import annotations

__all__ = ["Sample", "SampleList", "mark_printed"]


class Sample(str):
    """A sample's text: a plain ``str``, which IPython does not echo a second time.

    ``%charrnn_sample`` prints the sample and returns it; as the last line of a cell the
    returned value would be shown again as ``Out[n]``. This one skips that echo once, in the
    cell that printed it; everywhere else it displays like any str.
    """

    def _ipython_display_(self):
        _display_unless_just_printed(self, str(self))


class SampleList(list):
    """The samples of ``%charrnn_sample --count N``: a plain ``list`` of ``str`` (see Sample)."""

    def _ipython_display_(self):
        _display_unless_just_printed(self, list(self))


def mark_printed(value, shell):
    value._printed_in = getattr(shell, "execution_count", None)
    return value


def _display_unless_just_printed(value, plain):
    from IPython import get_ipython
    from IPython.display import display

    shell = get_ipython()
    printed_in = value.__dict__.pop("_printed_in", "never")
    if shell is not None and printed_in == shell.execution_count:
        return
    display(plain)
