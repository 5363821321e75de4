"""Big texts and hostile input: what users paste, type and point the package at.

Each test names the item of the issue it guards. Memory bounds are asserted on the arrays a call
allocates (``tracemalloc`` peaks, which NumPy reports to), never on wall time. The property-based
tests (hypothesis) check that arbitrary input is either handled or refused with the one error
class the project promises: ``ValueError`` from the API, exactly ``UsageError`` from the magics.
"""
from __future__ import annotations

import os
import tempfile
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from charrnn_magic import CharRNN, sampling
from charrnn_magic.data import MAX_LINE, LongLinesCut, StreamBatches
from charrnn_magic.notebook.options import split_line
from charrnn_magic.text import normalize, read_text
from charrnn_magic.vocab import Vocab

NAMES = "anna\nbob\ncarla\ndavid\nemma\nfrank\ngrace\nhenry\nirene\njack\nkate\nliam #1\n" * 3
SMALL = "--hidden 16 --layers 1 --seed 1 --quiet"
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def usage_error(func, *args) -> str:
    with pytest.raises(UsageError) as info:
        func(*args)
    assert type(info.value) is UsageError
    return str(info.value)


def peak_bytes(func, *args, **kwargs):
    """(result, the most bytes traced at once while ``func`` ran)."""
    tracemalloc.start()
    try:
        result = func(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def names_model():
    model = CharRNN(cell="gru", hidden_size=16)
    model.fit(NAMES, steps=30, mode="lines", batch_size=8, seed=1)
    return model


@pytest.fixture(scope="module")
def stream_model():
    model = CharRNN(cell="gru", hidden_size=16)
    model.fit(NAMES.replace("\n", " ") * 4, steps=30, seed=1)
    return model


# ---- A. one normalisation for every way in ----------------------------------------------------
def test_normalize_makes_every_line_end_a_newline_and_drops_a_leading_bom():
    assert normalize("\ufeffa\r\nb\rc\n\rd") == "a\nb\nc\n\nd"
    assert normalize("a\ufeffb") == "a\ufeffb"          # only a leading mark is a BOM
    text = "plain\ntext\n" * 10
    assert normalize(text) is text                      # nothing to do: no copy


def test_fit_evaluate_and_prime_normalise_text_from_python():
    windows = "\ufeff" + NAMES.replace("\n", "\r\n")
    model = CharRNN(cell="rnn", hidden_size=8, layers=1)
    model.fit(windows, steps=3, mode="lines", batch_size=4, seed=1)
    assert "\r" not in model.vocab and "\ufeff" not in model.vocab
    assert all("\r" not in name for name in model.sample(20, count=10, seed=1))
    assert model.evaluate("anna\r\nbob\r") > 0          # '\r' was outside the vocabulary
    assert isinstance(model.sample(10, prime="anna\r\n", seed=1), str)
    old_mac = CharRNN(cell="rnn", hidden_size=8, layers=1)
    old_mac.fit(NAMES.replace("\n", "\r"), steps=2, mode="lines", batch_size=4, seed=1)
    assert old_mac.vocab == model.vocab                 # lone '\r' lines are lines too


def test_raw_text_keeps_the_text_as_given(ip, tmp_path):
    raw = CharRNN(cell="rnn", hidden_size=8, layers=1)
    raw.fit(NAMES.replace("\n", "\r\n"), steps=2, mode="lines", batch_size=4, seed=1, raw_text=True)
    assert "\r" in raw.vocab and raw.config()["raw_text"] is True
    path = tmp_path / "names.txt"
    path.write_bytes(NAMES.replace("\n", "\r\n").encode())
    ip.run_line_magic("charrnn_train", f"{SMALL} --steps 2 --mode lines --raw-text --file {path}")
    assert "\r" in ip.user_ns["charrnn"].vocab
    ip.run_line_magic("charrnn_train", f"{SMALL} --steps 2 --mode lines --file {path}")
    assert "\r" not in ip.user_ns["charrnn"].vocab


def test_the_reader_splits_old_mac_line_ends(tmp_path):
    path = tmp_path / "mac.txt"
    path.write_bytes(b"anna\rbob\r")
    assert read_text(path) == "anna\nbob\n"
    assert read_text(path, raw=True) == "anna\rbob\r"


def test_the_command_line_normalises_a_file(tmp_path, capsys):
    from charrnn_magic.__main__ import main

    path = tmp_path / "crlf.txt"
    path.write_bytes(b"\xef\xbb\xbf" + (NAMES * 10).replace("\n", "\r\n").encode())
    assert main(["--file", str(path), "--steps", "1", "--preset", "tiny"]) == 0
    assert "\r" not in capsys.readouterr().out
    assert main(["--file", str(tmp_path / "nope.txt")]) == 2
    assert "no such file" in capsys.readouterr().err


# ---- B. lone surrogates -----------------------------------------------------------------------
def test_a_lone_surrogate_is_refused_with_its_position(names_model, ip):
    with pytest.raises(ValueError, match=r"lone surrogate U\+D800 at position 2\b"):
        Vocab.from_text("ab\ud800cd")
    with pytest.raises(ValueError, match="position 2"):
        CharRNN(cell="rnn", hidden_size=8, layers=1).fit("ab\ud800cd" * 20, steps=1)
    with pytest.raises(ValueError, match="prime has a lone surrogate"):
        names_model.sample(5, prime="an\udc00")
    with pytest.raises(ValueError, match="position 1"):
        names_model.evaluate("a\ud83dnna\n")
    ip.user_ns["names"] = names_model
    message = usage_error(ip.run_line_magic, "charrnn_sample", "names -s \ud83d")
    assert "--seed-char has a lone surrogate U+D83D at position 0" in message
    message = usage_error(ip.run_cell_magic, "charrnn_train", SMALL, "ab\ud800cd" * 20)
    assert message.startswith("the cell has a lone surrogate U+D800 at position 2 ")


@FEW
@given(st.text(min_size=1))
def test_vocabulary_round_trips_any_unicode(text):
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    assert ids.shape == (len(text),) and ids.dtype == vocab.id_dtype
    assert vocab.decode(ids) == text
    assert vocab.chars == sorted(set(text))


@FEW
@given(st.text(), st.integers(0xD800, 0xDFFF), st.text())
def test_surrogates_anywhere_are_refused_cleanly(before, surrogate, after):
    text = before + chr(surrogate) + after
    with pytest.raises(ValueError, match=f"U\\+{surrogate:04X} at position {len(before):,}"):
        Vocab.from_text(text)
    with pytest.raises(ValueError, match="surrogate"):
        Vocab.from_text("ab").encode(text)


# ---- C. magic lines and files -----------------------------------------------------------------
def test_split_line_reads_escapes_quotes_and_comments():
    value = {"-p", "--prime", "--file", "-n"}
    assert split_line("-p #x", takes_value=value) == ["-p", "#x"]
    assert split_line("-n 30   # a note", takes_value=value) == ["-n", "30"]
    assert split_line("# all a comment", takes_value=value) == []
    assert split_line(r"--file my\ file.txt") == ["--file", "my file.txt"]
    assert split_line(r'--file "a \"q\".txt"') == ["--file", 'a "q".txt']
    assert split_line(r"--file \"q\".txt") == ["--file", '"q".txt']
    assert split_line(r"--file C:\data\names.txt") == ["--file", r"C:\data\names.txt"]
    assert split_line(r'--prime "a\nb\\n"') == ["--prime", r"a\nb\\n"]
    assert split_line(r"--file 'C:\dir\'") == ["--file", "C:\\dir\\"]
    assert split_line(r"-p \#x --seed 2 # note") == ["-p", "#x", "--seed", "2"]


def test_hash_as_an_option_value_is_the_character(ip, tmp_path):
    ip.run_cell_magic("charrnn_train", f"{SMALL} --steps 5 --mode lines", NAMES)
    text = ip.run_line_magic("charrnn_sample", "-p #1 -n 5 -r 1 -q")
    assert isinstance(text, str)
    assert isinstance(ip.run_line_magic("charrnn_sample", r"-p anna\r\n -n 5 -q"), str)
    message = usage_error(ip.run_line_magic, "charrnn_sample", "--prime #Q")
    assert "'Q'" in message and "never saw" in message


def test_paths_with_escaped_spaces_and_quotes_train(ip, tmp_path):
    for name, written in (("my file.txt", r"my\ file.txt"), ('a "q".txt', r'"a \"q\".txt"')):
        (tmp_path / name).write_text(NAMES)
        ip.run_line_magic("charrnn_train", f"{SMALL} --steps 2 --file {tmp_path}/{written}")
        assert ip.user_ns["charrnn"].step == 2


def test_file_mistakes_say_what_is_wrong(ip, tmp_path):
    def line(options):
        return usage_error(ip.run_line_magic, "charrnn_train", f"{SMALL} --steps 2 {options}")
    assert line("--file ''") == "--file '' is an empty path: give the path of a text file"
    odd = tmp_path / "odd.txt"
    odd.write_bytes(b"\xff\xfe\xfd hello")
    assert line(f"--file {odd}") == (
        f"--file {odd} is not UTF-8 text (byte 0xff at offset 0): convert it to UTF-8 first, "
        "e.g. iconv -f latin1 -t utf-8")
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("hello there".encode("utf-16-le"))        # no byte-order mark
    assert line(f"--file {utf16}").endswith("is UTF-16 text: save it as UTF-8 and try again")
    bom_only = tmp_path / "bom.txt"
    bom_only.write_bytes(b"\xef\xbb\xbf\r\n")
    assert line(f"--file {bom_only}") == f"--file {bom_only} is empty: give a file with some text"
    names = tmp_path / "names.txt"
    names.write_text(NAMES)
    message = line(f"--file {names} --file {tmp_path}/./names.txt")
    assert message.startswith(f"--file {tmp_path}/./names.txt is given twice")


@FEW
@given(st.binary(max_size=64))
def test_the_reader_reads_or_refuses_any_bytes(data):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "any.txt")
        with open(path, "wb") as f:
            f.write(data)
        try:
            text = read_text(path)
        except ValueError as exc:
            assert str(exc).startswith(path) and "\n" not in str(exc)
        else:
            assert text.strip() and "\r" not in text and not text.startswith("\ufeff")


WORDS = st.one_of(
    st.sampled_from(["-n", "-t", "-s", "-p", "--prime", "-k", "--top-p", "-c", "-r", "--stop",
                     "-q", "--seed-char", "--temperature", "#", "#x", '"', "'", "\\", "\\ ",
                     "''", '""', "names", "nobody", "-", "--", "=", "--prime=#", "\\n", "0",
                     "1e-320",
                     "-1", "nan", "inf", "3", "0.5", "space", "\ud800", "\ufeff", "\r"]),
    st.integers(-3, 40).map(str),
    st.text(max_size=4),
)


def test_random_magic_lines_give_only_usage_errors(ip, names_model, tmp_path):
    ip.user_ns["names"] = names_model

    @settings(max_examples=150, deadline=None)
    @given(st.lists(WORDS, max_size=8).map(" ".join))
    @example("names -s \ud800")                     # a raw UnicodeEncodeError once
    @example("names -n 3 -p a\ud800 -t 1e-320")
    @example("\ud800")                              # a path: os.stat cannot encode it
    @example("a\x00b")
    def check(line):
        for magic in ("charrnn_sample", "charrnn_info", "charrnn_load"):
            try:
                ip.run_line_magic(magic, line)
            except UsageError as exc:
                assert type(exc) is UsageError
        try:
            ip.run_line_magic("charrnn_train", f"{SMALL} --steps 1 --file {line}")
        except UsageError as exc:
            assert type(exc) is UsageError

    cwd = os.getcwd()
    os.chdir(tmp_path)                     # whatever a random --file names is looked up here
    try:
        check()
    finally:
        os.chdir(cwd)


# ---- D. tiny temperatures ---------------------------------------------------------------------
def test_a_temperature_below_the_safe_one_is_greedy(stream_model):
    greedy = stream_model.sample(60, temperature=0, seed=3)
    assert set(greedy) != {"\n"}
    for t in (1e-320, 1e-30, sampling.MIN_TEMPERATURE / 2):
        assert stream_model.sample(60, temperature=t, seed=3) == greedy


# ---- E. priming: once, in chunks --------------------------------------------------------------
@pytest.mark.slow
def test_a_long_prime_for_many_samples_keeps_only_the_state(stream_model):
    prime = (NAMES.replace("\n", " ") * 400)[:20_000]
    texts, peak = peak_bytes(stream_model.sample, 10, prime=prime, count=50, seed=1)
    assert len(texts) == 50 and all(len(t) == 10 for t in texts)
    # The whole prime's activations for 50 samples: 20,000 x 50 x 48 float32, 190 MB per array.
    assert peak < 8 * 2**20, f"{peak / 2**20:.1f} MiB"


def test_chunked_priming_gives_the_state_of_one_pass(stream_model, monkeypatch):
    net = stream_model._net
    layers = [net.layer_params(net.params, l) for l in range(len(net.cells))]
    context = stream_model.vocab.encode((NAMES.replace("\n", " ") * 5)[:700]).astype(np.int64)
    chunked = sampling._prime(net, layers, context, 3)
    monkeypatch.setattr(sampling, "_PRIME_CHUNK", 10_000)
    whole = sampling._prime(net, layers, context, 3)
    for a, b in zip(chunked, whole, strict=True):
        for x, y in zip(a, b, strict=True):
            assert x.shape == (3, net.hidden_size)
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


# ---- F. one long line in lines mode -----------------------------------------------------------
def long_line_text():
    return "\n".join(["anna", "bob", "carla", "dave"] * 5 + ["ab" * 100_000]) + "\n"


def test_one_long_line_trains_in_bounded_memory():
    model = CharRNN(cell="rnn", hidden_size=8, layers=1)
    with pytest.warns(LongLinesCut, match=r"1 line\(s\) longer than 1,000 characters \(the "
                                          r"longest 200,000\)"):
        _, peak = peak_bytes(model.fit, long_line_text(), steps=1, mode="lines", batch_size=21,
                             val_fraction=0, seed=1)
    assert model.step == 1
    # The old padded batch alone was 200,001 x 21 ids; with the activations, hundreds of MB.
    assert peak < 24 * 2**20, f"{peak / 2**20:.1f} MiB"


def test_a_cut_line_is_not_taught_to_end_where_it_was_cut():
    from charrnn_magic.data import LineBatches

    ids = np.array([1, 1, 0, 1, 1, 1, 1, 1, 0], np.uint8)             # lines of 2 and 5
    with pytest.warns(LongLinesCut, match="1 line"):
        batches = LineBatches(ids, np.array([0, 3]), np.array([2, 5]), 2, 0, max_line=3)
    X, _, mask = batches.batch(0, np.array([0, 1]))
    assert X.shape == (4, 2) and batches.cut == 1
    assert mask[:, 0].tolist() == [1, 1, 1, 0] and mask[:, 1].tolist() == [1, 1, 1, 0]


@pytest.mark.slow
def test_evaluating_a_long_line_is_bounded_and_exact(names_model):
    from charrnn_magic.data import LineBatches, line_spans

    text = "anna\nbob\n" + "anna bob " * 3_000 + "\nkate\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # evaluation reads whole lines
        exact, peak = peak_bytes(names_model.evaluate, text)
    assert peak < 24 * 2**20, f"{peak / 2**20:.1f} MiB"
    # The same loss as all the lines padded into one batch and run in one pass.
    net, newline = names_model._net, names_model.vocab.chars.index("\n")
    ids = names_model.vocab.encode(text)
    starts, lengths = line_spans(ids, newline)
    X, Y, mask = LineBatches.pad(ids, starts, lengths, newline)
    loss, _ = net.loss(X, Y, mask, net.initial_state(X.shape[1]), grads=False)
    np.testing.assert_allclose(exact, loss / mask.sum(), rtol=1e-5)


def test_the_magic_says_in_one_line_that_it_cut_lines(ip, tmp_path, capsys):
    path = tmp_path / "names.txt"
    path.write_text(long_line_text())
    ip.run_line_magic("charrnn_train", f"--hidden 8 --layers 1 --seed 1 --steps 1 --mode lines "
                                       f"--batch-size 4 --file {path}")
    out = capsys.readouterr().out
    note = [line for line in out.splitlines() if "longer than" in line]
    assert note == [(f"note: lines mode: 1 line(s) longer than {MAX_LINE:,} characters (the "
                     f"longest 200,000) are trained on their first {MAX_LINE:,} only; use stream "
                     "mode for long text")]


# ---- G. ids in the smallest type, no copies ---------------------------------------------------
def test_ids_use_the_smallest_integer_type():
    assert Vocab.from_text("abc").encode("cab").dtype == np.uint8
    wide = "".join(map(chr, range(0x4E00, 0x4E00 + 300)))
    assert Vocab.from_text(wide).encode(wide).dtype == np.uint16
    huge = "".join(chr(c) for c in range(0x20, 0x20 + 70_000) if not 0xD800 <= c <= 0xDFFF)
    vocab = Vocab.from_text(huge)
    assert vocab.encode(huge).dtype == np.int32 and vocab.decode(vocab.encode(huge)) == huge


def test_stream_batches_view_the_ids_and_give_int32_windows():
    ids = np.arange(1000, dtype=np.int64).astype(np.uint8)
    batches = StreamBatches(ids, 4, 25)
    assert np.shares_memory(batches.inputs, ids)
    X, _, _ = batches.batch(0)
    assert X.dtype == np.int32 and X.flags.c_contiguous and X.shape == (25, 4)


@pytest.mark.slow
def test_evaluating_a_big_stream_text_gathers_one_window_at_a_time(stream_model):
    text = (NAMES.replace("\n", " ") * 12_000)[:4_000_000]
    _, peak = peak_bytes(stream_model.evaluate, text)
    # ids 4 MB (uint8) and a window's loss (~12 MB); the old whole-text int32 inputs and
    # targets added 32 MB.
    assert peak < 20 * 2**20, f"{peak / 2**20:.1f} MiB"


def test_stream_validation_reads_a_bounded_part_of_a_big_text():
    from charrnn_magic.evaluation import VALIDATION_CHARS
    from charrnn_magic.session import prepare_fit

    model = CharRNN(cell="rnn", hidden_size=4, layers=1)
    text = (NAMES.replace("\n", " ") * 4_000)[:1_500_000]
    session, _ = prepare_fit(model, text, 1, None, None, None, eval_every=None, seed=1, mode=None,
                             seq_length=None, batch_size=None, optimizer=None, lr=None,
                             clip=None, clip_mode=None, val_fraction=0.5, lower=None,
                             lr_schedule=None, raw_text=None, full_validation=False,
                             holdout=None, weight_decay=None)
    assert len(session.val_ids) == len(text) // 2 > VALIDATION_CHARS   # all held out ...
    assert session.validation.chars <= VALIDATION_CHARS   # ... and a bounded sample validates


def test_ascii_chunks_still_name_unknown_characters():
    vocab = Vocab.from_text("abc\n")
    assert vocab.encode("cab\n").tolist() == [3, 1, 2, 0]
    with pytest.raises(ValueError, match=r"1 character\(s\) outside the model's vocabulary: 'd'"):
        vocab.encode("abd")


def test_lines_validation_is_cut_and_bounded_like_training():
    from charrnn_magic.evaluation import VALIDATION_CHARS
    from charrnn_magic.session import prepare_fit

    model = CharRNN(cell="rnn", hidden_size=4, layers=1)
    lines = ["ab" * 100_000] + ["anna", "bob"] * 40_000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LongLinesCut)
        session, _ = prepare_fit(model, "\n".join(lines) + "\n", 1, None, None, None,
                                 eval_every=None, seed=1, mode="lines", seq_length=None,
                                 batch_size=None, optimizer=None, lr=None, clip=None,
                                 clip_mode=None, val_fraction=0.5, lower=None, lr_schedule=None,
                                 raw_text=None, full_validation=False, holdout=None,
                                 weight_decay=None)
    starts, lengths, whole = session.val_spans
    assert lengths.max() <= MAX_LINE
    assert whole.sum() == len(whole) - 1               # with seed 1, the long line is held out
    assert lengths[~whole].tolist() == [MAX_LINE]
    sample = session.validation                        # what each validation reads: bounded
    assert sample.chars <= VALIDATION_CHARS < lengths.sum()
    assert sample.spans[1].max() <= MAX_LINE and len(sample.spans) == 3


@FEW
@given(st.text(max_size=30))
def test_any_line_splits_or_is_refused_with_a_usage_error(line):
    try:
        words = split_line(line, takes_value={"-p"})
    except UsageError as exc:
        assert type(exc) is UsageError and "quote is not closed" in str(exc)
    else:
        assert all(isinstance(w, str) for w in words)


def test_any_prime_samples_or_is_refused_with_a_usage_error(ip, names_model):
    ip.user_ns["names"] = names_model

    @settings(max_examples=100, deadline=None)
    @given(st.text(max_size=12))
    def check(prime):
        try:
            ip.run_line_magic("charrnn_sample", f"names -n 3 -q -p {prime!r}")
        except UsageError as exc:
            assert type(exc) is UsageError

    check()
