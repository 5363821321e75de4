"""Hostile sizes (issue 23): whatever size is asked for, one clear line, never a MemoryError, a
hang or a killed process.

Every row of the issue's table runs in a child process with an address-space limit
(``resource.setrlimit(RLIMIT_AS)``), so a regression ends in a MemoryError there, not in a machine
out of memory; the magics run in a real IPython ``InteractiveShell``. The child prints what the
call ended in as one JSON line, which the test reads. The size estimate of ``budget`` is checked
against the peak ``tracemalloc`` measures for a few real fits.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc

import pytest

from charrnn_magic import CharRNN, budget
from charrnn_magic.corpora import load_corpus

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT = 3 << 30           # the children's address-space limit

_PRELUDE = """
import json, os, resource, sys
LIMIT = {limit}
resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

def report(fn, *args, **kwargs):
    try:
        value = fn(*args, **kwargs)
    except BaseException as exc:             # what reached the user, whatever it is
        print(json.dumps({{"error": type(exc).__name__, "module": type(exc).__module__,
                          "message": str(exc)}}))
    else:
        print(json.dumps({{"error": None, "length": len(value) if value is not None else None}}))

def vm_size():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))

def shell():
    from IPython.core.interactiveshell import InteractiveShell
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "charrnn_magic")
    return sh
"""


def run_child(body: str, timeout: float = 120, limit: int = LIMIT) -> list[dict]:
    """The JSON lines a child with ``body`` (after the prelude) printed; it must end by itself
    within ``timeout`` seconds with exit status 0."""
    code = _PRELUDE.format(limit=limit) + textwrap.dedent(body)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MemoryError" not in done.stderr, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def one_line_error(result: dict, kind: str = "UsageError") -> str:
    """The message of the one-line error ``result`` reports, checked to be exactly ``kind``."""
    assert result["error"] == kind, result
    if kind == "UsageError":
        assert result["module"] == "IPython.core.error", result
    assert "\n" not in result["message"] and ": " in result["message"], result
    return result["message"]


# ---- the table of the issue, row by row ---------------------------------------------------------
def test_train_on_devices_a_fifo_a_folder_and_a_30_gb_file_is_refused_by_name(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)                                    # its writer side is never opened
    big = tmp_path / "dump.txt"
    with open(big, "wb"):
        pass
    os.truncate(big, 30 << 30)                         # sparse: takes no disk
    lines = ["--file /dev/zero", "--file /dev/urandom", f"--file {fifo}", f"--file {big}",
             f"--file {tmp_path}"]
    results = run_child(f"""
        sh = shell()
        for line in {lines!r}:
            report(sh.run_line_magic, "charrnn_train", "m " + line + " --quiet")
        """, timeout=60)
    zero, urandom, pipe, dump, folder = map(one_line_error, results)
    assert "/dev/zero is a character device" in zero
    assert "/dev/urandom is a character device" in urandom
    assert "is a FIFO (named pipe)" in pipe
    assert "is 30.0 GiB" in dump and "give a smaller file" in dump and "head -c" in dump
    assert "is a folder" in folder


def test_a_huge_or_deep_model_is_refused_with_its_arithmetic():
    results = run_child("""
        sh = shell()
        report(sh.run_line_magic, "charrnn_train",
               "m --corpus verse --cell gru --layers 1 --hidden 100000 --quiet")
        report(sh.run_line_magic, "charrnn_train",
               "m --corpus verse --layers 200 --hidden 1024 --quiet")
        from charrnn_magic import CharRNN
        report(CharRNN(cell="lstm", hidden_size=50000).fit, "some text to learn " * 50, steps=1)
        """)
    wide, deep, api = results
    wide = one_line_error(wide)
    assert "a 1 x 100,000 GRU has 30.0 billion weights: 112 GiB as float32" in wide
    assert "this process may map" in wide and "choose a smaller hidden_size (--hidden)" in wide
    deep = one_line_error(deep)
    assert "a 200 x 1,024" in deep and "choose fewer layers (--layers)" in deep
    api = one_line_error(api, "ValueError")
    assert api.startswith("a 1 x 50,000 LSTM has 10.0 billion weights")


def test_many_or_long_samples_are_refused_with_their_arithmetic():
    results = run_child("""
        sh = shell()
        sh.run_line_magic("charrnn_train", "m --corpus verse --cell gru --hidden 16 --layers 1 "
                                           "--steps 2 --seed 1 --quiet")
        report(sh.run_line_magic, "charrnn_sample", "m --count 100000000 -n 5 --quiet")
        # Room for a few hundred megabytes more: 100,000,000 characters need more than that.
        resource.setrlimit(resource.RLIMIT_AS, (vm_size() + (600 << 20),) * 2)
        report(sh.run_line_magic, "charrnn_sample", "m -n 100000000 --quiet")
        report(sh.run_line_magic, "charrnn_sample", "m -n 1000 --quiet")     # still works
        model = sh.user_ns["m"]
        report(model.sample, 100_000_000)
        report(model.trace, model.sample(1000, seed=1) * 1000, max_chars=10**9)
        """)
    count, long, short, api, trace = results
    count = one_line_error(count)
    assert count.startswith("100,000,000 samples side by side need about")
    assert "ask for fewer samples at once (count, --count)" in count
    long = one_line_error(long)
    assert long.startswith("a sample of 100,000,000 characters need about")
    assert "ask for fewer characters (length, -n)" in long
    assert short == {"error": None, "length": 1000}
    assert one_line_error(api, "ValueError") == long
    assert one_line_error(trace, "ValueError").startswith(
        "a trace of 1,000,000 characters needs about")


@pytest.mark.slow
def test_a_sample_of_two_million_characters_costs_a_few_bytes_a_character():
    results = run_child("""
        sh = shell()
        sh.run_line_magic("charrnn_train", "m --corpus verse --cell rnn --hidden 8 --layers 1 "
                                           "--steps 2 --seed 1 --quiet")
        sh.run_line_magic("charrnn_sample", "m -n 1000 --quiet")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        report(sh.run_line_magic, "charrnn_sample", "m -n 2000000 --quiet")
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
        print(json.dumps({"grown": grown}))
        """, timeout=600)
    sample, memory = results
    assert sample == {"error": None, "length": 2_000_000}
    # The ids (1 byte), the text and its copy as a Sample (1 byte each): before, 237 bytes.
    assert memory["grown"] / 2_000_000 < 8, memory


def test_the_command_line_refuses_a_device_in_one_line():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "charrnn_magic", "--file", "/dev/zero"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: /dev/zero is a character device (like /dev/zero or /dev/urandom), not a file: "
        "give a text file"]


# ---- random sizes -------------------------------------------------------------------------------
@pytest.mark.slow
def test_random_sizes_either_work_within_the_limit_or_give_the_one_line_error():
    """Hidden, layers, batch, window, count and length: small (cheap to run), with at most one
    of them huge (refused at once under the limit, or cheap after all, e.g. a batch bigger than
    the text): never a MemoryError, a hang or another error."""
    results = run_child("""
        from hypothesis import HealthCheck, given, settings, strategies as st
        from charrnn_magic import CharRNN
        resource.setrlimit(resource.RLIMIT_AS, (vm_size() + (512 << 20),) * 2)
        TEXT = "the quick brown fox jumps over the lazy dog\\n" * 40
        outcomes = []

        HUGE = {"hidden": 20_000, "layers": 2_000, "batch": 10**7, "window": 10**7,
                "count": 10**7, "length": 10**8}

        @settings(max_examples=40, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(cell=st.sampled_from(["rnn", "gru", "lstm"]), hidden=st.integers(1, 200),
               layers=st.integers(1, 3), batch=st.integers(1, 16), window=st.integers(1, 64),
               count=st.integers(1, 8), length=st.integers(0, 2000),
               huge=st.sampled_from([None, None, None, *HUGE]), times=st.integers(1, 1000))
        def sizes(cell, hidden, layers, batch, window, count, length, huge, times):
            size = dict(hidden=hidden, layers=layers, batch=batch, window=window, count=count,
                        length=length)
            if huge is not None:
                size[huge] = HUGE[huge] * times
                if huge == "layers":       # deep and narrow is slow, not big: make it wide too
                    size["hidden"] = max(hidden, 64)
            model = CharRNN(cell=cell, hidden_size=size["hidden"], layers=size["layers"])
            try:
                model.fit(TEXT, steps=1, batch_size=size["batch"], seq_length=size["window"],
                          seed=1)
                model.sample(size["length"], count=size["count"], seed=1)
                outcomes.append("worked")
            except ValueError as exc:
                assert "\\n" not in str(exc), str(exc)
                outcomes.append("refused")

        sizes()
        print(json.dumps({"worked": outcomes.count("worked"),
                          "refused": outcomes.count("refused")}))
        """, timeout=900)
    (counts,) = results
    assert counts["worked"] > 0 and counts["refused"] > 0, counts


# ---- the estimate against what a fit allocates --------------------------------------------------
@pytest.mark.parametrize("cell, hidden, layers, batch, window", [
    ("gru", 128, 2, 32, 50), ("lstm", 256, 1, 16, 50), ("rnn", 512, 2, 32, 30)])
@pytest.mark.slow
def test_the_training_estimate_is_within_a_quarter_of_the_measured_peak(cell, hidden, layers,
                                                                       batch, window):
    text = load_corpus("pydoc")
    model = CharRNN(cell=cell, hidden_size=hidden, layers=layers, dropout=0.1)
    model.workers, model.snapshots = 1, 0          # this process's arrays only, no timeline
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        model.fit(text, steps=3, batch_size=batch, seq_length=window, seed=1, eval_every=2)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    parts = budget.training_bytes(cell, len(model.vocab), hidden, layers, batch, window,
                                  itemsize=4, optimizer="adam", dropout=True, workers=1,
                                  held_out=round(len(text) * model.config()["val_fraction"]))
    estimate = sum(parts.values())
    assert abs(estimate - peak) / peak < 0.25, (estimate, peak, parts)


def test_what_the_machine_has_is_read_from_the_system_and_the_limit():
    have = budget.available()
    assert have is not None and have.bytes > 0 and "free" in have.where
    results = run_child("""
        from charrnn_magic import budget
        have = budget.available()
        print(json.dumps({"bytes": have.bytes, "where": have.where}))
        """, limit=2 << 30)
    (child,) = results
    assert child["bytes"] < (2 << 30) - budget.ADDRESS_SPACE_RESERVE
    assert "ulimit -v, is 2.0 GiB" in child["where"]


def test_a_long_read_is_done_in_chunks_and_a_ctrl_c_stops_it(tmp_path, monkeypatch):
    from charrnn_magic import text as text_module

    path = tmp_path / "long.txt"
    path.write_text("abc\n" * 1_000_000)                            # 4 MB
    monkeypatch.setattr(text_module, "READ_CHUNK", 1 << 20)
    real_fdopen, reads = os.fdopen, []

    class Interrupted:
        """The file, with a Ctrl-C arriving during its second chunk."""

        def __init__(self, *args, **kwargs):
            self.file = real_fdopen(*args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def readinto(self, view):
            reads.append(len(view))
            if len(reads) == 2:
                raise KeyboardInterrupt
            return self.file.readinto(view)

    monkeypatch.setattr(text_module.os, "fdopen", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        text_module.read_text(path)
    assert reads == [1 << 20, 1 << 20]


def test_an_estimate_too_low_still_ends_training_in_the_one_line_error():
    """The check made blind (as if the estimate were far too low): the window that does not fit
    ends the fit in the ValueError, and the model keeps its weights."""
    results = run_child("""
        from charrnn_magic import CharRNN, budget
        budget.check_fit = lambda *args, **kwargs: None
        resource.setrlimit(resource.RLIMIT_AS, (vm_size() + (768 << 20),) * 2)
        model = CharRNN(cell="rnn", hidden_size=256, layers=1)
        model.workers = 1
        report(model.fit, "abcdefgh " * 200_000, steps=2, batch_size=4096, seq_length=400,
               seed=1)
        print(json.dumps({"step": model.step}))
        """)
    error, after = results
    message = one_line_error(error, "ValueError")
    assert message.startswith("training ran out of memory; this process may map")
    assert "choose a smaller model, batch_size" in message
    assert after == {"step": 0}


def test_a_continued_fit_counts_what_the_model_holds_already(monkeypatch):
    """Continuing needs only what the model does not hold yet: the weights, the optimiser's
    state and the snapshots it has are no longer in the memory the system calls available."""
    text = load_corpus("verse")
    model = CharRNN(cell="gru", hidden_size=256, layers=1)
    model.fit(text, steps=2, seed=1, batch_size=4, seq_length=20)
    held = budget._held(model)
    parts = budget.training_bytes("gru", len(model.vocab), 256, 1, 4, 20, 4, "adam",
                                  model.snapshots, bool(model.dropout), 1, "stream",
                                  round(len(text) * model.config()["val_fraction"]))
    room = (sum(parts.values()) - held / 2) / budget.SHARE      # enough for all but half of it
    monkeypatch.setattr(budget, "available", lambda: budget.Available(int(room), "so little"))
    model.workers = 1
    model.fit(text, steps=1)                                    # continues: fits
    assert model.step == 3
    fresh = CharRNN(cell="gru", hidden_size=256, layers=1)
    fresh.workers = 1
    with pytest.raises(ValueError, match=r"^training a 1 x 256 GRU .* so little: choose"):
        fresh.fit(text, steps=1, seed=1, batch_size=4, seq_length=20)


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_a_control_group_s_memory_limit_is_what_a_container_has(tmp_path, version):
    own = tmp_path / "cgroup"
    if version == "v2":
        own.write_text("0::/user/jupyter\n")
        folder = tmp_path / "user" / "jupyter"
        names = ("memory.max", "memory.current", "inactive_file")
    else:
        own.write_text("5:cpu:/\n4:memory:/docker/abc\n")
        folder = tmp_path / "memory" / "docker" / "abc"
        names = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
    folder.mkdir(parents=True)
    (folder / names[0]).write_text(f"{4 << 30}\n")                      # 4 GiB limit
    (folder / names[1]).write_text(f"{3 << 30}\n")                      # 3 GiB charged
    (folder / "memory.stat").write_text(f"anon 1\n{names[2]} {1 << 30}\n")   # 1 GiB of it cache
    got = budget._cgroup_headroom(str(tmp_path), str(own))
    assert got.bytes == 2 << 30
    assert got.where == "this process's control group may use 2.0 GiB more (its memory limit " \
                        "is 4.0 GiB)"
    (folder / names[0]).write_text("max\n" if version == "v2" else f"{2**63 - 4096}\n")
    assert budget._cgroup_headroom(str(tmp_path), str(own)) is None


def test_a_container_s_limit_refuses_a_model_that_the_machine_would_take(monkeypatch):
    monkeypatch.setattr(budget, "_cgroup_headroom",
                        lambda: budget.Available(1 << 30, "this process's control group may "
                                                          "use 1.0 GiB more"))
    with pytest.raises(ValueError, match=r"^a 1 x 20,000 GRU has 1.2 billion weights: 4.5 GiB "
                                         r"as float32 .* control group may use 1.0 GiB more: "):
        CharRNN(cell="gru", hidden_size=20_000, layers=1).fit("abc " * 100, steps=1)
