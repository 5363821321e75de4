"""IPython magics: train a character-level RNN on a cell's text and sample from it.

Load with ``%load_ext charrnn_magic`` (or ``c.InteractiveShellApp.extensions =
["charrnn_magic"]`` in ``ipython_config.py``). Then::

    %%charrnn_train --steps 2000
    The text to learn from, as many lines as you like ...

    %charrnn_sample -n 300 -t 0.8

The magics are ``%%charrnn_train`` / ``%charrnn_train``, ``%charrnn_sample``,
``%charrnn_panel``, ``%%charrnn_inspect`` / ``%charrnn_inspect``, ``%charrnn_save``,
``%charrnn_load``, ``%charrnn_list``, ``%charrnn_info`` and ``%charrnn_export``;
``%charrnn_train?`` (and so on) shows the full help of each. Each family lives in its own module
(``train_magics``, ``sample_magics``, ``inspect_magics``, ``file_magics``, ``export_magics``, on
``magic_base``); this one joins them.

Defaults are traitlets of :class:`CharRNNMagics`: ``%config CharRNNMagics`` lists them,
``%config CharRNNMagics.hidden_size = 256`` changes one for the session, and
``c.CharRNNMagics.hidden_size = 256`` in ``ipython_config.py`` for good.

Every mistake (no model yet, unknown name, empty cell, bad file, unknown character,
out-of-range number, unknown option) raises a plain :class:`~IPython.core.error.UsageError`
with a one-line message; nothing already trained or saved is lost by a mistake.
"""
from __future__ import annotations

from IPython.core.magic import magic_kinds, magics_class

from .export_magics import ExportMagics
from .file_magics import FileMagics
from .inspect_magics import InspectMagics
from .magic_base import is_model
from .sample_magics import SampleMagics
from .train_magics import TrainMagics

__all__ = ["CharRNNMagics", "is_model", "load_ipython_extension", "unload_ipython_extension"]


def joined(cls):
    """``magics_class`` for a class made of families: the magics of each of them (each family
    recorded its own when it was made)."""
    cls = magics_class(cls)
    cls.magics = {kind: {} for kind in magic_kinds}
    for family in reversed(cls.__mro__[1:]):
        table = vars(family).get("magics")
        if isinstance(table, dict):
            for kind in magic_kinds:
                cls.magics[kind].update(table.get(kind, {}))
    return cls


@joined
class CharRNNMagics(TrainMagics, SampleMagics, InspectMagics, FileMagics, ExportMagics):
    """Train character-level RNNs on text from cells, files or built-in corpora, and sample.

    One class, so that one ``%config CharRNNMagics`` holds every default and all the magics
    share the current model. The traits are the defaults of the magics' options. ``None``
    means: take it from the preset (``preset``), else chosen from the text by the engine (the
    rule in ``charrnn_magic/defaults_from_text.py``, the same for the Python API and ``python -m
    charrnn_magic``).
    """


# ==================================================================== extension entry points
def load_ipython_extension(ip):
    """Register the magics with ``ip`` (``%load_ext charrnn_magic`` calls this)."""
    unload_ipython_extension(ip)     # loading twice must not leave two instances behind
    ip.register_magics(CharRNNMagics(shell=ip))


def unload_ipython_extension(ip):
    """Remove the magics again: ``%unload_ext`` then ``%load_ext`` (or ``%reload_ext``) works.
    Every magics class of this package that ``load_ipython_extension`` registered goes."""
    manager = ip.magics_manager
    ours = [name for name, instance in manager.registry.items()
            if type(instance).__module__.startswith(__package__)]
    for class_name in ours:
        instance = manager.registry.pop(class_name)
        for kind, table in instance.magics.items():
            for magic_name, _func in table.items():
                # Only our own entries: another extension may have taken a name since.
                if getattr(manager.magics[kind].get(magic_name), "__self__", None) is instance:
                    del manager.magics[kind][magic_name]
        # Magics.__init__ added the instance to the shell's configurables (for %config).
        ip.configurables[:] = [c for c in ip.configurables if c is not instance]
