/* Staff monitoring dashboard: polls /monitoring/data and draws it with Chart.js (served locally). */
(function () {
  "use strict";
  const root = document.getElementById("dashboard");
  if (!root || !window.Chart) return;
  const text = document.getElementById("i18n").dataset;
  const REFRESH_MS = 30000;
  const COLORS = ["#4f46e5", "#12805c", "#c01048", "#b54708", "#0e7490", "#7c3aed", "#64748b"];
  const charts = {};
  let range = root.dataset.range;
  let timer = null;

  const locale = document.documentElement.lang || undefined;
  const fmtNumber = (value, digits = 0) =>
    value === null || value === undefined ? "–" : Number(value).toLocaleString(locale, { maximumFractionDigits: digits });
  const fmtDuration = (seconds) => {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 90) return `${Math.round(seconds)} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
    return `${(seconds / 86400).toFixed(1)} d`;
  };
  const mib = (bytes) => (bytes === null || bytes === undefined ? null : Math.round(bytes / 1048576));
  const fmtLabel = (iso) => {
    const date = new Date(iso);
    const options = range === "hour" ? { hour: "2-digit", minute: "2-digit" }
      : range === "day" ? { hour: "2-digit", minute: "2-digit" }
      : { month: "numeric", day: "numeric", hour: "2-digit" };
    return date.toLocaleString(locale, options);
  };

  function dataset(label, data, index, extra = {}) {
    const color = COLORS[index % COLORS.length];
    return { label, data, borderColor: color, backgroundColor: color + "33", borderWidth: 2, pointRadius: 2, pointHoverRadius: 4,
      tension: 0.25, spanGaps: true, ...extra };
  }

  function draw(id, labels, datasets, options = {}) {
    const canvas = document.getElementById(id);
    if (charts[id]) {
      charts[id].data.labels = labels;
      charts[id].data.datasets = datasets;
      charts[id].update("none");
      return;
    }
    charts[id] = new window.Chart(canvas, {
      type: options.type || "line",
      data: { labels, datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
        scales: {
          x: { ticks: { maxTicksLimit: 8, autoSkip: true }, grid: { display: false }, stacked: !!options.stacked },
          y: { beginAtZero: true, stacked: !!options.stacked },
          ...(options.y2 ? { y2: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } } } : {}),
        },
      },
    });
  }

  function perProvider(series) {
    return Object.entries(series || {}).map(([name, values], index) => dataset(name, values, index));
  }

  function drawCharts(data) {
    const labels = data.labels.map(fmtLabel);
    const req = data.requests, sys = data.system, gen = data.generations;
    const ds = (id) => document.getElementById(id).dataset;
    draw("chart-requests", labels, [dataset(ds("chart-requests").labelRequests, req.requests_per_minute, 0, { fill: true })]);
    draw("chart-latency", labels, [dataset("p50", req.p50_ms, 1), dataset("p95", req.p95_ms, 0), dataset("p99", req.p99_ms, 2)]);
    draw("chart-errors", labels, [dataset(ds("chart-errors").labelErrors, req.error_rate, 2, { fill: true })]);
    const queue = ds("chart-queue");
    draw("chart-queue", labels, [
      dataset(queue.labelQueued, sys.queued, 0), dataset(queue.labelRunning, sys.running, 1),
      dataset(queue.labelAge, sys.oldest_queued_seconds, 3, { yAxisID: "y2", borderDash: [4, 3] }),
    ], { y2: true });
    const images = ds("chart-images");
    draw("chart-images", labels, [
      dataset(images.labelImages, gen.images_per_minute, 1, { fill: true }),
      dataset(images.labelFailed, gen.failed_per_minute, 2),
    ]);
    draw("chart-provider-latency", labels, perProvider(gen.provider_p95_ms));
    draw("chart-provider-errors", labels, perProvider(gen.provider_errors).map((d) => ({ ...d, backgroundColor: d.borderColor })),
      { type: "bar", stacked: true });
    const system = ds("chart-system");
    draw("chart-system", labels, [
      dataset(system.labelCpu, sys.cpu_percent, 0), dataset(system.labelMemory, sys.memory_percent, 1),
      dataset(system.labelWeb, sys.web_rss_bytes.map(mib), 4, { yAxisID: "y2", borderDash: [4, 3] }),
      dataset(system.labelWorker, sys.worker_rss_bytes.map(mib), 5, { yAxisID: "y2", borderDash: [4, 3] }),
    ], { y2: true });
  }

  function fillTable(id, rows, cells) {
    const body = document.querySelector(`#${id} tbody`);
    const columns = document.querySelectorAll(`#${id} thead th`).length;
    body.replaceChildren();
    if (!rows.length) {
      const tr = body.insertRow(), td = tr.insertCell();
      td.colSpan = columns; td.className = "empty-row"; td.textContent = text.empty;
      return;
    }
    for (const row of rows) {
      const tr = body.insertRow();
      for (const [value, className] of cells(row)) {
        const td = tr.insertCell();
        td.textContent = value;
        if (className) td.className = className;
      }
    }
  }

  function fillTables(data) {
    const t = data.tables;
    fillTable("table-routes", t.slowest_routes, (r) => [[`${r.method} ${r.route}`], [fmtNumber(r.count), "num"],
      [fmtNumber(r.p95_ms, 1), "num"], [fmtNumber(r.mean_ms, 1), "num"], [fmtNumber(r.max_ms, 1), "num"], [fmtNumber(r.server_errors), "num"]]);
    fillTable("table-providers", t.providers, (r) => [[`${r.provider} / ${r.model}`], [fmtNumber(r.calls), "num"],
      [`${fmtNumber(r.failed)} (${fmtNumber(r.failure_rate, 1)}%)`, "num"], [fmtNumber(r.rate_limited), "num"],
      [fmtNumber(r.retries), "num"], [`${fmtNumber(r.p50_ms)} / ${fmtNumber(r.p95_ms)}`, "num"], [fmtNumber(r.cost_usd, 4), "num"],
      [Object.entries(r.errors).map(([code, n]) => `${code}×${n}`).join(", ") || "–"]]);
    fillTable("table-comparisons", t.comparisons, (r) => [[`${r.provider} / ${r.model} / ${r.size}`], [fmtNumber(r.comparisons), "num"],
      [fmtNumber(r.votes), "num"], [r.win_rate === null ? "–" : `${fmtNumber(r.win_rate * 100)}% (${fmtNumber(r.win_rate_low * 100)}–${fmtNumber(r.win_rate_high * 100)}%)`, "num"],
      [r.cost_per_image_usd === null ? "–" : fmtNumber(r.cost_per_image_usd, 4), "num"],
      [`${fmtNumber(r.latency_p50_ms)} / ${fmtNumber(r.latency_p95_ms)}`, "num"],
      [r.failure_rate === null ? "–" : `${fmtNumber(r.failure_rate * 100, 1)}%`, "num"]]);
    fillTable("table-users", t.top_users, (r) => [[r.user], [fmtNumber(r.images), "num"], [fmtNumber(r.failed), "num"],
      [fmtNumber(r.batches), "num"], [fmtNumber(r.cost_usd, 4), "num"]]);
    fillTable("table-daily", data.usage.images_per_user_per_day.slice(0, 10), (r) => [[r.day], [r.user], [fmtNumber(r.images), "num"]]);
    fillTable("table-workers", data.now.workers, (r) => [[r.cluster.slice(0, 8)], [r.host], [fmtNumber(r.workers), "num"],
      [fmtDuration(r.uptime_seconds)], [fmtDuration(r.last_heartbeat_seconds)]]);
    fillTable("table-alerts", data.alerts.history, (r) => [[new Date(r.time).toLocaleString(locale)], [ruleLabel(r.rule)],
      [r.kind === "fired" ? text.fired : text.resolved, `kind-${r.kind}`], [r.message],
      [r.delivered.join(", ") + (r.delivery_errors.length ? ` ⚠ ${r.delivery_errors.join("; ")}` : "") || text.none]]);
  }

  function fillUsage(usage) {
    const list = document.getElementById("usage");
    const features = usage.features;
    const entries = [
      [text.activeUsers, fmtNumber(usage.active_users)],
      [text.batches, `${fmtNumber(usage.batches)} (${fmtNumber(usage.batches_by_source.portal || 0)} ${text.portal}, ${fmtNumber(usage.batches_by_source.api || 0)} ${text.api})`],
      [text.features, `${text.negativePrompt} ${features.negative_prompt} · ${text.fixedSeed} ${features.fixed_seed} · ${text.severalImages} ${features.several_images_per_prompt} · ${text.template} ${features.prompt_template}`],
    ];
    list.replaceChildren();
    for (const [term, value] of entries) {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = term; dd.textContent = value;
      list.append(dt, dd);
    }
  }

  function fillAvailability(summary) {
    const target = document.getElementById("availability-target");
    const latest = document.getElementById("availability-latest");
    if (!summary.measured_since) {
      target.textContent = text.sloNone;
      latest.textContent = "";
    } else {
      const burn = Object.entries(summary.burn_rates).map(([name, rate]) => `${name} ${fmtNumber(rate, 2)}×`).join(" · ");
      target.textContent = text.slo.replace("{target}", `${fmtNumber(summary.slo_target_percent, 2)}%`)
        .replace("{since}", new Date(summary.measured_since).toLocaleString(locale)).replace("{burn}", burn);
      const probe = summary.latest, time = new Date(probe.taken_at).toLocaleTimeString(locale);
      latest.textContent = probe.up ? text.probeUp.replace("{time}", time)
        : text.probeDown.replace("{time}", time).replace("{detail}", probe.detail);
      latest.classList.toggle("bad", !probe.up);
    }
    const label = { "1d": text["window-1d"], "7d": text["window-7d"], "30d": text["window-30d"] };  // dataset keeps "-1d"
    const percent = (value, digits) => (value === null ? "–" : `${fmtNumber(value, digits)}%`);
    fillTable("table-availability", summary.windows, (r) => [[label[r.window] || r.window],
      [percent(r.availability_percent, 3), r.availability_percent !== null && r.availability_percent < summary.slo_target_percent ? "num bad" : "num"],
      [percent(r.budget_remaining_percent, 1), r.budget_remaining_percent !== null && r.budget_remaining_percent < 0 ? "num bad" : "num"],
      [`${fmtDuration(r.downtime_seconds)} / ${fmtDuration(r.allowed_downtime_seconds)}`, "num"]]);
  }

  function setTile(id, value, state) {
    const tile = document.getElementById(id);
    tile.textContent = value;
    tile.classList.toggle("bad", state === "bad");
    tile.classList.toggle("good", state === "good");
  }

  // "provider_failing:openai" reads data-rule-provider-failing, then names the provider.
  function ruleLabel(key) {
    const [rule, subject] = key.split(":");
    const name = "rule" + rule.split("_").map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join("");
    const label = text[name] || rule;
    return subject ? `${label} (${subject})` : label;
  }

  function fillTiles(data) {
    const now = data.now, sample = now.last_sample;
    setTile("tile-queued", fmtNumber(now.queued));
    setTile("tile-running", fmtNumber(now.running));
    setTile("tile-oldest", fmtDuration(now.oldest_queued_seconds));
    setTile("tile-workers", fmtNumber(now.workers_alive), now.workers_alive ? "good" : "bad");
    setTile("tile-users", fmtNumber(data.usage.active_users));
    setTile("tile-uptime", fmtDuration(now.web_uptime_seconds));
    const free = sample ? (100 * sample.disk_free_bytes) / sample.disk_total_bytes : null;
    setTile("tile-disk", free === null ? "–" : `${free.toFixed(0)}%`, free !== null && free < 10 ? "bad" : null);
    setTile("tile-sweeper", fmtNumber((data.sweeper.redelivered || 0) + (data.sweeper.requeued || 0)));
    const cache = data.cache;
    setTile("tile-cache-rate", cache.hit_rate_percent === null ? "–" : `${fmtNumber(cache.hit_rate_percent, 1)}% (${fmtNumber(cache.hits)})`);
    setTile("tile-cache-saved", `$${fmtNumber(cache.saved_usd, 2)}`);
    const firing = document.getElementById("alerts-firing");
    firing.hidden = !data.alerts.firing.length;
    firing.replaceChildren();
    if (data.alerts.firing.length) {
      const title = document.createElement("strong"), list = document.createElement("ul");
      title.textContent = text.firingTitle;
      for (const alert of data.alerts.firing) {
        const item = document.createElement("li");
        item.textContent = `${ruleLabel(alert.rule)}: ${alert.message}`;
        list.append(item);
      }
      firing.append(title, list);
    }
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const response = await fetch(`${root.dataset.url}?range=${encodeURIComponent(range)}`, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      if (!response.ok) throw new Error(String(response.status));
      const data = await response.json();
      drawCharts(data);
      fillTiles(data);
      fillTables(data);
      fillUsage(data.usage);
      fillAvailability(data.availability);
      document.getElementById("updated").textContent =
        text.updated.replace("{time}", new Date(data.generated_at).toLocaleTimeString(locale));
      root.dataset.loaded = "true";
    } catch (error) {
      document.getElementById("updated").textContent = text.failed.replace("{status}", error.message);
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  document.querySelectorAll(".range-switch .range").forEach((button) => {
    button.addEventListener("click", () => {
      range = button.dataset.range;
      document.querySelectorAll(".range-switch .range").forEach((b) => b.classList.toggle("primary", b === button));
      const url = new URL(window.location.href);
      url.searchParams.set("range", range);
      window.history.replaceState(null, "", url);
      refresh();
    });
  });
  refresh();
})();
