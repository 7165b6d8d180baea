// New-comparison page: show 2 configurations, add or remove up to 4, offer only each model's sizes.
(function () {
  "use strict";
  const providers = JSON.parse(document.getElementById("providers-data").textContent);
  const fieldsets = Array.from(document.querySelectorAll(".cmp-arm-fields"));
  const addButton = document.getElementById("add-arm");

  function modelFor(value) {
    const [providerName, modelId] = (value || "").split(":");
    const provider = providers.find((p) => p.name === providerName);
    return provider && provider.models.find((m) => m.id === modelId);
  }

  function syncSizes(fieldset) {
    const index = fieldset.dataset.index;
    const model = modelFor(document.getElementById("id_arm" + index + "_model").value);
    const sizeSelect = document.getElementById("id_arm" + index + "_size");
    const allowed = model ? new Set(model.capabilities.sizes) : null;
    for (const option of sizeSelect.options) {
      option.hidden = option.value !== "" && allowed !== null && !allowed.has(option.value);
    }
    if (sizeSelect.selectedOptions[0] && sizeSelect.selectedOptions[0].hidden) sizeSelect.value = "";
  }

  function refreshButtons() {
    const hidden = fieldsets.filter((f) => f.hidden);
    addButton.hidden = hidden.length === 0;
    for (const fieldset of fieldsets) {
      const remove = fieldset.querySelector(".cmp-remove");
      if (remove) remove.hidden = fieldset.hidden;
    }
  }

  function addArm() {
    const next = fieldsets.find((f) => f.hidden);
    if (!next) return;
    next.hidden = false;
    const select = document.getElementById("id_arm" + next.dataset.index + "_model");
    const firstModel = Array.from(select.options).find((o) => o.value !== "");
    if (firstModel && !select.value) select.value = firstModel.value;
    syncSizes(next);
    refreshButtons();
    select.focus();
  }

  function removeArm(fieldset) {
    const index = fieldset.dataset.index;
    document.getElementById("id_arm" + index + "_model").value = "";
    for (const name of ["_size", "_label", "_options"]) document.getElementById("id_arm" + index + name).value = "";
    fieldset.hidden = true;
    refreshButtons();
    addButton.focus();
  }

  for (const fieldset of fieldsets) {
    if (fieldset.dataset.unused === "true") fieldset.hidden = true;
    const select = document.getElementById("id_arm" + fieldset.dataset.index + "_model");
    select.addEventListener("change", () => syncSizes(fieldset));
    const remove = fieldset.querySelector(".cmp-remove");
    if (remove) remove.addEventListener("click", () => removeArm(fieldset));
    syncSizes(fieldset);
  }
  addButton.addEventListener("click", addArm);
  refreshButtons();
})();
