/* charrnn_magic's model in the browser: the engine's forward pass (charrnn_magic/cells.py and
 * network.py), the sampler (charrnn_magic/sampling.py) and a trace of the states, in plain
 * JavaScript. No framework, no network: the page's JSON model data is all it reads.
 *
 * Shapes follow the Python engine: V characters, H units a layer, G = gates x H. Weights are
 * stored transposed here, (G, H) and (V, H), so that every product is a run of dot products over
 * contiguous rows. Arithmetic is in float64 (JavaScript numbers) on float32 weights.
 *
 * The API the page builds on, and that people's own pages may use, is window.charrnn (see
 * makeApi at the end, and the README's "The model as a web page").
 */
"use strict";

(function (global) {
  const GATES = { rnn: 1, lstm: 4, gru: 3 };
  const KINDS = { rnn: ["h"], lstm: ["h", "c", "i", "f", "o", "g"], gru: ["h", "r", "z", "n"] };
  /** Below this temperature the sampler is greedy, as the Python engine's MIN_TEMPERATURE. */
  const MIN_TEMPERATURE = 1e-6;

  // ------------------------------------------------------------------ weights
  function base64Bytes(text) {
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  let halfTable = null;
  /** float16 bit patterns -> float32 values, all 65,536 of them (made once). */
  function halfToFloatTable() {
    if (halfTable) return halfTable;
    halfTable = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) {
      const sign = bits & 0x8000 ? -1 : 1;
      const exponent = (bits >> 10) & 0x1f;
      const fraction = bits & 0x3ff;
      let value;
      if (exponent === 0) value = fraction * Math.pow(2, -24);
      else if (exponent === 31) value = fraction ? NaN : Infinity;
      else value = (1 + fraction / 1024) * Math.pow(2, exponent - 15);
      halfTable[bits] = sign * value;
    }
    return halfTable;
  }

  /** All the weights as one Float32Array, from the page's base64 (little-endian). */
  function decodeWeights(data) {
    const bytes = base64Bytes(data.weights);
    const view = new DataView(bytes.buffer);
    if (data.dtype === "float32") {
      const out = new Float32Array(bytes.length / 4);
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    const table = halfToFloatTable();
    const out = new Float32Array(bytes.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = table[view.getUint16(2 * i, true)];
    return out;
  }

  /** (rows, cols) row-major -> (cols, rows) row-major. */
  function transpose(a, rows, cols) {
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
    }
    return out;
  }

  // ------------------------------------------------------------------ arithmetic
  /** out[j] = sum_i x[i] W[j, i] (+ bias[j]) for the (n, m) row-major W: x @ W.T. Four rows at
   * a time, so that each x[i] read serves four products (a quarter faster in V8 than one row
   * with four partial sums; benchmarks/README.md). */
  function matvec(W, x, n, m, out, bias) {
    let j = 0;
    for (; j + 3 < n; j += 4) {
      const r0 = j * m, r1 = r0 + m, r2 = r1 + m, r3 = r2 + m;
      let a = 0, b = 0, c = 0, d = 0;
      for (let i = 0; i < m; i++) {
        const xi = x[i];
        a += W[r0 + i] * xi;
        b += W[r1 + i] * xi;
        c += W[r2 + i] * xi;
        d += W[r3 + i] * xi;
      }
      if (bias) {
        a += bias[j];
        b += bias[j + 1];
        c += bias[j + 2];
        d += bias[j + 3];
      }
      out[j] = a;
      out[j + 1] = b;
      out[j + 2] = c;
      out[j + 3] = d;
    }
    for (; j < n; j++) {
      let s = 0;
      const row = j * m;
      for (let i = 0; i < m; i++) s += W[row + i] * x[i];
      out[j] = s + (bias ? bias[j] : 0);
    }
    return out;
  }

  /** The logistic function as the engine computes it: 0.5 tanh(x / 2) + 0.5. */
  function sigmoid(x) {
    return 0.5 * Math.tanh(0.5 * x) + 0.5;
  }

  // ------------------------------------------------------------------ the network
  /**
   * The network of the page's model data: weights decoded, per layer the projected input terms
   * and the transposed recurrent weights. data: {cell, hidden_size, layers, vocab, dtype,
   * weights (base64), tensors: [[name, shape], ...] in the flat order}.
   */
  function Network(data) {
    const flat = decodeWeights(data);
    const params = {};
    let offset = 0;
    for (const [name, shape] of data.tensors) {
      const n = shape.reduce((a, b) => a * b, 1);
      params[name] = { values: flat.subarray(offset, offset + n), shape };
      offset += n;
    }
    if (offset !== flat.length) throw new Error("the model's weights do not match its shapes");
    const H = data.hidden_size;
    const V = data.vocab.length;
    const G = GATES[data.cell] * H;
    this.cell = data.cell;
    this.H = H;
    this.V = V;
    this.G = G;
    this.nLayers = data.layers;
    this.layers = [];
    for (let l = 0; l < data.layers; l++) {
      const Wx = params["l" + l + ".Wx"].values;
      const b = params["l" + l + ".b"].values;
      const layer = {
        WhT: transpose(params["l" + l + ".Wh"].values, H, G),                  // (G, H)
        bhn: data.cell === "gru" ? params["l" + l + ".bhn"].values : null,    // (H,)
      };
      if (l === 0) {
        // The embedding table plus the bias, (V, G): the input term of each character.
        const table = new Float64Array(V * G);
        for (let v = 0; v < V; v++) {
          for (let g = 0; g < G; g++) table[v * G + g] = Wx[v * G + g] + b[g];
        }
        layer.table = table;
      } else {
        layer.WxT = transpose(Wx, H, G);                                      // (G, H)
        layer.b = b;
      }
      this.layers.push(layer);
    }
    this.WyT = transpose(params.Wy.values, H, V);                             // (V, H)
    this.by = params.by.values;
    this.scratch = { x: new Float64Array(G), hw: new Float64Array(G) };
  }

  Network.prototype.zeroState = function () {
    const parts = this.cell === "lstm" ? 2 : 1;
    const state = [];
    for (let l = 0; l < this.nLayers; l++) {
      const s = [];
      for (let k = 0; k < parts; k++) s.push(new Float64Array(this.H));
      state.push(s);
    }
    return state;
  };

  Network.prototype.copyState = function (state) {
    return state.map((parts) => parts.map((a) => new Float64Array(a)));
  };

  /**
   * Read character id ``id``: update ``state`` in place and write the next character's logits
   * (V,) into ``logits``. ``gates``, when given, receives per layer the activations of this step
   * ({kind: Float64Array(H)}) for the trace.
   */
  Network.prototype.step = function (id, state, logits, gates) {
    const H = this.H, G = this.G;
    const x = this.scratch.x, hw = this.scratch.hw;
    let below = null;
    for (let l = 0; l < this.nLayers; l++) {
      const layer = this.layers[l];
      if (l === 0) {
        const row = id * G;
        for (let g = 0; g < G; g++) x[g] = layer.table[row + g];
      } else {
        matvec(layer.WxT, below, G, H, x, layer.b);
      }
      const h = state[l][0];
      matvec(layer.WhT, h, G, H, hw, null);
      const seen = gates ? gates[l] : null;
      if (this.cell === "rnn") {
        for (let u = 0; u < H; u++) h[u] = Math.tanh(x[u] + hw[u]);
      } else if (this.cell === "lstm") {
        const c = state[l][1];
        for (let u = 0; u < H; u++) {
          const i = sigmoid(x[u] + hw[u]);
          const f = sigmoid(x[H + u] + hw[H + u]);
          const o = sigmoid(x[2 * H + u] + hw[2 * H + u]);
          const g = Math.tanh(x[3 * H + u] + hw[3 * H + u]);
          c[u] = f * c[u] + i * g;
          h[u] = o * Math.tanh(c[u]);
          if (seen) {
            seen.i[u] = i;
            seen.f[u] = f;
            seen.o[u] = o;
            seen.g[u] = g;
          }
        }
      } else {
        const bhn = layer.bhn;
        for (let u = 0; u < H; u++) {
          const r = sigmoid(x[u] + hw[u]);
          const z = sigmoid(x[H + u] + hw[H + u]);
          const n = Math.tanh(x[2 * H + u] + r * (hw[2 * H + u] + bhn[u]));
          h[u] = n + z * (h[u] - n);
          if (seen) {
            seen.r[u] = r;
            seen.z[u] = z;
            seen.n[u] = n;
          }
        }
      }
      below = h;
    }
    matvec(this.WyT, below, this.V, H, logits, this.by);
    return logits;
  };

  /** Softmax of ``logits`` (V,) into ``out``, divided by ``temperature`` first. */
  function softmax(logits, out, temperature) {
    const scale = 1 / (temperature || 1);
    let top = -Infinity;
    for (let v = 0; v < logits.length; v++) top = Math.max(top, logits[v] * scale);
    let total = 0;
    for (let v = 0; v < logits.length; v++) {
      out[v] = Math.exp(logits[v] * scale - top);
      total += out[v];
    }
    for (let v = 0; v < logits.length; v++) out[v] /= total;
    return out;
  }

  // ------------------------------------------------------------------ random numbers
  /**
   * A seeded generator of uniform numbers in [0, 1): a 32-bit counter stepped by the golden
   * ratio and mixed (splitmix32), made of integer operations only, so that the same seed gives
   * the same numbers in every browser.
   */
  function Random(seed) {
    let state = seed >>> 0;
    return function next() {
      state = (state + 0x9e3779b9) >>> 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      z = (z ^ (z >>> 16)) >>> 0;
      return z / 4294967296;
    };
  }

  // ------------------------------------------------------------------ the model
  /** The page's model: the network, its vocabulary and how it takes text. */
  function Model(data) {
    this.data = data;
    this.net = new Network(data);
    this.vocab = data.vocab.slice();
    this.ids = new Map(this.vocab.map((c, i) => [c, i]));
    this.lines = data.mode === "lines";
    this.newline = this.ids.has("\n") ? this.ids.get("\n") : null;
  }

  /** Text as the model takes it: newlines normalised (unless raw), lower-cased for a lower model. */
  Model.prototype.prepare = function (text) {
    let out = String(text);
    if (!this.data.raw_text) {
      out = out.replace(/^\ufeff/, "").replace(/\r\n?/g, "\n");
    }
    if (this.data.lower) out = out.toLowerCase();
    return out;
  };

  /** Characters of ``text`` (code points: an emoji is one) outside the vocabulary. */
  Model.prototype.missing = function (text) {
    const out = new Set();
    for (const c of text) if (!this.ids.has(c)) out.add(c);
    return Array.from(out);
  };

  /** Text -> ids, one per code point; an Error names the characters the model does not know. */
  Model.prototype.encode = function (text, what) {
    const missing = this.missing(text);
    if (missing.length) {
      const shown = missing.slice(0, 12).map((c) => JSON.stringify(c)).join(", ");
      throw new Error((what || "the text") + " has character(s) outside the model's vocabulary: "
                      + shown);
    }
    return Array.from(text, (c) => this.ids.get(c));
  };

  /**
   * Run the model over ``ids`` and call ``visit(t, logits, gates)`` after each one (logits: the
   * next character's, (V,)). ``kinds`` true keeps the gates for ``visit``.
   */
  Model.prototype.run = function (ids, visit, keepGates, state) {
    const net = this.net;
    state = state || net.zeroState();
    const logits = new Float64Array(net.V);
    let gates = null;
    if (keepGates) {
      gates = [];
      for (let l = 0; l < net.nLayers; l++) {
        const g = {};
        for (const k of KINDS[net.cell]) if (k !== "h" && k !== "c") g[k] = new Float64Array(net.H);
        gates.push(g);
      }
    }
    for (let t = 0; t < ids.length; t++) {
      net.step(ids[t], state, logits, gates);
      if (visit) visit(t, logits, gates, state);
    }
    return state;
  };

  /** (T arrays of V) the distribution of the character after each character of ``text``. */
  Model.prototype.probabilities = function (text) {
    const ids = this.encode(this.prepare(text));
    const out = [];
    this.run(ids, (t, logits) => {
      out.push(softmax(logits, new Float64Array(this.net.V), 1));
    });
    return out;
  };

  /** (T arrays of H) one layer's state kind after each character, as model.trace's. */
  Model.prototype.states = function (text, layer, kind) {
    const net = this.net;
    layer = layer === undefined ? 0 : layer;
    kind = kind || "h";
    if (!(layer >= 0 && layer < net.nLayers && Number.isInteger(layer))) {
      throw new Error("layer " + layer + " is out of range: the model has " + net.nLayers
                      + " layer(s)");
    }
    if (!KINDS[net.cell].includes(kind)) {
      throw new Error("state " + JSON.stringify(kind) + " is not a state of a "
                      + net.cell.toUpperCase() + ": use one of " + KINDS[net.cell].join(", "));
    }
    const ids = this.encode(this.prepare(text));
    const out = [];
    const gated = kind !== "h" && kind !== "c";
    this.run(ids, (t, logits, gates, state) => {
      const source = gated ? gates[layer][kind] : state[layer][kind === "h" ? 0 : 1];
      out.push(new Float64Array(source));
    }, gated);
    return out;
  };

  /**
   * A sampler: start(options) then next() gives one {char, p} at a time (p: the probability the
   * model gave the character at temperature 1), or null at the end. Options as the Python
   * engine's sample(): length, temperature, seed, prime, seedChar, topK, topP, and stop (a
   * character; by default the line end in lines mode, none in stream mode).
   */
  Model.prototype.sampler = function (options) {
    const o = options || {};
    const net = this.net;
    const length = o.length === undefined ? 200 : Math.max(0, Math.floor(o.length));
    const temperature = o.temperature === undefined ? 1 : Number(o.temperature);
    if (!(temperature >= 0)) throw new Error("temperature must be 0 (greedy) or more");
    const topK = o.topK ? Math.floor(o.topK) : null;
    const topP = o.topP && o.topP < 1 ? Number(o.topP) : null;
    const seed = o.seed === undefined || o.seed === null
      ? Math.floor(Math.random() * 4294967296) : Number(o.seed);
    const random = Random(seed);
    const prime = o.prime ? this.prepare(o.prime) : "";
    const seedChar = o.seedChar ? this.prepare(o.seedChar) : "";
    if (prime && seedChar) throw new Error("give either prime or seedChar, not both");
    if (seedChar && Array.from(seedChar).length !== 1) {
      throw new Error("seedChar must be exactly one character");
    }
    const stop = o.stop === undefined ? (this.lines ? "\n" : null) : o.stop;
    const stopId = stop === null || !this.ids.has(stop) ? null : this.ids.get(stop);
    const context = this.encode(prime || seedChar, prime ? "the prime" : "the seed character");
    if (this.lines || !context.length) {
      const space = this.ids.has(" ") ? this.ids.get(" ") : 0;
      context.unshift(this.newline !== null ? this.newline : space);
    }
    const state = this.run(context.slice(0, -1), null, false);
    const logits = new Float64Array(net.V);
    const probs = new Float64Array(net.V);
    const order = Array.from({ length: net.V }, (_, v) => v);
    let id = context[context.length - 1];
    let remaining = seedChar ? length - 1 : length;
    let pending = seedChar && length > 0 ? [{ char: seedChar, p: NaN }] : [];
    const greedy = temperature < MIN_TEMPERATURE;
    const vocab = this.vocab;
    const lines = this.lines;
    const model = this;
    let done = false;
    return {
      state,
      /** The next character, or null when the sample is over. */
      next() {
        if (pending.length) return pending.shift();
        if (done || remaining <= 0) return null;
        remaining--;
        net.step(id, state, logits, null);
        softmax(logits, probs, 1);
        let chosen;
        if (greedy) {
          chosen = 0;
          for (let v = 1; v < net.V; v++) if (logits[v] > logits[chosen]) chosen = v;
        } else {
          chosen = draw(logits, temperature, topK, topP, random, order);
        }
        id = chosen;
        if (stopId !== null && chosen === stopId) {
          done = true;
          if (lines) return null;          // a lines-mode model's line end is not kept
        }
        return { char: vocab[chosen], p: probs[chosen], id: chosen };
      },
      /** The likeliest next characters after what was sampled so far: [{char, p}] (k of them). */
      top(k) {
        const copy = net.copyState(state);
        const l = new Float64Array(net.V);
        net.step(id, copy, l, null);
        return topOf(softmax(l, new Float64Array(net.V), 1), k, vocab);
      },
      /** Continue from ``char`` instead of what the model would draw (steer mode). */
      force(char) {
        net.step(id, state, logits, null);
        id = vocab.indexOf(char);
        remaining = Math.max(remaining, 1);
        done = false;
      },
      /** A sampler of its own that goes on from here (the state copied). */
      fork() {
        const forked = model.sampler(Object.assign({}, o, { prime: "", seedChar: "" }));
        forked.adopt(net.copyState(state), id);
        return forked;
      },
      adopt(newState, newId) {
        for (let l = 0; l < state.length; l++) {
          for (let k = 0; k < state[l].length; k++) state[l][k].set(newState[l][k]);
        }
        id = newId;
        pending = [];
        done = false;
      },
    };
  };

  /** One draw from softmax(logits / T), kept to the top k and the top p; ``random`` in [0, 1). */
  function draw(logits, temperature, topK, topP, random, order) {
    const V = logits.length;
    const probs = softmax(logits, new Float64Array(V), temperature);
    if ((topK && topK < V) || topP) {
      order.sort((a, b) => probs[b] - probs[a] || a - b);
      let keep = topK && topK < V ? topK : V;
      if (topP) {
        let kept = 0;
        for (let r = 0; r < keep; r++) kept += probs[order[r]];
        let mass = 0;
        for (let r = 0; r < keep; r++) {
          if (mass >= topP * kept) {
            keep = r;
            break;
          }
          mass += probs[order[r]];
        }
      }
      for (let r = keep; r < V; r++) probs[order[r]] = 0;
    }
    let total = 0;
    for (let v = 0; v < V; v++) total += probs[v];
    let u = random() * total;
    let last = 0;
    for (let v = 0; v < V; v++) {
      if (probs[v] > 0) {
        last = v;
        u -= probs[v];
        if (u < 0) return v;
      }
    }
    return last;
  }

  /** The k likeliest of ``probs``: [{char, p, id}], likeliest first. */
  function topOf(probs, k, vocab) {
    const ids = Array.from({ length: probs.length }, (_, v) => v);
    ids.sort((a, b) => probs[b] - probs[a] || a - b);
    return ids.slice(0, k).map((v) => ({ char: vocab[v], p: probs[v], id: v }));
  }

  /** A whole sample as a string. */
  Model.prototype.sample = function (options) {
    const s = this.sampler(options);
    let text = "";
    for (let c = s.next(); c !== null; c = s.next()) text += c.char;
    return text;
  };

  // ------------------------------------------------------------------ the public API
  /** window.charrnn: a stable API over the page's model (documented in the README). */
  function makeApi(model) {
    const plain = (rows) => rows.map((r) => Array.from(r));
    return {
      vocab: model.vocab.slice(),
      card: JSON.parse(JSON.stringify(model.data.card || {})),
      kinds: KINDS[model.net.cell].slice(),
      sample: (options) => model.sample(options || {}),
      probabilities: (text) => plain(model.probabilities(text)),
      states: (text, layer, state) => plain(model.states(text, layer, state)),
      model,
    };
  }

  global.CharRNNEngine = { Model, Random, KINDS, softmax, topOf, makeApi, MIN_TEMPERATURE };
})(typeof window !== "undefined" ? window : globalThis);
