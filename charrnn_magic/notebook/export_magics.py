"""The magic of sharing: ``%charrnn_export``, a model as one self-contained web page
(``charrnn_magic.web.export``)."""
from __future__ import annotations

import os

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, kwds, magic_arguments

from .magic_base import MagicsBase, is_model


@magics_class
class ExportMagics(MagicsBase):
    """``%charrnn_export``."""

    @magic_arguments()
    @kwds(usage="charrnn_export [NAME] PATH.html [--float32] [--probe TEXT] [--title TITLE]\n"
                "  charrnn_export [NAME] --inline")
    @argument("first", nargs="?", metavar="[NAME]", help="Model (default: the current one).")
    @argument("path", nargs="?", metavar="PATH", help="The HTML file to write.")
    @argument("--float32", action="store_true",
              help="Exact float32 weights (twice the size) instead of float16.")
    @argument("--probe", metavar="TEXT",
              help="The inside view's text (default: a part of the training text).")
    @argument("--title", metavar="TITLE", help="The page's title.")
    @argument("--inline", action="store_true",
              help="Show the page live in the output (with or without a PATH).")
    @line_magic
    def charrnn_export(self, line):
        """
        Export a model as one self-contained web page: it samples (with steer mode) and colours
        text by the model's units in any browser, with no Python and no network. The file holds
        the weights (float16, or --float32 for exact probabilities), the vocabulary, a model
        card, and the page's JavaScript. Prints the file's size and path. --inline shows the
        page in the notebook's output too, where it keeps working in the saved notebook, in
        nbconvert's HTML and in nbviewer.

        Examples::

            %charrnn_export poems.html
            %charrnn_export poems poems.html --float32 --title "My poems"
            %charrnn_export poems --inline
        """
        args = self._parse(self.charrnn_export, line, "charrnn_export")
        first, path = args.first, args.path
        if path is None and first is not None:
            looks_like_path = first.lower().endswith((".html", ".htm")) or os.sep in first
            is_a_model = is_model(self.shell.user_ns.get(first))
            if is_a_model and not looks_like_path and not args.inline:
                raise UsageError(f"%charrnn_export: give the PATH of the .html file to write "
                                 f"(e.g. %charrnn_export {first} {first}.html), or --inline")
            if looks_like_path or not is_a_model:
                first, path = None, first
        if path is None and not args.inline:
            raise UsageError("%charrnn_export: give the PATH of the .html file to write, or "
                             "--inline to show the page here")
        name, model = self._model(first, trained=True)
        from ..web.export import export_html, page

        options = {"float32": args.float32, "probe": args.probe, "title": args.title,
                   "name": name}
        try:
            if path is not None:
                written = export_html(model, path, **options)
                size = written.stat().st_size
                print(f"exported {name} to {written.resolve()} ({size / 1e3:,.0f} kB)")
            return page(model, **options) if args.inline else None
        except (ValueError, OSError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"could not export {name!r}: {detail}") from None

