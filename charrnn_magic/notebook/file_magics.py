"""The magics of files and of the models at hand: ``%charrnn_save``, ``%charrnn_load``,
``%charrnn_list`` and ``%charrnn_info``."""
from __future__ import annotations

import os

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, kwds, magic_arguments

from ..charrnn import CharRNN
from ..progress import stop_words
from ..vocab import describe_chars
from .magic_base import MagicsBase, is_model, name_argument


@magics_class
class FileMagics(MagicsBase):
    """``%charrnn_save``, ``%charrnn_load``, ``%charrnn_list``, ``%charrnn_info``."""

    # ================================================================ save / load
    @magic_arguments()
    @kwds(usage="charrnn_save [NAME] PATH [--snapshots]")
    @argument("first", metavar="[NAME]", help="Model to save (default: the current one).")
    @argument("path", nargs="?", metavar="PATH", help="File to write (.safetensors).")
    @argument("--snapshots", action="store_true",
              help="Also save the training timeline's weight snapshots.")
    @line_magic
    def charrnn_save(self, line):
        """
        Save a model to a file: weights, vocabulary, settings, optimizer state and history,
        enough to sample or to resume training exactly. The file is written next to its
        final place and then renamed, so a failed save never spoils an existing file.
        The format (safetensors) cannot run code when loaded. --snapshots also saves the weight
        snapshots of the training timeline (``model.timeline``; each as big as the weights),
        so that %charrnn_load brings them back.

        Examples::

            %charrnn_save poems.safetensors          # the current model
            %charrnn_save poems.safetensors --snapshots
            %charrnn_save names names.safetensors    # the model bound to `names`
            %charrnn_save "my models/poems.safetensors"
        """
        args = self._parse(self.charrnn_save, line, "charrnn_save")
        name, path = (None, args.first) if args.path is None else (args.first, args.path)
        name, model = self._model(name)
        if not model.is_trained:
            raise UsageError(f"{name!r} is not trained yet: there is nothing to save")
        self._save(name, model, path, quiet=False, snapshots=args.snapshots)

    @magic_arguments()
    @argument("path", metavar="PATH", help="A file written by %%charrnn_save or model.save().")
    @argument("name", nargs="?", metavar="NAME", help="Variable to bind it to (default: charrnn).")
    @line_magic
    def charrnn_load(self, line):
        """
        Load a saved model and bind it to NAME (default ``charrnn``); it becomes the current
        model. The file is checked before anything in your namespace changes.

        Examples::

            %charrnn_load poems.safetensors
            %charrnn_load names.safetensors names
            %charrnn_train names --file more_names.txt --resume   # carries on exactly
        """
        args = self._parse(self.charrnn_load, line, "charrnn_load")
        name = self._check_name(args.name or self.default_name)
        old = self.shell.user_ns.get(name)
        if old is not None and not is_model(old):
            raise UsageError(f"{name!r} already holds a {type(old).__name__} in your namespace: "
                             f"load into another NAME (%charrnn_load {args.path} NAME)")
        if old is not None and old.is_training:
            raise UsageError(f"{name!r} is training in the background: stop it first, or load "
                             "into another NAME")
        path = os.path.expanduser(args.path)
        try:
            model = CharRNN.load(path)
        except (ValueError, OSError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"could not load {args.path!r}: {detail}") from None
        self.shell.user_ns[name] = model
        self._current = name
        print(f"loaded {name} = {model.summary()} from {path}")

    # ================================================================ list / info
    @magic_arguments()
    @line_magic
    def charrnn_list(self, line):
        """
        List the models in your namespace: name, cell, size, vocabulary, steps trained and the
        latest losses. ``*`` marks the current model (the one %charrnn_sample uses by default).
        """
        self._parse(self.charrnn_list, line, "charrnn_list")
        models = self._models()
        if not models:
            print("no models yet: train one with %%charrnn_train, or %charrnn_load PATH")
            return
        current = self._current_name()
        rows = [("", "name", "cell", "size", "vocab", "steps", "loss", "val")]
        for key, m in models:
            h = m.history
            rows.append(("*" if key == current else "", key, m.cell,
                         f"{m.layers}x{m.hidden_size}",
                         str(len(m.vocab)) if m.vocab is not None else "-", f"{m.step:,}",
                         f"{h.last_loss:.3f}" if h.last_loss is not None else "-",
                         (f"{h.last_val_loss:.3f}" if h.last_val_loss is not None else "-")
                         + ("  (training)" if m.is_training else "")))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print(" ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())

    @magic_arguments()
    @name_argument("Model (default: the current one).")
    @line_magic
    def charrnn_info(self, line):
        """
        Describe a model: its summary, parameters, vocabulary, every setting, and where it
        trains (one worker, or two: this process and a child process or a second thread).

        Examples::

            %charrnn_info
            %charrnn_info names
        """
        args = self._parse(self.charrnn_info, line, "charrnn_info")
        name, model = self._model(args.name)
        print(f"{name} = {model.summary()}")
        print(f"  parameters     {model.n_params:,}")
        if model.vocab is not None:
            print(f"  vocabulary     {len(model.vocab)}: "
                  f"{describe_chars(model.vocab.chars, limit=80)}")
        for key, value in model.config().items():
            print(f"  {key:<14} {value}")
        if model.vocab is not None:
            print(f"  {'training on':<14} {model.where_training_runs()}")
        h = model.history
        if h.step:
            print(f"  last run       {stop_words(h.stop_reason)}")
            if h.stop_detail:
                print(f"                 {h.stop_detail}")
