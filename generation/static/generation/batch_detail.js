// Batch page: poll the API while the batch runs and update the progress bar, counts and tiles in place.
(function () {
  "use strict";
  const root = document.getElementById("batch");
  const grid = document.getElementById("grid");
  const labels = JSON.parse(document.getElementById("status-labels-data").textContent);
  const POLL_MS = 1500;
  let active = root.dataset.active === "true";

  function setProgress(progress) {
    const percent = Math.round(progress * 100);
    document.getElementById("bar-fill").style.width = percent + "%";
    document.getElementById("percent").textContent = percent + "%";
    root.querySelector("[role=progressbar]").setAttribute("aria-valuenow", percent);
  }

  function renderBatch(batch) {
    setProgress(batch.progress);
    for (const key of ["total", "completed", "failed", "cancelled", "pending"]) {
      document.getElementById("count-" + key).textContent = batch[key];
    }
    if (batch.cost_usd !== null && batch.cost_usd !== undefined) {
      document.getElementById("count-cost").textContent = "US$" + Number(batch.cost_usd).toFixed(4);
    }
    const badge = document.querySelector("#batch-status .status");
    badge.className = "status status-" + batch.status;
    badge.dataset.status = batch.status;
    badge.textContent = labels[batch.status] || batch.status;
    active = batch.status === "queued" || batch.status === "running" || batch.status === "paused";
    document.getElementById("cancel-form").hidden = !active;
    document.getElementById("pause-form").hidden = !active || batch.paused;
    document.getElementById("resume-form").hidden = !active || !batch.paused;
    document.getElementById("retry-form").hidden = active || batch.failed + batch.cancelled === 0;
    renderQueueNote(batch);
  }

  function duration(seconds) {
    const lang = document.documentElement.lang || "en";
    const [value, unit] =
      seconds < 60 ? [Math.max(1, Math.round(seconds)), "second"]
      : seconds < 3600 ? [Math.ceil(seconds / 60), "minute"]
      : [Math.round(seconds / 360) / 10, "hour"];
    return new Intl.NumberFormat(lang, { style: "unit", unit: unit, unitDisplay: "long" }).format(value);
  }

  function renderQueueNote(batch) {
    const note = document.getElementById("queue-note");
    const parts = [];
    if (batch.paused && active) {
      parts.push(note.dataset.paused);
    } else if (batch.queue_position === 0) {
      parts.push(note.dataset.running);
    } else if (batch.queue_position) {
      parts.push(note.dataset.waiting.replace("__N__", batch.queue_position - 1));
    }
    if (active && !batch.paused && batch.eta_seconds !== null && batch.eta_seconds !== undefined) {
      parts.push(note.dataset.eta.replace("__TIME__", duration(batch.eta_seconds)));
    }
    note.textContent = parts.join(" ");
  }

  function renderTile(generation) {
    const tile = grid.querySelector('[data-id="' + generation.id + '"]');
    if (!tile || tile.dataset.status === generation.status) return;
    tile.dataset.status = generation.status;
    tile.className = "tile tile-" + generation.status;
    const link = tile.querySelector("a");
    link.replaceChildren();
    if (generation.thumbnail_url) {
      const img = document.createElement("img");
      img.src = generation.thumbnail_url;
      img.alt = generation.prompt.slice(0, 120);
      img.width = 256;
      img.height = 256;
      link.appendChild(img);
    } else {
      const placeholder = document.createElement("span");
      placeholder.className = "placeholder";
      placeholder.textContent = labels[generation.status] || generation.status;
      if (generation.error && generation.status !== "cancelled") {
        placeholder.appendChild(document.createElement("br"));
        const code = document.createElement("small");
        code.textContent = generation.error.code;
        placeholder.appendChild(code);
      }
      link.appendChild(placeholder);
    }
    const caption = tile.querySelector(".caption");
    if (generation.cached && caption && !caption.querySelector(".cached-badge")) {
      const badge = document.createElement("span");
      badge.className = "status cached-badge";
      badge.textContent = grid.dataset.cachedLabel;
      badge.title = grid.dataset.cachedTitle;
      caption.prepend(badge, " ");
    }
  }

  async function fetchJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(response.status);
    return response.json();
  }

  async function poll() {
    try {
      const [batch, generations] = await Promise.all([
        fetchJson(root.dataset.batchUrl),
        fetchJson(root.dataset.generationsUrl),
      ]);
      renderBatch(batch);
      generations.results.forEach(renderTile);
    } catch (error) {
      // A failed poll (server restarting, network blip) is simply tried again.
    }
    if (active) window.setTimeout(poll, POLL_MS);
  }

  setProgress(parseFloat(document.getElementById("bar-fill").dataset.progress));
  const eta = document.getElementById("eta");
  if (eta) {
    const note = document.getElementById("queue-note");
    eta.textContent = note.dataset.eta.replace("__TIME__", duration(Number(eta.dataset.seconds)));
  }
  if (active) window.setTimeout(poll, POLL_MS);
})();
