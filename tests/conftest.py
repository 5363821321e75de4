"""Shared fixtures: a real IPython shell with the extension loaded.

``ip`` is ``InteractiveShell.instance()`` (one per test session, as IPython allows one), created
with the history database off and with its profile directory in a temporary folder, so the
tests never touch ``~/.ipython``. Every test gets the extension freshly loaded and finds the
user namespace and the ``CharRNNMagics`` configuration as they were before it.
"""
from __future__ import annotations

import pytest
from traitlets.config import Config

EXTENSION = "charrnn_magic"


@pytest.fixture(scope="session")
def _shell(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipythondir")))
    from IPython.core.interactiveshell import InteractiveShell

    config = Config()
    config.HistoryManager.enabled = False      # no sqlite history file
    shell = InteractiveShell.instance(config=config)
    yield shell
    mp.undo()


@pytest.fixture
def ip(_shell):
    """The shell, with ``%load_ext charrnn_magic`` done; namespace and config restored after."""
    manager = _shell.extension_manager
    manager.load_extension(EXTENSION)
    before = dict(_shell.user_ns)
    yield _shell
    for key in list(_shell.user_ns):
        if key not in before:
            del _shell.user_ns[key]
    _shell.user_ns.update(before)
    if EXTENSION in manager.loaded:
        manager.unload_extension(EXTENSION)
    # %config CharRNNMagics.x = ... is stored in the shell's config: forget it.
    _shell.config.pop("CharRNNMagics", None)
