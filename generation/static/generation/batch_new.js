// New-batch page: offer only the sizes and settings the chosen model supports; count the prompts as typed.
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
    const lines = prompts.value.split(/\r?\n/).filter((line) => line.trim() !== "");
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

  // One submission per click: the button is disabled while the form is posted (the server also
  // refuses a second POST of the same one-time token and shows the batch the first one made).
  const form = document.getElementById("batch-form");
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

  modelSelect.addEventListener("change", syncSizes);
  prompts.addEventListener("input", countPrompts);
  perPrompt.addEventListener("input", countPrompts);
  template.addEventListener("change", countPrompts);
  syncSizes();
  countPrompts();
})();
