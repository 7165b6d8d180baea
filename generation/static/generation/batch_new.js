// New-batch page: offer only the sizes and settings the chosen model supports; count the prompts as typed,
// preview an imported file and ask the server for the estimate (count after templates, cost, quota left).
(function () {
  "use strict";
  const providers = JSON.parse(document.getElementById("providers-data").textContent);
  const modelSelect = document.getElementById("id_model");
  const sizeSelect = document.getElementById("id_size");
  const note = document.getElementById("provider-note");
  const prompts = document.getElementById("id_prompts");
  const perPrompt = document.getElementById("id_images_per_prompt");
  const counter = document.getElementById("prompt-count");
  const offlineText = document.getElementById("i18n-offline").innerHTML;
  const countText = document.getElementById("i18n-count").innerHTML;
  const defaultText = document.getElementById("i18n-default").innerHTML;
  const ownKeyText = document.getElementById("i18n-own-key").innerHTML;
  const posted = JSON.parse(document.getElementById("posted-options-data").textContent);
  const optionBox = document.getElementById("model-options");
  const optionFields = document.getElementById("model-options-fields");
  const negative = document.getElementById("id_negative_prompt");
  const seed = document.getElementById("id_seed");
  const template = document.getElementById("id_template");
  const approxText = document.getElementById("i18n-count-approx").innerHTML;
  const form = document.getElementById("batch-form");
  const csrfToken = form.querySelector("[name=csrfmiddlewaretoken]").value;

  function chosen() {
    const [providerName, modelId] = modelSelect.value.split(":");
    const provider = providers.find((p) => p.name === providerName);
    const model = provider && provider.models.find((m) => m.id === modelId);
    return { provider, model };
  }

  function syncSizes() {
    const { provider, model } = chosen();
    if (!model) return;
    const allowed = new Set(model.capabilities.sizes);
    let keep = allowed.has(sizeSelect.value);
    for (const option of sizeSelect.options) {
      option.hidden = option.disabled = !allowed.has(option.value);
    }
    if (!keep) sizeSelect.value = model.capabilities.default_size;
    note.textContent = provider.offline ? offlineText : provider.description;
    if (provider.own_key) note.textContent += " " + ownKeyText;
    negative.disabled = !model.capabilities.negative_prompt;
    seed.disabled = !model.capabilities.seed;
    buildOptions(model.capabilities.options || {});
  }

  // One input per model setting, named option_<name>; an empty value means the model's default.
  function buildOptions(options) {
    optionFields.replaceChildren();
    const names = Object.keys(options);
    optionBox.hidden = names.length === 0;
    for (const name of names) {
      const spec = options[name];
      const wrapper = document.createElement("div");
      wrapper.className = "field";
      const label = document.createElement("label");
      label.htmlFor = "id_option_" + name;
      label.textContent = spec.label;
      const input = spec.type === "choice" ? choiceInput(spec) : numberInput(spec);
      input.id = "id_option_" + name;
      input.name = "option_" + name;
      if (posted[name] !== undefined) input.value = posted[name];
      wrapper.append(label, input);
      optionFields.append(wrapper);
    }
  }

  function choiceInput(spec) {
    const select = document.createElement("select");
    select.append(new Option(defaultText + (spec.default != null ? " (" + spec.default + ")" : ""), ""));
    for (const choice of spec.choices) select.append(new Option(choice, choice));
    return select;
  }

  function numberInput(spec) {
    const input = document.createElement("input");
    input.type = "number";
    if (spec.min != null) input.min = spec.min;
    if (spec.max != null) input.max = spec.max;
    input.step = spec.type === "integer" ? "1" : "any";
    if (spec.default != null) input.placeholder = spec.default;
    return input;
  }

  // How many prompts one line becomes: every combination of its {a|b} groups; null when it uses
  // syntax only the server expands exactly ({2$$a|b|c} picks, __wildcards__).
  function expansions(line) {
    if (!template.checked) return 1;
    if (line.includes("__")) return null;
    let count = 1;
    for (const group of line.matchAll(/\{([^{}]*)\}/g)) {
      if (group[1].includes("$$")) return null;
      count *= group[1].split("|").length;
    }
    return count;
  }

  function countPrompts() {
    const typed = prompts.value.split(/\r?\n/).filter((line) => line.trim() !== "");
    const fromFile = fileRows ? fileRows.map((row) => String((row && row.prompt) || "")) : [];
    const lines = typed.concat(fromFile);
    let total = 0;
    let exact = true;
    for (const line of lines) {
      const count = expansions(line);
      if (count === null) exact = false;
      total += count === null ? 1 : count;
    }
    const images = total * (parseInt(perPrompt.value, 10) || 1);
    let text = total ? countText.replace("%(prompts)s", total).replace("%(images)s", images) : "";
    if (total && !exact) text += " " + approxText;
    counter.textContent = text;
  }

  // Fallbacks: checkboxes, without the chosen provider's own models.
  function syncFallbacks() {
    const { provider } = chosen();
    const boxes = [...form.querySelectorAll('input[name="fallbacks"]')];
    for (const box of boxes) {
      const mine = provider && box.value.split(":")[0] === provider.name;
      if (mine) box.checked = false;
      box.disabled = mine;
      box.closest("div").hidden = mine;
    }
    const field = document.getElementById("id_fallbacks").closest(".field");
    field.hidden = boxes.every((box) => box.disabled);
  }

  // --- Import preview: the file is read here for a quick look; the server checks it again. ---
  const fileInput = document.getElementById("id_prompts_file");
  const dropZone = document.getElementById("drop-zone");
  const preview = document.getElementById("file-preview");
  const fileCount = document.getElementById("file-count");
  const fileTable = document.getElementById("file-table");
  const rowsText = document.getElementById("i18n-file-rows").innerHTML;
  const unreadableText = document.getElementById("i18n-file-unreadable").innerHTML;
  const PREVIEW_ROWS = 5;
  let fileRows = null; // null: no file; else the rows read from it (objects with at least `prompt`)

  function parseCsv(text) {
    const rows = [];
    let row = [], cell = "", quoted = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
        else if (c === '"') quoted = false;
        else cell += c;
      } else if (c === '"') quoted = true;
      else if (c === ",") { row.push(cell); cell = ""; }
      else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") i++;
        row.push(cell); rows.push(row); row = []; cell = "";
      } else cell += c;
    }
    if (cell !== "" || row.length) { row.push(cell); rows.push(row); }
    const header = (rows.shift() || []).map((name) => name.trim().toLowerCase());
    if (!header.includes("prompt")) throw new Error("no prompt column");
    return rows
      .filter((cells) => cells.some((value) => value.trim() !== ""))
      .map((cells) => Object.fromEntries(header.map((name, index) => [name, (cells[index] || "").trim()])));
  }

  // As the server does: other columns fill {column} in the prompt and negative prompt.
  const FIELDS = ["prompt", "negative_prompt", "seed", "width", "height", "images"];
  function fillPlaceholders(row) {
    if (!row || typeof row !== "object") return row;
    const fill = (text) =>
      String(text).replace(/\{([^{}|$]+)\}/g, (whole, name) => {
        const key = name.trim();
        return !FIELDS.includes(key) && row[key] != null ? String(row[key]).trim() : whole;
      });
    const filled = { ...row };
    if (row.prompt != null) filled.prompt = fill(row.prompt);
    if (row.negative_prompt != null) filled.negative_prompt = fill(row.negative_prompt);
    return filled;
  }

  function parseFile(name, text) {
    text = text.replace(/^\ufeff/, "");
    const extension = name.toLowerCase().split(".").pop();
    if (extension === "csv") return parseCsv(text);
    if (extension === "json") return JSON.parse(text);
    if (extension === "jsonl" || extension === "ndjson") {
      return text.split(/\r?\n/).filter((line) => line.trim() !== "").map((line) => JSON.parse(line));
    }
    return text.split(/\r?\n/).filter((line) => line.trim() !== "").map((line) => ({ prompt: line.trim() }));
  }

  function showPreview(name, rows) {
    preview.hidden = false;
    fileTable.tHead.replaceChildren();
    fileTable.tBodies[0].replaceChildren();
    if (rows === null) {
      fileCount.textContent = unreadableText;
      return;
    }
    fileCount.textContent = rowsText.replace("%(rows)s", rows.length).replace("%(name)s", name);
    const columns = [...new Set(rows.slice(0, PREVIEW_ROWS).flatMap((row) => Object.keys(row)))];
    const head = fileTable.tHead.insertRow();
    for (const column of columns) head.append(Object.assign(document.createElement("th"), { textContent: column }));
    for (const row of rows.slice(0, PREVIEW_ROWS)) {
      const line = fileTable.tBodies[0].insertRow();
      for (const column of columns) line.insertCell().textContent = row[column] == null ? "" : String(row[column]);
    }
  }

  function readChosenFile() {
    const file = fileInput.files && fileInput.files[0];
    if (!file) {
      fileRows = null;
      preview.hidden = true;
      countPrompts();
      scheduleEstimate();
      return;
    }
    file.text().then((text) => {
      try {
        const rows = parseFile(file.name, text);
        fileRows = Array.isArray(rows) ? rows.map(fillPlaceholders) : null;
      } catch (error) {
        fileRows = null;
      }
      showPreview(file.name, fileRows);
      countPrompts();
      scheduleEstimate();
    });
  }

  fileInput.addEventListener("change", readChosenFile);
  dropZone.addEventListener("dragover", (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    if (!event.dataTransfer.files.length) return;
    fileInput.files = event.dataTransfer.files;
    readChosenFile();
  });

  // --- Estimate: the server's count after templates, the cost and the quota left (debounced). ---
  const estimateBox = document.getElementById("estimate");
  const estimateText = document.getElementById("estimate-text");
  const estimateError = document.getElementById("estimate-error");
  const estimateTemplate = document.getElementById("i18n-estimate").innerHTML;
  const unpricedText = document.getElementById("i18n-estimate-unpriced").innerHTML;
  const overQuotaText = document.getElementById("i18n-over-quota").innerHTML;
  const itemsJson = document.getElementById("id_items_json");
  let estimateTimer = null;
  let estimateSeq = 0;

  function estimateBody() {
    const body = new FormData();
    const [providerName, modelId] = modelSelect.value.split(":");
    body.append("provider", providerName);
    body.append("model", modelId || "");
    for (const line of prompts.value.split(/\r?\n/)) if (line.trim()) body.append("prompts", line.trim());
    const file = fileInput.files && fileInput.files[0];
    if (file) body.append("file", file);
    else if (itemsJson && itemsJson.value) body.append("items", itemsJson.value);
    body.append("template", template.checked ? "true" : "false");
    if (!negative.disabled && negative.value.trim()) body.append("negative_prompt", negative.value.trim());
    body.append("images_per_prompt", perPrompt.value || "1");
    const [width, height] = sizeSelect.value.split("x");
    body.append("width", width);
    body.append("height", height);
    if (!seed.disabled && seed.value) body.append("seed", seed.value);
    for (const input of optionFields.querySelectorAll("[name^='option_']")) {
      if (input.value) body.append("options." + input.name.slice(7), input.value);
    }
    for (const box of form.querySelectorAll('input[name="fallbacks"]:checked')) body.append("fallbacks", box.value);
    return body;
  }

  function scheduleEstimate() {
    clearTimeout(estimateTimer);
    estimateTimer = setTimeout(estimate, 400);
  }

  function estimate() {
    const hasInput = prompts.value.trim() || (fileInput.files && fileInput.files[0]) || (itemsJson && itemsJson.value);
    if (!hasInput) {
      estimateBox.hidden = true;
      return;
    }
    const seq = ++estimateSeq;
    fetch(form.dataset.estimateUrl, {
      method: "POST",
      body: estimateBody(),
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
    })
      .then((response) => response.json().then((data) => ({ ok: response.ok, data })))
      .then(({ ok, data }) => {
        if (seq !== estimateSeq) return; // a newer estimate is on its way
        estimateBox.hidden = false;
        estimateError.hidden = ok;
        if (!ok) {
          estimateText.textContent = "";
          estimateError.textContent = (data.error && data.error.message) || "";
          return;
        }
        const cost = data.estimated_cost_usd === null ? unpricedText : Number(data.estimated_cost_usd).toFixed(4);
        estimateText.textContent = estimateTemplate
          .replace("%(prompts)s", data.prompts)
          .replace("%(images)s", data.images)
          .replace("%(cost)s", cost)
          .replace("%(left)s", data.quota.images_left_today);
        if (!data.quota.fits) {
          estimateError.hidden = false;
          estimateError.textContent = overQuotaText;
        }
      })
      .catch(() => {
        if (seq === estimateSeq) estimateBox.hidden = true;
      });
  }

  modelSelect.addEventListener("change", () => {
    syncSizes();
    syncFallbacks();
  });

  // One submission per click: the button is disabled while the form is posted (the server also
  // refuses a second POST of the same one-time token and shows the batch the first one made).
  const submit = document.getElementById("batch-submit");
  const idleLabel = submit.textContent;
  form.addEventListener("submit", function (event) {
    if (submit.disabled) {
      event.preventDefault();
      return;
    }
    submit.disabled = true;
    submit.setAttribute("aria-busy", "true");
    submit.textContent = submit.dataset.busyLabel;
  });
  // Coming back with the browser's Back button shows the page as it was left: usable again.
  window.addEventListener("pageshow", function () {
    submit.disabled = false;
    submit.removeAttribute("aria-busy");
    submit.textContent = idleLabel;
  });

  prompts.addEventListener("input", countPrompts);
  perPrompt.addEventListener("input", countPrompts);
  template.addEventListener("change", countPrompts);
  form.addEventListener("input", scheduleEstimate);
  form.addEventListener("change", scheduleEstimate);
  syncSizes();
  syncFallbacks();
  countPrompts();
  scheduleEstimate();
})();
