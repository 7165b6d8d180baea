// Comparison page: while the arms render, poll the API and fill in images, vote buttons and the summary.
// Backs off when the API says 429 (or fails), and stops while the tab is hidden.
(function () {
  "use strict";
  const root = document.getElementById("comparison");
  const labels = JSON.parse(document.getElementById("status-labels-data").textContent);
  const BASE_MS = 2000;
  const MAX_MS = 60000;
  let delay = BASE_MS;
  let timer = null;
  let active = root.dataset.active === "true";

  function renderCell(row, cell) {
    const figure = document.getElementById("cell-" + row.prompt_index + "-" + cell.arm);
    if (!figure || figure.dataset.status === cell.status) return;
    figure.dataset.status = cell.status || "";
    const frame = figure.querySelector(".cmp-frame");
    frame.replaceChildren();
    if (cell.thumbnail_url) {
      const link = document.createElement("a");
      link.href = cell.image_url;
      link.target = "_blank";
      link.rel = "noopener";
      const img = document.createElement("img");
      img.src = cell.thumbnail_url;
      img.alt = figure.querySelector(".cmp-letter").textContent + ": " + row.prompt.slice(0, 100);
      img.width = 256;
      img.height = 256;
      link.appendChild(img);
      frame.appendChild(link);
    } else {
      const placeholder = document.createElement("span");
      placeholder.className = "placeholder";
      placeholder.textContent = labels[cell.status] || cell.status || "";
      if (cell.error_code && cell.status !== "cancelled") {
        placeholder.appendChild(document.createElement("br"));
        const code = document.createElement("small");
        code.textContent = cell.error_code;
        placeholder.appendChild(code);
      }
      frame.appendChild(placeholder);
    }
  }

  function renderVoting(row) {
    const section = document.querySelector('.cmp-row[data-index="' + row.prompt_index + '"]');
    if (!section || !row.votable) return;
    const succeeded = new Set(row.cells.filter((c) => c.status === "succeeded").map((c) => String(c.arm)));
    for (const button of section.querySelectorAll(".cmp-vote button")) {
      button.disabled = button.value !== "tie" && !succeeded.has(button.value);
    }
    section.querySelector(".cmp-wait").hidden = true;
  }

  function setText(id, text) {
    const element = document.getElementById(id);
    if (element) element.textContent = text;
  }

  function renderSummary(summary) {
    for (const item of summary) {
      const prefix = "sum-" + item.arm + "-";
      setText(prefix + "images", item.images_done + "/" + item.images_total);
      setText(prefix + "cost", item.cost_per_image_usd === null ? "—" : "US$" + Number(item.cost_per_image_usd).toFixed(4));
      setText(prefix + "latency", item.latency_p50_ms === null ? "—" : item.latency_p50_ms + " / " + item.latency_p95_ms + " ms");
      setText(prefix + "failure", item.failure_rate === null ? "—" : (item.failure_rate * 100).toFixed(1) + "%");
    }
  }

  function renderStatus(status) {
    if (status !== "finished") return;
    const badge = document.querySelector("#cmp-status .status");
    badge.className = "status status-completed";
    badge.dataset.status = "completed";
    badge.textContent = root.dataset.finishedLabel;
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = active && !document.hidden ? window.setTimeout(poll, delay) : null;
  }

  async function poll() {
    try {
      const response = await fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.status === 429) {
        const retryAfter = Number(response.headers.get("Retry-After")) * 1000;
        delay = Math.min(MAX_MS, Math.max(delay * 2, retryAfter || 0));
      } else if (!response.ok) {
        delay = Math.min(MAX_MS, delay * 2);
      } else {
        const data = await response.json();
        delay = BASE_MS;
        for (const row of data.rows) {
          row.cells.forEach((cell) => renderCell(row, cell));
          renderVoting(row);
        }
        renderSummary(data.summary);
        renderStatus(data.status);
        active = data.status !== "finished";
      }
    } catch (error) {
      delay = Math.min(MAX_MS, delay * 2); // network blip or server restart: try again later
    }
    schedule();
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && active) poll();
    else schedule();
  });
  schedule();
})();
