// backprop explorer: draw a digit, watch the forward and the backward pass.
//
// Plain JavaScript, no libraries and no build step. The page computes
// nothing itself: every number comes from the server's JSON API (/api/),
// which runs the engine (backprop/app/explorer/session.py). The page draws.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  info: null, // GET /api/model
  strokes: [], // what is drawn on the pad: a list of strokes, each [[x, y], ...]
  pixels: null, // the prepared input the server returned, 784 numbers
  label: null, // the class clicked as the true digit
  pending: 0, // tasks in flight (tests wait for body[data-pending="0"])
};

// --- talking to the server -------------------------------------------------

// POST (or GET, without a body) to the API; returns its JSON or throws an
// Error with the server's {"error": "..."} message.
async function api(path, body, type = "application/json") {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": type },
    body: type === "application/json" ? JSON.stringify(body) : body,
  };
  const response = await fetch(path, options);
  let answer;
  try {
    answer = await response.json();
  } catch {
    throw new Error(`${path}: the server answered ${response.status}, not JSON`);
  }
  if (!response.ok) throw new Error(answer.error || `${path}: ${response.status}`);
  return answer;
}

// Run fn (async) as one task: count it as pending, show its error or none.
async function task(fn) {
  state.pending += 1;
  document.body.dataset.pending = state.pending;
  try {
    await fn();
    showError("");
  } catch (error) {
    showError(error.message);
  } finally {
    state.pending -= 1;
    document.body.dataset.pending = state.pending;
  }
}

function showError(message) {
  $("error").textContent = message;
}

// --- drawing -----------------------------------------------------------------

const pad = $("pad");
const ink = pad.getContext("2d");
let drawing = false;
let lastSent = 0;

function paintPad() {
  ink.fillStyle = "#000";
  ink.fillRect(0, 0, pad.width, pad.height);
  ink.strokeStyle = "#fff";
  ink.lineWidth = 18;
  ink.lineCap = "round";
  ink.lineJoin = "round";
  for (const stroke of state.strokes) {
    ink.beginPath();
    ink.moveTo(...stroke[0]);
    for (const point of stroke) ink.lineTo(...point);
    if (stroke.length === 1) ink.lineTo(stroke[0][0] + 0.1, stroke[0][1]); // a dot
    ink.stroke();
  }
}

function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return [
    ((event.clientX - box.left) * pad.width) / box.width,
    ((event.clientY - box.top) * pad.height) / box.height,
  ];
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  state.strokes.push([padPoint(event)]);
  paintPad();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  state.strokes[state.strokes.length - 1].push(padPoint(event));
  paintPad();
  if (performance.now() - lastSent > 200) predictPad(); // update while drawing
});
for (const name of ["pointerup", "pointercancel"]) {
  pad.addEventListener(name, () => {
    if (!drawing) return;
    drawing = false;
    predictPad();
  });
}
$("undo").addEventListener("click", () => {
  state.strokes.pop();
  paintPad();
  predictPad();
});
$("clear").addEventListener("click", () => {
  state.strokes = [];
  paintPad();
  predictPad();
});

// --- forward: the pad (or an upload) through the model -------------------------

let predicting = false; // one predict request at a time ...
let again = false; // ... and one more if the pad changed meanwhile

function predictPad() {
  lastSent = performance.now();
  if (predicting) {
    again = true;
    return;
  }
  predicting = true;
  task(async () => {
    do {
      again = false;
      if (!state.strokes.length) return showNothing(); // cleared, or all undone
      const png = await new Promise((done) => pad.toBlob(done, "image/png"));
      show(await api("/api/predict", await png.arrayBuffer(), "image/png"));
      if (state.label !== null) await backward();
    } while (again);
  }).finally(() => {
    predicting = false;
  });
}

$("upload").addEventListener("change", () => {
  const file = $("upload").files[0];
  if (!file) return;
  task(async () => {
    const answer = await api("/api/predict", file, "application/octet-stream");
    state.strokes = [];
    paintPad();
    show(answer);
    if (state.label !== null) await backward();
  }).finally(() => {
    $("upload").value = ""; // the same file can be chosen again
  });
});

// Show a forward pass: the prepared input, hidden activations (a CNN: its
// feature maps), probabilities.
function show(answer) {
  state.pixels = answer.prepared;
  heat($("prepared"), answer.prepared, "grey");
  if (state.info.conv) showMaps(answer);
  else cells($("hidden"), answer.hidden.flat(), "activation");
  const best = answer.prediction;
  answer.probabilities.forEach((p, c) => {
    const row = $("probabilities").children[c];
    row.dataset.probability = p;
    row.classList.toggle("predicted", c === best);
    row.querySelector(".bar > span").style.width = `${100 * p}%`;
    row.querySelector(".value").textContent = probability(p, answer.complement[c]);
  });
  $("prediction").textContent = String(best);
  $("step").disabled = state.label === null;
  $("steps").textContent = `${answer.steps} step(s) taken`;
}

// A CNN's first convolution: each kernel K_f (signed) beside its feature map,
// the maps on one grey scale: 0 black, the largest value of all maps white.
function showMaps(answer) {
  const { kernel: [kh, kw], map: [mh, mw] } = state.info.conv;
  const top = Math.max(0, ...answer.maps.flat()) || 1;
  $("maps").replaceChildren(
    ...answer.maps.map((values, f) => {
      const figure = element("figure", { class: "heat", "data-filter": f });
      const kernel = element("canvas", { width: kw, height: kh, title: `K${f}` });
      const map = element("canvas", { width: mw, height: mh, title: `map ${f}` });
      heat(kernel, answer.kernels[f], "signed");
      heat(map, values.map((v) => v / top), "grey");
      const caption = element("figcaption", {}, `filter ${f}: K | its map`);
      figure.append(kernel, " ", map, caption);
      return figure;
    }),
  );
}

function showNothing() {
  state.pixels = null;
  heat($("prepared"), null);
  const gone = ["hidden", "maps", "grad-logits", "grad-hidden", "grad-weights"];
  for (const id of [...gone, "loss", "hint", "grad-scale"]) {
    $(id).replaceChildren();
  }
  for (const row of $("probabilities").children) {
    delete row.dataset.probability;
    row.classList.remove("predicted");
    row.querySelector(".bar > span").style.width = "0";
    row.querySelector(".value").textContent = "";
  }
  $("prediction").textContent = "";
  $("step").disabled = true;
}

// --- backward: the true class, the gradients, one Adam step -----------------------

function choose(label) {
  if (label !== state.label) $("step-result").textContent = ""; // another label's
  state.label = label;
  for (const row of [...$("probabilities").children, ...$("labels").children]) {
    if (row.dataset.class === undefined) continue; // the group's caption
    row.setAttribute("aria-pressed", String(Number(row.dataset.class) === label));
  }
  $("true-label").textContent = `for label y = ${state.info.class_names[label]}`;
  if (state.pixels) task(backward);
}

// The loss of this label, and, when the model is already sure of it, why the
// gradients are tiny and which wrong class to try instead.
function explain(answer) {
  const names = state.info.class_names;
  const y = answer.label;
  const name = names[y];
  $("loss").textContent =
    `loss L = -log p(${name}) = ${number(answer.losses[y])}` +
    ` (p(${name}) = ${probability(answer.probabilities[y], answer.complement[y])})`;
  if (answer.grad_logits[y] === 0 && answer.complement[y] > 0) {
    $("loss").textContent +=
      `. dL/dlogit of ${name} is exactly 0: in ${state.info.dtype}, p(${name}) ` +
      "rounds to 1, and 1 - p above is computed in float64 from the logits.";
  }
  const hint = $("hint");
  hint.replaceChildren();
  if (answer.complement[y] >= 0.01) return; // the model is not sure of y
  const others = answer.probabilities.map((p, c) => [p, c]).filter(([, c]) => c !== y);
  const runnerUp = others.reduce((a, b) => (b[0] > a[0] ? b : a))[1];
  const tryIt = element("button", { id: "try-wrong", "data-class": runnerUp });
  tryIt.textContent = `backpropagate from ${names[runnerUp]}`;
  tryIt.addEventListener("click", () => choose(runnerUp));
  hint.append(
    `The model is already sure this is ${name}: 1 - p(${name}) = ` +
      `${number(answer.complement[y])}, so the loss and every gradient below are ` +
      "tiny and a step barely moves anything. Try a wrong class, as if the true " +
      `digit were another one: `,
    tryIt,
    ` (the runner-up, p = ${number(answer.probabilities[runnerUp])}).`,
  );
}

async function backward() {
  const answer = await api("/api/backward", { pixels: state.pixels, label: state.label });
  explain(answer);
  const biggest = (values) => Math.max(0, ...values.map(Math.abs));
  const conv = state.info.conv; // a CNN's units are its first kernels
  const [w, who, [h, wd]] = conv
    ? ["K", "filter", conv.kernel]
    : ["W1", "unit", [28, 28]];
  const dh = conv ? [] : answer.grad_hidden.flat();
  $("grad-scale").textContent =
    "Bars and colours are relative to the largest value: " +
    `|dL/dlogits| up to ${number(biggest(answer.grad_logits))}, ` +
    (conv ? "" : `|dL/dh| up to ${number(biggest(dh))}, `) +
    `|dL/d${w}| up to ${number(biggest(answer.units.flatMap((u) => u.grad_weights)))}.`;
  const logits = $("grad-logits");
  const scale = Math.max(...answer.grad_logits.map(Math.abs)) || 1;
  logits.replaceChildren(
    ...answer.grad_logits.map((g, c) => {
      const row = element("div", { "data-class": c, "data-value": g });
      const fill = element("span", { class: g < 0 ? "neg" : "pos" });
      const half = (50 * Math.abs(g)) / scale; // bars grow from the middle
      fill.style.left = `${g < 0 ? 50 - half : 50}%`;
      fill.style.width = `${half}%`;
      const bar = element("span", { class: "bar signed" });
      bar.append(fill);
      row.append(element("span", {}, state.info.class_names[c]), bar);
      row.append(element("span", { class: "value" }, number(g)));
      return row;
    }),
  );
  if (!conv) cells($("grad-hidden"), dh, "gradient");
  $("grad-weights").replaceChildren(
    ...answer.units.map((u) => {
      const figure = element("figure", { class: "heat", "data-unit": u.unit });
      const grad = element("canvas", { width: wd, height: h, title: `dL/d${w}` });
      const weights = element("canvas", { width: wd, height: h, title: w });
      heat(grad, u.grad_weights, "signed");
      heat(weights, u.weights, "signed");
      const caption = element("figcaption", {}, `${who} ${u.unit}: dL/d${w} | ${w}`);
      figure.append(grad, " ", weights, caption);
      return figure;
    }),
  );
  $("step").disabled = false;
}

$("step").addEventListener("click", () =>
  task(async () => {
    const label = state.label;
    const answer = await api("/api/step", { pixels: state.pixels, label });
    show(answer);
    const name = state.info.class_names[label];
    const [p0, p1] = [answer.probabilities_before[label], answer.probabilities[label]];
    const [c0, c1] = [answer.complement_before[label], answer.complement[label]];
    const [l0, l1] = [answer.losses_before[label], answer.losses[label]];
    const change = l0 > 0 ? ` (${(100 * (l1 / l0 - 1)).toPrecision(3)}%)` : "";
    const near = Math.min(c0, c1) < 0.005; // both as 1 - c, so they compare
    const shown = (p, c) => (near ? `1 - ${number(c, 6)}` : number(p, 6));
    $("step-result").textContent =
      `p(${name}): ${shown(p0, c0)} -> ${shown(p1, c1)}; ` +
      `loss ${number(l0, 6)} -> ${number(l1, 6)}${change}`;
    await backward();
  }),
);

$("reset").addEventListener("click", () =>
  task(async () => {
    await api("/api/reset", {});
    $("steps").textContent = "0 step(s) taken";
    $("step-result").textContent = "";
    if (state.pixels) show(await api("/api/predict", { pixels: state.pixels }));
    if (state.pixels && state.label !== null) await backward();
  }),
);

// --- drawing numbers ---------------------------------------------------------------

// A number that reads at any size: `digits` decimals from 0.01 up, below that
// scientific notation with as many significant digits (2.5e-9, not 0.0000).
function number(v, digits = 4) {
  if (v === 0) return "0";
  const size = Math.abs(v);
  return size >= 0.01 && size < 1e4 ? v.toFixed(digits) : v.toExponential(digits - 1);
}

// A probability p, given also 1 - p in float64 (the server's "complement"):
// near 1, as 1 - that (1 - 2.5e-9), since p itself reads 1.0000.
function probability(p, complement, digits = 4) {
  if (complement < 0.005) return complement === 0 ? "1" : `1 - ${number(complement, digits)}`;
  return number(p, digits);
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

// Paint a square canvas from values, row by row: "grey" for inputs in [0, 1],
// "signed" for red (positive) and blue (negative) around white zero.
function heat(canvas, values, kind) {
  const paint = canvas.getContext("2d");
  if (!values) {
    paint.clearRect(0, 0, canvas.width, canvas.height);
    return;
  }
  const image = paint.createImageData(canvas.width, canvas.height);
  const scale = kind === "signed" ? Math.max(...values.map(Math.abs)) || 1 : 1;
  values.forEach((v, i) => {
    const [r, g, b] = kind === "signed" ? signed(v / scale) : [255 * v, 255 * v, 255 * v];
    image.data.set([r, g, b, 255], 4 * i);
  });
  paint.putImageData(image, 0, 0);
}

function signed(t) {
  const fade = 255 * (1 - Math.min(1, Math.abs(t)));
  return t >= 0 ? [255, fade, fade] : [fade, fade, 255];
}

// One small square per value (hidden units), its colour and title the value.
function cells(container, values, what) {
  const signedScale = Math.max(...values.map(Math.abs)) || 1;
  container.replaceChildren(
    ...values.map((v, j) => {
      const cell = element("div", { "data-unit": j, "data-value": v });
      cell.title = `unit ${j}: ${what} ${number(v)}`;
      const [r, g, b] = signed(v / signedScale);
      cell.style.background = `rgb(${r}, ${g}, ${b})`;
      return cell;
    }),
  );
}

// --- the run tab: curves and diagnostics as small SVG charts ------------------------

const COLOURS = ["#c33", "#36c", "#393", "#c80", "#839"];

// A line chart: series is [{name, points: [[x, y], ...]}]; log: a log10 y axis;
// range: a fixed [low, high] for y.
function chart(title, series, { log = false, range = null } = {}) {
  const [w, h, left, bottom] = [300, 180, 48, 24];
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  const f = (y) => (log ? Math.log10(y) : y);
  const points = series.flatMap((s) => s.points).filter(([, y]) => !log || y > 0);
  if (!points.length) return element("p", { class: "note" }, `${title}: no data`);
  const xs = points.map(([x]) => x), ys = points.map(([, y]) => f(y));
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1]; // one epoch: a dot in the middle
  let [y0, y1] = range || [Math.min(...ys), Math.max(...ys)];
  if (y0 === y1) [y0, y1] = [y0 - Math.abs(y0) / 10 - 0.1, y1 + Math.abs(y1) / 10 + 0.1];
  const px = (x) => left + ((x - x0) / (x1 - x0)) * (w - left - 10);
  const py = (y) => h - bottom - ((f(y) - y0) / (y1 - y0)) * (h - bottom - 10);
  const svgEl = (tag, attrs, text) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
  };
  svgEl("line", { x1: left, y1: h - bottom, x2: w - 10, y2: h - bottom, stroke: "#999" });
  svgEl("line", { x1: left, y1: 10, x2: left, y2: h - bottom, stroke: "#999" });
  const label = (y) => (log ? (10 ** y).toExponential(1) : y.toPrecision(3));
  svgEl("text", { x: 2, y: 14 }, label(y1));
  svgEl("text", { x: 2, y: h - bottom }, label(y0));
  svgEl("text", { x: left, y: h - 8 }, `epoch ${Math.min(...xs)}`);
  svgEl("text", { x: w - 30, y: h - 8 }, `${Math.max(...xs)}`);
  series.forEach((s, k) => {
    const kept = s.points.filter(([, y]) => !log || y > 0);
    const colour = COLOURS[k % COLOURS.length];
    const path = kept.map(([x, y]) => `${px(x)},${py(y)}`).join(" ");
    svgEl("polyline", { points: path, fill: "none", stroke: colour, "stroke-width": 2 });
    for (const [x, y] of kept) svgEl("circle", { cx: px(x), cy: py(y), r: 2.5, fill: colour });
    svgEl("text", { x: w - 80, y: 14 + 12 * k, fill: colour }, s.name);
  });
  const figure = element("figure");
  figure.append(element("figcaption", {}, title), svg);
  return figure;
}

async function showRun() {
  const { history } = await api("/api/history");
  $("run-info").textContent = history.length
    ? `${history.length} epoch(s) in this model's history`
    : "this model has no training history";
  const along = (key) => history.map((r) => [r.epoch, r[key]]);
  $("curves").replaceChildren(
    chart("loss", [
      { name: "train", points: along("train_loss") },
      { name: "test", points: along("test_loss") },
    ]),
    chart("accuracy", [
      { name: "train", points: along("train_accuracy") },
      { name: "test", points: along("test_accuracy") },
    ]),
  );
  const runs = history.filter((r) => r.diagnostics && Object.keys(r.diagnostics).length);
  const layers = runs.length ? Object.keys(runs[runs.length - 1].diagnostics) : [];
  const per = (key) =>
    layers
      .map((layer) => ({
        name: layer,
        points: runs
          .filter((r) => r.diagnostics[layer] && key in r.diagnostics[layer])
          .map((r) => [r.epoch, r.diagnostics[layer][key]]),
      }))
      .filter((s) => s.points.length);
  $("diagnostics").replaceChildren(
    ...(runs.length
      ? [
          chart("mean gradient norm", per("grad_norm"), { log: true }),
          chart("update / weight ratio", per("update_ratio"), { log: true }),
          chart("dead ReLUs (fraction)", per("dead_fraction"), { range: [0, 1] }),
        ]
      : [element("p", { class: "note" }, "no diagnostics in this run's history")]),
  );
}

function showTab(run) {
  $("tab-draw").setAttribute("aria-selected", String(!run));
  $("tab-run").setAttribute("aria-selected", String(run));
  $("draw-panel").hidden = run;
  $("run-panel").hidden = !run;
  if (run) task(showRun);
}
$("tab-draw").addEventListener("click", () => showTab(false));
$("tab-run").addEventListener("click", () => showTab(true));

// --- start: the model, and one row per class --------------------------------------

task(async () => {
  const info = await api("/api/model");
  state.info = info;
  document.body.dataset.model = info.model; // the CSS shows this model's view
  const name = info.conv ? `${info.conv.layers} CNN` : `${info.sizes.join("-")} MLP`;
  $("model-info").textContent =
    `${name} (${info.dtype}) from ${info.source}; ` +
    `its steps here: Adam (${info.adam}), lr ${info.lr}`;
  $("probabilities").replaceChildren(
    ...info.class_names.map((name, c) => {
      const row = element("button", { "data-class": c, "aria-pressed": "false" });
      const bar = element("span", { class: "bar" });
      bar.append(element("span"));
      row.append(element("span", { class: "name" }, name), bar);
      row.append(element("span", { class: "value" }));
      row.addEventListener("click", () => choose(c));
      return row;
    }),
  );
  $("labels").append(
    ...info.class_names.map((name, c) => {
      const button = element("button", { "data-class": c, "aria-pressed": "false" }, name);
      button.addEventListener("click", () => choose(c));
      return button;
    }),
  );
  paintPad();
});
