/* The page around the engine (engine.js): the sampler, steer mode and the inside view.
 *
 * Everything from the model (vocabulary, probe text, name, title, feature names) is data: it is
 * read with JSON.parse from the page's <script type="application/json"> block and shown with
 * textContent, never as markup. Long work (sampling, tracing a text) runs in slices of a few
 * milliseconds between which the browser handles input and paints, and a newer request makes
 * an older one stop at its next slice.
 */
"use strict";

(function () {
  const Engine = window.CharRNNEngine;
  const data = JSON.parse(document.getElementById("charrnn-model").textContent);
  const model = new Engine.Model(data);
  window.charrnn = Engine.makeApi(model);
  /** Milliseconds since the page began loading: the weights decoded, the first sample shown. */
  window.charrnn.timings = { decoded: performance.now(), firstSample: null };
  const net = model.net;
  /** Milliseconds of work between two chances for the browser to handle input and paint. */
  const SLICE_MS = 8;
  const READABLE = { " ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍" };

  // ------------------------------------------------------------------ DOM helpers
  /** A new element: attributes set as properties, children appended (strings as text). */
  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "dataset") Object.assign(node.dataset, v);
      else node[k] = v;
    }
    for (const child of children || []) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function label(char) {
    return READABLE[char] || char;
  }

  function control(text, input) {
    return el("label", { className: "control" }, [el("span", { textContent: text }), input]);
  }

  /** Run ``work()`` (true when finished) in slices until it finishes or ``isStale()``. */
  function runSliced(work, isStale, done) {
    function slice() {
      if (isStale()) return;
      const end = performance.now() + SLICE_MS;
      let finished = false;
      while (!finished && performance.now() < end) finished = work();
      if (finished) {
        if (done) done();
      } else {
        setTimeout(slice, 0);
      }
    }
    slice();
  }

  // ------------------------------------------------------------------ header and card
  document.title = data.title;
  const app = document.getElementById("charrnn-app");
  const c = data.card || {};
  const cardRows = [
    ["cell", (c.cell || "").toUpperCase() + ", " + c.layers + " × " + c.hidden_size + " units"],
    ["vocabulary", c.vocab_size + " characters"],
    ["parameters", (c.parameters || 0).toLocaleString("en")],
    ["trained", (c.steps || 0).toLocaleString("en") + " steps"
      + (c.characters_seen ? ", " + c.characters_seen.toLocaleString("en") + " characters seen"
        : "")
      + (c.training_text_chars ? " of a " + c.training_text_chars.toLocaleString("en")
        + "-character text" : "")],
    ["validation loss", c.val_loss === null || c.val_loss === undefined ? "none (learned whole)"
      : c.val_loss.toFixed(3) + " nats/char"],
    ["weights", c.weights],
    ["exported", c.date + " by charrnn_magic " + c.version],
  ];
  app.append(
    el("header", {}, [
      el("h1", { id: "title", textContent: data.title }),
      el("dl", { id: "card" }, cardRows.flatMap(([k, v]) => [
        el("dt", { textContent: k }), el("dd", { textContent: String(v) })])),
    ]));

  // ------------------------------------------------------------------ the sampler
  const inputs = {
    temperature: el("input", { id: "temperature", type: "range", min: "0", max: "2",
                               step: "0.05", value: "0.8" }),
    length: el("input", { id: "length", type: "range", min: "10", max: "1000", step: "10",
                          value: model.lines ? "100" : "200" }),
    seedChar: el("input", { id: "seed-char", type: "text", maxLength: 2, size: 2 }),
    prime: el("input", { id: "prime", type: "text", size: 24 }),
    topK: el("input", { id: "top-k", type: "number", min: "0", max: String(net.V), value: "0" }),
    count: el("input", { id: "count", type: "number", min: "1", max: "8", value: "1" }),
    seed: el("input", { id: "seed", type: "number", min: "0", value: "1" }),
    confidence: el("input", { id: "confidence", type: "checkbox", checked: true }),
  };
  const readouts = {
    temperature: el("output", { id: "temperature-value" }),
    length: el("output", { id: "length-value" }),
  };
  const newSample = el("button", { id: "new-sample", type: "button", textContent: "New sample" });
  const samples = el("div", { id: "samples", className: "samples" });
  const status = el("p", { id: "sample-status", className: "status" });
  app.append(el("section", { id: "sampler" }, [
    el("h2", { textContent: "Sample" }),
    el("div", { className: "controls" }, [
      control("temperature", el("span", {}, [inputs.temperature, readouts.temperature])),
      control("length", el("span", {}, [inputs.length, readouts.length])),
      control("seed character", inputs.seedChar),
      control("prime", inputs.prime),
      control("top-k (0: all)", inputs.topK),
      control("samples", inputs.count),
      control("random seed", inputs.seed),
      control("confidence colours", inputs.confidence),
      newSample,
    ]),
    status,
    samples,
  ]));

  function confidenceColour(p) {
    // From red (the model gave the character little chance) to clear (it was sure).
    const a = Math.max(0, Math.min(1, 1 - p)) * 0.6;
    return "rgba(214, 39, 40, " + a.toFixed(3) + ")";
  }

  let generation = 0;
  let lastSamples = [];
  /** Sample again with the controls' values; an older run still going stops at once. */
  function regenerate() {
    const token = ++generation;
    readouts.temperature.textContent = Number(inputs.temperature.value).toFixed(2);
    readouts.length.textContent = inputs.length.value;
    const options = {
      length: Number(inputs.length.value), temperature: Number(inputs.temperature.value),
      topK: Number(inputs.topK.value) || null, prime: inputs.prime.value || undefined,
      seedChar: inputs.seedChar.value || undefined,
    };
    const count = Math.max(1, Math.min(8, Number(inputs.count.value) || 1));
    const seed = Number(inputs.seed.value) || 0;
    let samplers;
    try {
      samplers = Array.from({ length: count }, (_, k) =>
        model.sampler(Object.assign({ seed: seed + k }, options)));
    } catch (error) {
      status.textContent = error.message;
      if (!trace.chars.length) retrace();
      return;
    }
    status.textContent = "";
    samples.dataset.state = "sampling";
    const boxes = samplers.map((_, k) => el("pre", { className: "sample", dataset: { k } }));
    samples.replaceChildren(...boxes);
    const texts = samplers.map(() => "");
    const live = samplers.map(() => true);
    const colour = inputs.confidence.checked;
    let k = 0;
    runSliced(() => {
      // One character of one sample per call, the samples in turn.
      for (let tries = 0; tries < samplers.length && !live[k]; tries++) {
        k = (k + 1) % samplers.length;
      }
      if (!live[k]) return true;
      const next = samplers[k].next();
      if (next === null) {
        live[k] = false;
      } else {
        texts[k] += next.char;
        const span = el("span", { textContent: next.char });
        if (colour && !Number.isNaN(next.p)) {
          span.style.backgroundColor = confidenceColour(next.p);
          span.title = (100 * next.p).toFixed(1) + " %";
        }
        boxes[k].append(span);
      }
      k = (k + 1) % samplers.length;
      return false;
    }, () => token !== generation, () => {
      samples.dataset.state = "done";
      lastSamples = texts;
      steerFrom = samplers[0];
      startSteer();
      if (window.charrnn.timings.firstSample === null) {
        window.charrnn.timings.firstSample = performance.now();
        retrace();                  // the inside view once the first sample is shown
      }
    });
  }

  for (const name of ["temperature", "length", "topK", "count", "seed", "confidence"]) {
    inputs[name].addEventListener("input", regenerate);
  }
  for (const name of ["prime", "seedChar"]) inputs[name].addEventListener("change", regenerate);
  newSample.addEventListener("click", () => {
    inputs.seed.value = String(Math.floor(Math.random() * 1e9));
    regenerate();
  });

  // ------------------------------------------------------------------ steer mode
  const steerText = el("pre", { id: "steer-text", className: "sample" });
  const steerChoices = el("div", { id: "steer-choices", className: "choices" });
  const steerRestart = el("button", { id: "steer-restart", type: "button",
                                      textContent: "Steer from the first sample" });
  app.append(el("section", { id: "steer" }, [
    el("h2", { textContent: "Steer" }),
    el("p", { className: "hint", textContent: "The five likeliest next characters: click one "
      + "to continue the text with it." }),
    steerChoices, steerText, steerRestart,
  ]));
  let steerer = null;
  let steerFrom = null;       // the first sample's sampler, where steering starts

  /** Steer from the end of the first sample (its sampler's state, copied: no re-run). */
  function startSteer() {
    if (!steerFrom) return;
    steerer = steerFrom.fork();
    steerText.textContent = lastSamples[0] || "";
    showChoices();
  }

  function showChoices() {
    const choices = steerer.top(5).map((choice) => {
      const button = el("button", { type: "button", className: "choice" }, [
        el("span", { className: "char", textContent: label(choice.char) }),
        el("span", { className: "p", textContent: (100 * choice.p).toFixed(1) + " %" }),
      ]);
      button.dataset.char = choice.char;
      button.addEventListener("click", () => {
        steerer.force(choice.char);
        steerText.append(el("span", { className: "steered", textContent: choice.char }));
        showChoices();
      });
      return button;
    });
    steerChoices.replaceChildren(...choices);
  }
  steerRestart.addEventListener("click", startSteer);

  // ------------------------------------------------------------------ the inside view
  const kinds = Engine.KINDS[net.cell];
  const probeBox = el("textarea", { id: "probe", rows: 6, spellcheck: false,
                                    value: data.probe || "" });
  const layerSelect = el("select", { id: "layer" }, Array.from({ length: net.nLayers }, (_, l) =>
    el("option", { value: String(l), textContent: "layer " + l })));
  const stateSelect = el("select", { id: "state" }, kinds.concat(["surprise"]).map((k) =>
    el("option", { value: k, textContent: k === "surprise" ? "surprise (−log p)" : k })));
  const unitInput = el("input", { id: "unit", type: "number", min: "0",
                                  max: String(net.H - 1), value: "0" });
  const unitsList = el("div", { id: "units", className: "choices" }, (data.units || []).map(
    (u) => {
      const button = el("button", { type: "button", className: "unit-choice",
        textContent: u.feature + ": layer " + u.layer + " " + u.state + "[" + u.unit + "] r="
          + (u.r >= 0 ? "+" : "") + u.r.toFixed(2) });
      button.addEventListener("click", () => {
        layerSelect.value = String(u.layer);
        stateSelect.value = u.state;
        unitInput.value = String(u.unit);
        recolour();
      });
      return button;
    }));
  const inside = el("pre", { id: "inside", className: "sample inside" });
  const hover = el("div", { id: "hover", className: "hover" });
  app.append(el("section", { id: "inside-view" }, [
    el("h2", { textContent: "Inside" }),
    el("p", { className: "hint", textContent: "Type below: the text is coloured by the chosen "
      + "unit (blue high, red low). Hover a character to see what the model expects next." }),
    probeBox,
    el("div", { className: "controls" }, [control("layer", layerSelect),
      control("state", stateSelect), control("unit", unitInput)]),
    (data.units || []).length ? el("p", { className: "hint",
      textContent: "Units the finder matched to features of the probe:" }) : "",
    unitsList,
    el("div", { className: "inside-row" }, [inside, hover]),
  ]));

  /** The trace of the inside view's text: states per layer and kind, and the probabilities. */
  const trace = { chars: [], ids: [], T: 0, capacity: 0, values: null, probs: null,
                  checkpoints: [] };
  const CHECKPOINT_EVERY = 64;
  let traceToken = 0;

  function grow(T) {
    if (T <= trace.capacity) return;
    const capacity = Math.max(T, 2 * trace.capacity, 256);
    const values = {};
    for (let l = 0; l < net.nLayers; l++) {
      for (const k of kinds) {
        const fresh = new Float32Array(capacity * net.H);
        if (trace.values) fresh.set(trace.values[l + k]);
        values[l + k] = fresh;
      }
    }
    const probs = new Float32Array(capacity * net.V);
    if (trace.probs) probs.set(trace.probs);
    Object.assign(trace, { capacity, values, probs });
  }

  /** Trace the box's text again from the first character that changed, in slices. */
  function retrace() {
    const token = ++traceToken;
    const chars = Array.from(model.prepare(probeBox.value));
    let same = 0;
    while (same < chars.length && same < trace.T && chars[same] === trace.chars[same]) same++;
    const k0 = Math.min(Math.floor(same / CHECKPOINT_EVERY), trace.checkpoints.length - 1);
    let t = k0 >= 0 ? k0 * CHECKPOINT_EVERY : 0;
    const state = k0 >= 0 ? net.copyState(trace.checkpoints[k0]) : net.zeroState();
    trace.checkpoints.length = Math.max(k0 + 1, 0);
    if (!trace.checkpoints.length) trace.checkpoints.push(net.copyState(state));
    trace.chars = chars;
    trace.ids = chars.map((ch) => (model.ids.has(ch) ? model.ids.get(ch) : -1));
    trace.T = t;
    grow(chars.length);
    const logits = new Float64Array(net.V);
    const probs = new Float64Array(net.V);
    const gates = Array.from({ length: net.nLayers }, () => {
      const g = {};
      for (const k of kinds) if (k !== "h" && k !== "c") g[k] = new Float64Array(net.H);
      return g;
    });
    runSliced(() => {
      if (t < chars.length) {
        const id = trace.ids[t];
        if (id >= 0) {
          net.step(id, state, logits, gates);
          Engine.softmax(logits, probs, 1);
        }   // an unknown character leaves the state and the last prediction as they were
        for (let l = 0; l < net.nLayers; l++) {
          for (const k of kinds) {
            const source = k === "h" ? state[l][0] : k === "c" ? state[l][1] : gates[l][k];
            trace.values[l + k].set(source, t * net.H);
          }
        }
        trace.probs.set(probs, t * net.V);
        if ((t + 1) % CHECKPOINT_EVERY === 0) trace.checkpoints.push(net.copyState(state));
        t++;
      }
      trace.T = t;
      return t >= chars.length;
    }, () => token !== traceToken, () => {
      renderInside();
    });
  }

  let spans = [];
  function renderInside() {
    spans = trace.chars.map((ch, t) => el("span", {
      textContent: ch, className: trace.ids[t] < 0 ? "unknown" : "", dataset: { t } }));
    inside.replaceChildren(...spans);
    recolour();
  }

  /** Colour every character of the inside view by the chosen unit (or by surprise). */
  function recolour() {
    const l = Number(layerSelect.value);
    const kind = stateSelect.value;
    const unit = Math.max(0, Math.min(net.H - 1, Math.floor(Number(unitInput.value) || 0)));
    const T = Math.min(spans.length, trace.T);
    if (kind === "surprise") {
      for (let t = 0; t < T; t++) {
        const id = trace.ids[t];
        const before = t > 0 ? trace.probs[(t - 1) * net.V + id] : NaN;
        const s = id < 0 || !(before > 0) ? 0 : Math.min(1, -Math.log(before) / 6);
        spans[t].style.backgroundColor = "rgba(230, 120, 0, " + (0.8 * s).toFixed(3) + ")";
      }
      return;
    }
    const values = trace.values[l + kind];
    let scale = 1;
    if (kind === "c") {
      scale = 1e-9;
      for (let t = 0; t < T; t++) scale = Math.max(scale, Math.abs(values[t * net.H + unit]));
    }
    const gate = kind !== "h" && kind !== "c" && kind !== "n" && kind !== "g";
    for (let t = 0; t < T; t++) {
      let v = values[t * net.H + unit];
      v = gate ? 2 * v - 1 : v / scale;
      const a = Math.min(1, Math.abs(v)) * 0.75;
      spans[t].style.backgroundColor = v >= 0 ? "rgba(33, 102, 172, " + a.toFixed(3) + ")"
        : "rgba(178, 24, 43, " + a.toFixed(3) + ")";
    }
  }

  function showHover(t) {
    const row = trace.probs.subarray(t * net.V, (t + 1) * net.V);
    const top = Engine.topOf(row, 5, model.vocab);
    hover.replaceChildren(
      el("div", { className: "hover-head", textContent: "after " + JSON.stringify(trace.chars
        .slice(Math.max(0, t - 11), t + 1).join("")) }),
      ...top.map((choice) => el("div", { className: "prediction" }, [
        el("span", { className: "char", textContent: label(choice.char) }),
        el("span", { className: "bar", style: "width: " + (60 * choice.p).toFixed(1) + "px" }),
        el("span", { className: "p", textContent: (100 * choice.p).toFixed(1) + " %" }),
      ])));
  }

  inside.addEventListener("mouseover", (event) => {
    const t = Number(event.target.dataset && event.target.dataset.t);
    if (event.target.parentNode === inside && t < trace.T) showHover(t);
  });
  probeBox.addEventListener("input", retrace);
  for (const input of [layerSelect, stateSelect, unitInput]) {
    input.addEventListener("input", recolour);
  }

  // ------------------------------------------------------------------ start
  regenerate();
  window.charrnn.ready = true;
})();
