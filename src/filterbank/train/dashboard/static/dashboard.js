// filterbank dashboard: helpers shared by the training and the model pages (plain JS)
"use strict";
window.onerror = function (msg, src, line, col) {
  var el = document.getElementById("js-errors");
  if (el) el.textContent += msg + " (" + src + ":" + line + ":" + col + ")\n";
};
window.addEventListener("unhandledrejection", function (e) {
  var el = document.getElementById("js-errors");
  if (el) el.textContent += "unhandled rejection: " + e.reason + "\n";
});

var FB = {};
FB.token = new URLSearchParams(location.search).get("token") || "";

FB.el = function (tag, attrs, parent) {
  var e = document.createElement(tag);
  for (var k in attrs || {}) {
    if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
  }
  if (parent) parent.appendChild(e);
  return e;
};

FB.fmt = function (v, digits) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2)
    : v.toFixed(digits === undefined ? 4 : digits);
};

FB.duration = function (s) {
  if (s === null || s === undefined) return "–";
  s = Math.round(s);
  var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? h + "h" : "") + (h || m ? m + "m" : "") + r + "s";
};

// base64 of uint8 values -> Uint8Array
FB.bytes = function (pic) {
  var raw = atob(pic.data), out = new Uint8Array(raw.length);
  for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
};

// one grey (or RGB when rgb) canvas of h x w values starting at offset, scaled up by zoom
FB.canvas = function (values, offset, h, w, zoom, rgb, parent) {
  var c = FB.el("canvas", {"class": "grid", width: w, height: h}, parent);
  c.style.width = (w * zoom) + "px";
  c.style.height = (h * zoom) + "px";
  var ctx = c.getContext("2d"), img = ctx.createImageData(w, h), n = h * w;
  for (var i = 0; i < n; i++) {
    var r = values[offset + i];
    var g = rgb ? values[offset + n + i] : r, b = rgb ? values[offset + 2 * n + i] : r;
    img.data[4 * i] = r; img.data[4 * i + 1] = g; img.data[4 * i + 2] = b;
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return c;
};

// the pictures of an array of shape (C, H, W), (H, W) or (F,): one canvas per channel
FB.grid = function (pic, parent, size) {
  var v = FB.bytes(pic), s = pic.shape;
  if (s.length === 1) return [FB.canvas(v, 0, 1, s[0], Math.max(1, Math.floor(400 / s[0])) || 1,
                                        false, parent)];
  if (s.length === 2) s = [1, s[0], s[1]];
  var zoom = Math.max(1, Math.round((size || 56) / Math.max(s[1], s[2])));
  var out = [];
  for (var c = 0; c < s[0]; c++) out.push(FB.canvas(v, c * s[1] * s[2], s[1], s[2], zoom, false,
                                                    parent));
  return out;
};

// the layer-by-layer activations of one image
FB.activations = function (rows, box) {
  box.textContent = "";
  rows.forEach(function (r) {
    var d = FB.el("div", {"class": "layer"}, box);
    FB.el("div", {"class": "title", text: r.name + " (" + r.type + ") " + r.shape.join("×") +
      "  min " + FB.fmt(r.min, 3) + " max " + FB.fmt(r.max, 3) + " mean " + FB.fmt(r.mean, 3) +
      (r.params ? "  params " + r.params : "")}, d);
    FB.grid(r.grid, d, r.shape.length === 3 ? 48 : 56).forEach(function (c) {
      c.setAttribute("data-layer", r.name);
    });
  });
};

// a line chart: series = [{name, cls, points: [[x, y], ...]}]
FB.chart = function (svg, series, label) {
  var W = 420, H = 200, L = 42, B = 20, ns = "http://www.w3.org/2000/svg";
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.setAttribute("width", W); svg.setAttribute("height", H);
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  var xs = [], ys = [];
  series.forEach(function (s) {
    s.points.forEach(function (p) {
      if (p[1] !== null && isFinite(p[1])) { xs.push(p[0]); ys.push(p[1]); }
    });
  });
  var t = document.createElementNS(ns, "text");
  t.setAttribute("x", L); t.setAttribute("y", 12); t.textContent = label;
  svg.appendChild(t);
  if (!xs.length) return;
  var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
  var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 = y0 + 1e-3; y0 -= 1e-3; }
  function px(x) { return L + (x - x0) / (x1 - x0) * (W - L - 8); }
  function py(y) { return H - B - (y - y0) / (y1 - y0) * (H - B - 18); }
  [[y0, py(y0)], [y1, py(y1)]].forEach(function (a) {
    var tx = document.createElementNS(ns, "text");
    tx.setAttribute("x", 2); tx.setAttribute("y", a[1] + 3); tx.textContent = FB.fmt(a[0], 3);
    svg.appendChild(tx);
  });
  var ax = document.createElementNS(ns, "line");
  ax.setAttribute("class", "axis"); ax.setAttribute("x1", L); ax.setAttribute("x2", W - 8);
  ax.setAttribute("y1", H - B); ax.setAttribute("y2", H - B); svg.appendChild(ax);
  series.forEach(function (s) {
    var d = "", n = 0;
    s.points.forEach(function (p) {
      if (p[1] === null || !isFinite(p[1])) return;
      d += (n ? "L" : "M") + px(p[0]).toFixed(1) + "," + py(p[1]).toFixed(1);
      n++;
    });
    if (!n) return;
    if (n === 1) d += "h1";
    var path = document.createElementNS(ns, "path");
    path.setAttribute("class", s.cls); path.setAttribute("d", d);
    path.setAttribute("data-series", s.name); path.setAttribute("data-points", n);
    svg.appendChild(path);
  });
};

// POST JSON with the page's token; calls done(status, answer)
FB.post = function (path, body, done) {
  var xhr = new XMLHttpRequest();
  xhr.open("POST", path + "?token=" + encodeURIComponent(FB.token));
  xhr.setRequestHeader("Content-Type", "application/json");
  xhr.onload = function () {
    var answer = {};
    try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = {}; }
    done(xhr.status, answer);
  };
  xhr.onerror = function () { done(0, {error: "no answer from the server"}); };
  xhr.send(JSON.stringify(body || {}));
};
