// Every page: the phone menu button, the theme switch and the keyboard shortcuts (n, /, ?, Ctrl+Enter).
(function () {
  "use strict";
  const THEME_KEY = "imagegen-theme";

  function setUpMenu() {
    const button = document.getElementById("menu-button");
    const menu = document.getElementById("topbar-menu");
    if (!button || !menu) return;
    button.addEventListener("click", function () {
      const open = button.getAttribute("aria-expanded") !== "true";
      button.setAttribute("aria-expanded", String(open));
      menu.classList.toggle("open", open);
    });
  }

  function storedTheme() {
    try {
      return window.localStorage.getItem(THEME_KEY) || "auto";
    } catch (error) {
      return "auto";
    }
  }

  function setUpThemeSwitch() {
    const select = document.getElementById("theme-switch");
    if (!select) return;
    select.value = storedTheme();
    select.addEventListener("change", function () {
      const theme = select.value;
      try {
        if (theme === "auto") window.localStorage.removeItem(THEME_KEY);
        else window.localStorage.setItem(THEME_KEY, theme);
      } catch (error) {
        // Not remembered, but still applied to this page.
      }
      if (theme === "auto") delete document.documentElement.dataset.theme;
      else document.documentElement.dataset.theme = theme;
    });
  }

  function isTyping(target) {
    if (!target || !(target instanceof Element)) return false;
    return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
  }

  function focusSearch() {
    const search = document.querySelector("input[type=search]");
    if (search) {
      search.focus();
      search.select();
      return true;
    }
    return false;
  }

  function openHelp() {
    const dialog = document.getElementById("shortcuts-help");
    if (dialog && !dialog.open) dialog.showModal();
  }

  function submitForm(target) {
    const form = target && target.form;
    if (!form) return false;
    if (typeof form.requestSubmit === "function") form.requestSubmit();
    else form.submit();
    return true;
  }

  function onKeyDown(event) {
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      if (submitForm(event.target)) event.preventDefault();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    const dialog = document.getElementById("shortcuts-help");
    if (dialog && dialog.open) return;
    const links = document.getElementById("shortcut-links").dataset;
    if (event.key === "?") {
      event.preventDefault();
      openHelp();
    } else if (event.key === "/") {
      event.preventDefault();
      if (!focusSearch()) window.location.assign(links.history + "#search");
    } else if (event.key === "n" && document.querySelector(".mainnav")) {
      event.preventDefault();
      window.location.assign(links.newBatch);
    }
  }

  setUpMenu();
  setUpThemeSwitch();
  document.addEventListener("keydown", onKeyDown);
  if (window.location.hash === "#search") focusSearch();
})();
