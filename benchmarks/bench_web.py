"""The model as a web page: its size, how soon it is ready, and how fast its JavaScript engine
runs in headless Chromium, beside the NumPy engine on the same machine.

The targets (issue 25), measured in headless Chromium:

- the page of the default 2x128 GRU with float16 weights: at most 600 kB;
- the page of a 2x256 model ready (weights decoded, first sample shown): at most 0.5 s;
- 1,000 characters from the 2x128 GRU: at most 150 ms;
- a slider move never blocks the main thread for more than 50 ms;
- recolouring 3,000 characters after a unit change: at most 50 ms.

Also printed: the parity of the page's probabilities with ``model.trace`` on 2,000 characters
(float32 and float16 weights; models trained 150 steps, as float16's rounding errors grow as the
weights move from their start) and the NumPy sampler's time for the same 1,000 characters.
The other models are trained for 3 steps on the built-in verse corpus: the work of a page does
not depend on how good its weights are (the vocabulary's size does, a little: verse has 58
characters, tinyshakespeare 65).

    python benchmarks/bench_web.py
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import _common
import numpy as np
from _common import print_table

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def trained(cell: str, hidden: int, layers: int = 2, steps: int = 3):
    from charrnn_magic import CharRNN
    from charrnn_magic.corpora import load_corpus

    model = CharRNN(cell, hidden, layers)
    model.fit(load_corpus("verse"), steps=steps, seed=1)
    return model


def poll(page, expression: str, arg=None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out: {expression}")
        page.wait_for_timeout(20)


def thread_seconds(cdp) -> float:
    """CPU seconds of the page's main thread so far (Chrome's ``ThreadTime`` metric): on a busy
    machine wall time also measures the neighbours."""
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return next(m["value"] for m in metrics if m["name"] == "ThreadTime")


def cpu_ms(page, cdp, expression: str, arg=None) -> float:
    """Main-thread CPU milliseconds of one evaluation of ``expression``."""
    before = thread_seconds(cdp)
    page.evaluate(expression, arg)
    return 1000 * (thread_seconds(cdp) - before)


def opened(browser, path: Path):
    page = browser.new_page(viewport={"width": 1100, "height": 1200})
    page.goto(path.resolve().as_uri())
    poll(page, "() => window.charrnn && window.charrnn.timings.firstSample !== null")
    return page


SAMPLE_MS = """n => {
  const times = [];
  for (let r = 0; r < n; r++) {
    const t0 = performance.now();
    charrnn.sample({length: 1000, temperature: 0.8, seed: r});
    times.push(performance.now() - t0);
  }
  return times;
}"""

#: A heartbeat of zero-delay timers during a slider move: the longest gap between two beats is
#: the longest time the main thread was busy (a slice plus what the browser did after it).
SLIDER_MOVE = """() => new Promise(resolve => {
  const observed = [];
  new PerformanceObserver(list => observed.push(...list.getEntries().map(e => e.duration)))
    .observe({type: "longtask"});
  let last = performance.now(), gap = 0, beats = 0;
  const beat = () => {
    const now = performance.now();
    gap = Math.max(gap, now - last);
    last = now;
    if (++beats < 400) setTimeout(beat, 0);
    else resolve({gap, longtasks: observed});
  };
  const slider = document.getElementById("temperature");
  slider.value = String(Number(slider.value) + 0.25);
  slider.dispatchEvent(new Event("input"));
  setTimeout(beat, 0);
})"""

RECOLOUR_MS = """n => {
  const unit = document.getElementById("unit");
  const times = [];
  for (let r = 0; r < n; r++) {
    const t0 = performance.now();
    unit.value = String((Number(unit.value) + 1) % 64);
    unit.dispatchEvent(new Event("input"));
    document.body.offsetHeight;              // the style and layout of the new colours
    times.push(performance.now() - t0);
  }
  return times;
}"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (default 7)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from charrnn_magic.corpora import load_corpus

    print(_common.machine_line())
    verse = load_corpus("verse")
    folder = Path(tempfile.mkdtemp(prefix="bench-web-"))
    gru128 = trained("gru", 128)
    rows = []
    for float32 in (False, True):
        path = gru128.export_html(folder / f"gru128-{float32}.html", float32=float32)
        rows.append([f"GRU 2x128, {'float32' if float32 else 'float16'}",
                     f"{path.stat().st_size / 1e3:,.0f} kB", f"{gru128.n_params:,}"])
    big = {cell: trained(cell, 256) for cell in ("gru", "lstm")}
    for cell, model in big.items():
        path = model.export_html(folder / f"{cell}256.html")
        rows.append([f"{cell.upper()} 2x256, float16", f"{path.stat().st_size / 1e3:,.0f} kB",
                     f"{model.n_params:,}"])
    print_table(["page", "size", "weights"], rows, "Page sizes (target: GRU 2x128 float16 "
                "<= 600 kB)")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # Ready: weights decoded and the first sample shown, from the start of navigation.
        rows = []
        for cell in ("gru", "lstm"):
            ready, decoded = [], []
            for _ in range(args.repeat):
                page = opened(browser, folder / f"{cell}256.html")
                timings = page.evaluate("() => charrnn.timings")
                ready.append(timings["firstSample"])
                decoded.append(timings["decoded"])
                page.close()
            rows.append([f"{cell.upper()} 2x256", f"{statistics.median(decoded):.0f} ms",
                         f"{statistics.median(ready):.0f} ms"])
        print_table(["page", "weights decoded", "first sample shown"], rows,
                    f"Ready (median of {args.repeat}; target <= 500 ms)")

        rows = []
        for label, model, html in (("GRU 2x128", gru128, "gru128-False.html"),
                                   ("GRU 2x256", big["gru"], "gru256.html")):
            page = opened(browser, folder / html)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            js = page.evaluate(SAMPLE_MS, args.repeat)
            js_cpu = [cpu_ms(page, cdp, "s => { charrnn.sample({length: 1000, seed: s}); }", r)
                      for r in range(args.repeat)]
            wall, cpu = [], []
            for r in range(args.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                model.sample(1000, temperature=0.8, seed=r)
                wall.append(1000 * (time.perf_counter() - t0))
                cpu.append(1000 * (time.process_time() - c0))
            j, jc = statistics.median(js), statistics.median(js_cpu)
            n, nc = statistics.median(wall), statistics.median(cpu)
            rows.append([f"{label}, JavaScript (Chromium)", f"{j:.1f} ms", f"{jc:.1f} ms",
                         f"{jc / nc:.2f}x NumPy's"])
            rows.append([f"{label}, NumPy engine", f"{n:.1f} ms", f"{nc:.1f} ms", "1"])
            if label != "GRU 2x128":
                page.close()
        print_table(["sampler", "1,000 characters (wall)", "CPU", "ratio (CPU)"], rows,
                    f"Sampling (median of {args.repeat}; target: GRU 2x128 <= 150 ms)")
        page = opened(browser, folder / "gru128-False.html")

        moves = [page.evaluate(SLIDER_MOVE) for _ in range(args.repeat)]
        gaps = [m["gap"] for m in moves]
        longtasks = [d for m in moves for d in m["longtasks"]]
        print_table(["figure", "value"], [
            ["longest gap between heartbeats", f"{max(gaps):.1f} ms (median "
             f"{statistics.median(gaps):.1f})"],
            ["long tasks (> 50 ms) seen", f"{len(longtasks)}"
             + (f", longest {max(longtasks):.0f} ms" if longtasks else "")]],
            f"Slider moves, {args.repeat} of them (target: no block > 50 ms)")

        probe = (verse * 2)[:3000]
        page.evaluate("""t => { const box = document.getElementById("probe");
                                box.value = t; box.dispatchEvent(new Event("input")); }""", probe)
        poll(page, "() => document.querySelectorAll('#inside span').length === 3000")
        recolour = page.evaluate(RECOLOUR_MS, args.repeat)
        print_table(["figure", "value"], [
            ["recolour 3,000 characters", f"{statistics.median(recolour):.1f} ms (max "
             f"{max(recolour):.1f})"]], "Inside view (target <= 50 ms)")
        page.close()

        text = verse[:2000]
        rows = []
        for cell in ("rnn", "lstm", "gru"):
            model = trained(cell, 128, steps=150)
            trace = model.trace(text)
            for float32 in (True, False):
                path = model.export_html(folder / f"parity-{cell}.html", float32=float32)
                page = opened(browser, path)
                probs = np.array(page.evaluate("t => charrnn.probabilities(t)", text))
                state_error = 0.0
                for layer in trace.layers:
                    for kind in trace.kinds:
                        got = np.array(page.evaluate("([t, l, k]) => charrnn.states(t, l, k)",
                                                     [text, layer, kind]))
                        want = trace.state(layer, kind)
                        scale = max(1.0, float(np.abs(want).max()))
                        state_error = max(state_error, np.abs(got - want).max() / scale)
                page.close()
                loss = -np.log(probs[np.arange(len(text) - 1), trace.ids[1:]]).mean()
                rows.append([f"{cell.upper()} 2x128", "float32" if float32 else "float16",
                             f"{np.abs(probs - trace.probs).max():.1e}",
                             f"{abs(loss - trace.mean_loss):.1e}", f"{state_error:.1e}"])
        print_table(["model", "weights", "max |p - trace.p|", "|mean loss - trace's|",
                     "max state error"], rows,
                    "Parity with model.trace on 2,000 characters (state error: every layer and "
                    "kind; an LSTM's c relative to its largest |c| when above 1)")
        browser.close()


if __name__ == "__main__":
    main()
