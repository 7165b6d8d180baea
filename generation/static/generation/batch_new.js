// New-batch page: offer only the sizes the chosen model supports and count the prompts as typed.
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
  }

  function countPrompts() {
    const lines = prompts.value.split(/\r?\n/).filter((line) => line.trim() !== "").length;
    const images = lines * (parseInt(perPrompt.value, 10) || 1);
    counter.textContent = lines ? countText.replace("%(prompts)s", lines).replace("%(images)s", images) : "";
  }

  modelSelect.addEventListener("change", syncSizes);
  prompts.addEventListener("input", countPrompts);
  perPrompt.addEventListener("input", countPrompts);
  syncSizes();
  countPrompts();
})();
