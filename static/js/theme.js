// Applies the saved colour theme (auto, light or dark) before the page paints; loaded in <head>.
(function () {
  "use strict";
  let theme = "auto";
  try {
    theme = window.localStorage.getItem("imagegen-theme") || "auto";
  } catch (error) {
    // Storage blocked (private mode, policy): follow the system setting.
  }
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
})();
