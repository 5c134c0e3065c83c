// filterbank dashboard: the page of a trained model (filterbank serve RUN)
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var canvas = $("draw"), ctx = canvas.getContext("2d"), info = null;
  var drawing = false, pending = false, busy = false;

  function clear() {
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  }

  function pixels() {
    var d = ctx.getImageData(0, 0, canvas.width, canvas.height).data, n = canvas.width * canvas.height;
    var out = new Array(info.channels * n);
    for (var i = 0; i < n; i++) {
      if (info.channels === 1) {
        out[i] = Math.round((d[4 * i] + d[4 * i + 1] + d[4 * i + 2]) / 3);
      } else {
        for (var c = 0; c < info.channels; c++) out[c * n + i] = d[4 * i + Math.min(c, 2)];
      }
    }
    return out;
  }

  function show(answer) {
    var box = $("probs");
    box.textContent = "";
    answer.probs.forEach(function (p, i) {
      var row = FB.el("div", {"class": "row"}, box);
      FB.el("span", {"class": "name", text: answer.classes[i]}, row);
      var f = FB.el("div", {"class": "fill"}, row);
      f.style.width = Math.max(1, Math.round(p * 200)) + "px";
      FB.el("span", {text: " " + FB.fmt(p, 3)}, row);
    });
    FB.activations(answer.layers, $("activations"));
  }

  function predict() {
    if (!info) return;
    if (busy) { pending = true; return; }  // at most one request in flight; the latest wins
    busy = true; pending = false;
    FB.post("/predict", {pixels: pixels()}, function (code, answer) {
      busy = false;
      if (code === 200) { show(answer); $("message").textContent = ""; }
      else $("message").textContent = "error " + code + ": " + (answer.error || "");
      if (pending) predict();
    });
  }

  function at(e) {
    var r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) / r.width * canvas.width,
            (e.clientY - r.top) / r.height * canvas.height];
  }
  function stroke(e) {
    var p = at(e), pen = +$("pen").value;
    ctx.fillStyle = "#fff";
    ctx.beginPath(); ctx.arc(p[0], p[1], pen * canvas.width / 28, 0, 2 * Math.PI); ctx.fill();
    predict();
  }
  canvas.addEventListener("pointerdown", function (e) { drawing = true; stroke(e); });
  canvas.addEventListener("pointermove", function (e) { if (drawing) stroke(e); });
  window.addEventListener("pointerup", function () { drawing = false; });
  $("clear").onclick = function () { clear(); predict(); };
  $("upload").onchange = function () {
    var file = this.files[0];
    if (!file) return;
    var img = new Image();
    img.onload = function () {
      clear(); ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      URL.revokeObjectURL(img.src); predict();
    };
    img.src = URL.createObjectURL(file);
  };

  FB.post("/info", {}, function (code, answer) {
    if (code !== 200) {
      $("message").textContent = "error " + code + ": " + (answer.error || ""); return;
    }
    info = answer;
    canvas.width = info.size[1]; canvas.height = info.size[0];
    var zoom = Math.max(1, Math.round(280 / Math.max(info.size[0], info.size[1])));
    canvas.style.width = canvas.width * zoom + "px";
    canvas.style.height = canvas.height * zoom + "px";
    clear(); fromUrl(); predict();
  });

  // ?image=<base64 of C*H*W bytes, channel-major, 0..255>: start with that picture in the
  // canvas, as if drawn (e.g. a test image; tools/dashboard_screenshots.py uses it)
  function fromUrl() {
    var b64 = new URLSearchParams(location.search).get("image");
    if (!b64) return;
    var raw;
    try { raw = atob(b64.replace(/-/g, "+").replace(/_/g, "/")); } catch (e) { raw = ""; }
    var n = canvas.width * canvas.height;
    if (raw.length !== info.channels * n) {
      $("message").textContent = "?image= must hold " + info.channels * n + " bytes, got " +
        raw.length; return;
    }
    var img = ctx.createImageData(canvas.width, canvas.height);
    for (var i = 0; i < n; i++) {
      for (var c = 0; c < 3; c++) {
        img.data[4 * i + c] = raw.charCodeAt(Math.min(c, info.channels - 1) * n + i);
      }
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }
})();
