// filterbank dashboard: the training page
"use strict";
(function () {
  var points = [], epochs = [], classes = null, samples = null, dirty = false;
  var $ = function (id) { return document.getElementById(id); };

  function status(p) {
    $("epoch").textContent = p.epoch; $("step").textContent = p.step;
    $("loss").textContent = FB.fmt(p.loss); $("accuracy").textContent = FB.fmt(p.accuracy);
    $("lr").textContent = FB.fmt(p.lr, 6); $("ips").textContent = FB.fmt(p.images_per_sec, 0);
    $("epoch-eta").textContent = FB.duration(p.epoch_eta); $("eta").textContent = FB.duration(p.eta);
  }

  function draw() {
    if (!dirty) return;
    dirty = false;
    var val = function (key) {
      return epochs.map(function (e) { return [e.step, e[key]]; });
    };
    FB.chart($("loss-curve"), [
      {name: "loss", cls: "train", points: points.map(function (p) { return [p.step, p.loss]; })},
      {name: "val_loss", cls: "val", points: val("val_loss")}], "loss (blue: train, red: val)");
    FB.chart($("acc-curve"), [
      {name: "accuracy", cls: "train", points: val("accuracy")},
      {name: "val_accuracy", cls: "val", points: val("val_accuracy")}],
      "accuracy per epoch (blue: train, red: val)");
    FB.chart($("ips-curve"), [{name: "images_per_sec", cls: "train",
      points: points.map(function (p) { return [p.step, p.images_per_sec]; })}], "images/s");
  }
  setInterval(draw, 250);

  function filters(rows) {
    var box = $("filters");
    box.textContent = "";
    rows.forEach(function (r) {
      var d = FB.el("div", {"class": "layer"}, box), s = r.grid.shape;
      var g = r.grad_norm ? Math.max.apply(null, r.grad_norm) : null;
      FB.el("div", {"class": "title", text: r.name + " " + r.shape.join("×") + "  weights " +
        FB.fmt(r.min, 3) + ".." + FB.fmt(r.max, 3) + "  largest gradient norm " + FB.fmt(g)}, d);
      var v = FB.bytes(r.grid), n = s[1] * s[2] * s[3], zoom = Math.max(2, Math.round(24 / s[2]));
      var gv = r.grad ? FB.bytes(r.grad) : null, row2 = FB.el("div", {}, d);
      for (var o = 0; o < s[0]; o++) {
        FB.canvas(v, o * n, s[2], s[3], zoom, s[1] === 3, d).setAttribute("data-filter", r.name);
        if (gv) FB.canvas(gv, o * n, s[2], s[3], zoom, false, row2);
      }
    });
  }

  function predictions(rows) {
    var box = $("predictions");
    box.textContent = "";
    rows.forEach(function (r, i) {
      var d = FB.el("div", {"class": "pred"}, box);
      if (samples) FB.grid(samples[i], d, 32);
      var bars = FB.el("div", {"class": "bars"}, d);
      r.top.forEach(function (c, j) {
        var right = r.label !== undefined && c === r.label;
        var b = FB.el("div", {"class": "bar " + (right ? "right" : "wrong")}, bars);
        b.style.width = Math.max(1, Math.round(r.probs[j] * 100)) + "%";
        FB.el("span", {text: (classes ? classes[c] : c) + " " + FB.fmt(r.probs[j], 2)}, b);
      });
    });
  }

  function pictures(p) {
    if (p.activations) FB.activations(p.activations, $("activations"));
    else $("activations").textContent = "no image yet";
    filters(p.filters || []);
    if (p.predictions) predictions(p.predictions);
  }

  // ?snapshot=1 in the page's URL: the state so far, no live stream (for headless browsers)
  var snapshot = new URLSearchParams(location.search).has("snapshot");
  var es = new EventSource(snapshot ? "/events?snapshot=1" : "/events");
  es.addEventListener("hello", function (e) {
    var s = JSON.parse(e.data);
    points = s.points || []; classes = s.classes;
    samples = s.samples ? s.samples.images : null;
    epochs = s.epochs || [];
    if (points.length) status(points[points.length - 1]);
    if (s.pictures) pictures(s.pictures);
    $("state").textContent = s.paused ? "paused" : "training";
    dirty = true;
  });
  es.addEventListener("progress", function (e) {
    var p = JSON.parse(e.data);
    points.push(p); status(p); dirty = true;
  });
  es.addEventListener("epoch", function (e) {
    var row = JSON.parse(e.data);
    epochs = epochs.filter(function (r) { return r.epoch !== row.epoch; });
    epochs.push(row); dirty = true;
  });
  es.addEventListener("pictures", function (e) { pictures(JSON.parse(e.data)); });
  es.addEventListener("control", function (e) {
    var c = JSON.parse(e.data);
    $("state").textContent = c.paused ? "paused" : "training";
    $("lr").textContent = FB.fmt(c.lr, 6);
  });
  es.addEventListener("saved", function (e) {
    var s = JSON.parse(e.data);
    $("message").textContent = s.error ? "save failed: " + s.error : "saved " + s.path;
  });
  es.addEventListener("end", function () {
    $("state").textContent = "finished"; es.close(); dirty = true; draw();
  });
  es.onerror = function () {
    if (snapshot) { es.close(); dirty = true; draw(); return; }
    if ($("state").textContent !== "finished") $("state").textContent = "disconnected";
  };

  function control(path, body) {
    FB.post(path, body, function (code, answer) {
      $("message").textContent = code === 202 ? "sent: " + answer.queued
        : "error " + code + ": " + (answer.error || "");
    });
  }
  $("pause").onclick = function () { control("/control/pause"); };
  $("resume").onclick = function () { control("/control/resume"); };
  $("save").onclick = function () { control("/control/save"); };
  $("set-lr").onclick = function () { control("/control/lr", {lr: $("lr-input").value}); };
  if (!FB.token) $("message").textContent = "no token in the URL: the controls will be refused";
})();
