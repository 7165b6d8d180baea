// Batch page: poll the API while the batch runs and update the progress bar, counts, tiles and tab
// title in place. One request per poll (the tiles are fetched only when the counts moved); slower
// while the tab is hidden; on 429 it waits for Retry-After and says so; opt-in notification at the end.
(function () {
  "use strict";
  const root = document.getElementById("batch");
  const grid = document.getElementById("grid");
  const message = document.getElementById("live-message");
  const notifyButton = document.getElementById("notify-toggle");
  const labels = JSON.parse(document.getElementById("status-labels-data").textContent);
  const POLL_MS = 1500;
  const HIDDEN_POLL_MS = 15000;
  const MAX_BACKOFF_MS = 60000;
  const NOTIFY_KEY = "imagegen-notify-batch-end";
  const baseTitle = document.title;
  let active = root.dataset.active === "true";
  let failures = 0;
  let lastFinished = null;
  let timer = null;

  class PollError extends Error {
    constructor(status, retryAfter) {
      super("HTTP " + status);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  function setProgress(progress) {
    const percent = Math.round(progress * 100);
    document.getElementById("bar-fill").style.width = percent + "%";
    document.getElementById("percent").textContent = percent + "%";
    root.querySelector("[role=progressbar]").setAttribute("aria-valuenow", percent);
    return percent;
  }

  function renderTitle(percent) {
    document.title = active ? "(" + percent + "%) " + baseTitle : baseTitle;
  }

  function renderBatch(batch) {
    const percent = setProgress(batch.progress);
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
    const wasActive = active;
    active = batch.status === "queued" || batch.status === "running" || batch.status === "paused";
    document.getElementById("cancel-form").hidden = !active;
    document.getElementById("pause-form").hidden = !active || batch.paused;
    document.getElementById("resume-form").hidden = !active || !batch.paused;
    document.getElementById("retry-form").hidden = active || batch.failed + batch.cancelled === 0;
    renderQueueNote(batch);
    renderTitle(percent);
    if (wasActive && !active) batchEnded(batch);
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
      img.loading = "lazy";
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
    if (!response.ok) {
      const retryAfter = parseInt(response.headers.get("Retry-After") || "", 10);
      throw new PollError(response.status, Number.isFinite(retryAfter) ? retryAfter : null);
    }
    return response.json();
  }

  function showMessage(template, delayMs) {
    message.textContent = template.replace("__N__", Math.ceil(delayMs / 1000));
    message.hidden = false;
  }

  function nextDelay(error) {
    if (!error) {
      failures = 0;
      message.hidden = true;
      return document.visibilityState === "hidden" ? HIDDEN_POLL_MS : POLL_MS;
    }
    failures += 1;
    const backoff = Math.min(MAX_BACKOFF_MS, POLL_MS * 2 ** failures);
    if (error.status === 429) {
      const delay = error.retryAfter !== null ? Math.max(error.retryAfter * 1000, POLL_MS) : backoff;
      showMessage(message.dataset.rateLimited, delay);
      return delay;
    }
    showMessage(message.dataset.offline, backoff);
    return backoff;
  }

  async function poll() {
    timer = null;
    let error = null;
    try {
      const batch = await fetchJson(root.dataset.batchUrl);
      // The tiles only change when an image finished: fetch them then, not on every poll.
      if (batch.completed + batch.failed + batch.cancelled !== lastFinished) {
        const generations = await fetchJson(root.dataset.generationsUrl);
        generations.results.forEach(renderTile);
        lastFinished = batch.completed + batch.failed + batch.cancelled;
      }
      renderBatch(batch);
    } catch (caught) {
      error = caught instanceof PollError ? caught : new PollError(0, null);
    }
    schedule(nextDelay(error));
  }

  function schedule(delay) {
    if (timer !== null) window.clearTimeout(timer);
    timer = active ? window.setTimeout(poll, delay) : null;
  }

  function notificationsWanted() {
    try {
      return window.localStorage.getItem(NOTIFY_KEY) === "on";
    } catch (error) {
      return false;
    }
  }

  function renderNotifyButton() {
    if (!("Notification" in window) || !active) {
      notifyButton.hidden = true;
      return;
    }
    notifyButton.hidden = false;
    const blocked = Notification.permission === "denied";
    notifyButton.disabled = blocked;
    const on = notificationsWanted() && Notification.permission === "granted";
    notifyButton.setAttribute("aria-pressed", String(on));
    notifyButton.textContent = blocked ? notifyButton.dataset.blocked : on ? notifyButton.dataset.on : notifyButton.dataset.off;
  }

  async function toggleNotifications() {
    let wanted = !(notificationsWanted() && Notification.permission === "granted");
    if (wanted && Notification.permission !== "granted") {
      wanted = (await Notification.requestPermission()) === "granted";
    }
    try {
      window.localStorage.setItem(NOTIFY_KEY, wanted ? "on" : "off");
    } catch (error) {
      // Not remembered: it still applies to this page.
    }
    renderNotifyButton();
  }

  function batchEnded(batch) {
    notifyButton.hidden = true;
    if (!("Notification" in window) || Notification.permission !== "granted" || !notificationsWanted()) return;
    const notification = new Notification(notifyButton.dataset.ended, {
      body: baseTitle.replace(/ · ImageGen$/, "") + ": " + (labels[batch.status] || batch.status),
      tag: "imagegen-batch-" + root.dataset.batchUrl,
    });
    notification.addEventListener("click", function () {
      window.focus();
    });
  }

  document.addEventListener("visibilitychange", function () {
    // Back on the tab: refresh now rather than at the end of the slow hidden-tab interval.
    if (document.visibilityState === "visible" && active && failures === 0) schedule(0);
  });
  notifyButton.addEventListener("click", toggleNotifications);

  renderTitle(setProgress(parseFloat(document.getElementById("bar-fill").dataset.progress)));
  renderNotifyButton();
  const eta = document.getElementById("eta");
  if (eta) {
    const note = document.getElementById("queue-note");
    eta.textContent = note.dataset.eta.replace("__TIME__", duration(Number(eta.dataset.seconds)));
  }
  schedule(POLL_MS);
})();
