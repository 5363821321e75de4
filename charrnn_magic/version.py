"""The package's version, declared once: ``pyproject.toml`` reads it, and so do the web page's
model card and ``charrnn_magic.__version__``."""
__version__ = "0.1.0"
