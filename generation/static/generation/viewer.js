// Lightbox over a grid of tiles (#grid): ←/→ move, Esc closes, focus stays inside while open.
// Strings and URLs come from the dialog's data- attributes; tile facts from each tile's data- attributes.
(function () {
  "use strict";
  const dialog = document.getElementById("lightbox");
  const grid = document.getElementById("grid");
  if (!dialog || !grid) return;
  const PLACEHOLDER = "00000000-0000-0000-0000-000000000000";
  const $ = (selector) => dialog.querySelector(selector);
  const image = $(".lightbox-image");
  const missing = $(".lightbox-missing");
  const status = $(".lightbox-status");
  const star = $(".lightbox-star");
  const retry = $(".lightbox-retry");
  let tiles = [];
  let index = -1;
  let opener = null;

  function url(name, id) {
    return dialog.dataset[name].replace(PLACEHOLDER, id);
  }

  function csrfToken() {
    const field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function facts(tile) {
    const d = tile.dataset;
    return { id: d.id, status: d.status, prompt: d.prompt || "", negative: d.negative || "", seed: d.seed || "",
      size: d.size || "", model: d.model || "", quality: d.quality || "", favourite: d.favourite === "true" };
  }

  function show(position) {
    tiles = Array.from(grid.querySelectorAll(".tile"));
    if (!tiles.length) return;
    index = (position + tiles.length) % tiles.length;
    const item = facts(tiles[index]);
    const succeeded = item.status === "succeeded";
    $(".lightbox-title").textContent = item.prompt.length > 80 ? item.prompt.slice(0, 79) + "…" : item.prompt;
    $(".lightbox-position").textContent = dialog.dataset.position
      .replace("__N__", String(index + 1)).replace("__TOTAL__", String(tiles.length));
    image.hidden = !succeeded;
    missing.hidden = succeeded;
    missing.textContent = dialog.dataset.noImage;
    if (succeeded) {
      image.src = url("imageUrl", item.id);
      image.alt = item.prompt.slice(0, 120);
    } else {
      image.removeAttribute("src");
    }
    $(".lightbox-prompt").textContent = item.prompt;
    $(".lightbox-negative").textContent = item.negative;
    $(".lightbox-negative").hidden = $(".lightbox-negative-label").hidden = !item.negative;
    $(".lightbox-seed").textContent = item.seed;
    $(".lightbox-size").textContent = item.size;
    $(".lightbox-model").textContent = item.model + (item.quality ? " · " + item.quality : "");
    const download = $(".lightbox-download");
    download.hidden = !succeeded;
    download.href = url("imageUrl", item.id) + "?download=1";
    $(".lightbox-rerun").href = url("rerunUrl", item.id);
    $(".lightbox-details").href = url("detailUrl", item.id);
    const back = "?next=" + encodeURIComponent(location.pathname + location.search);
    $(".lightbox-delete").href = url("deleteUrl", item.id) + back;
    retry.hidden = !(item.status === "failed" || item.status === "cancelled");
    retry.action = url("retryUrl", item.id);
    star.setAttribute("aria-pressed", String(item.favourite));
    star.classList.toggle("on", item.favourite);
    status.textContent = "";
  }

  // → on the last loaded tile goes on into the library's next page (loading it) before wrapping round.
  function next() {
    const library = window.ImageGenLibrary;
    const last = index === grid.querySelectorAll(".tile").length - 1;
    if (!(last && library && library.hasMore())) {
      show(index + 1);
      return;
    }
    status.textContent = dialog.dataset.loading || "";
    library.loadMore().then(
      (added) => show(added ? index + 1 : 0),
      () => { status.textContent = dialog.dataset.loadFailed || ""; },
    );
  }

  function open(tile) {
    opener = tile.querySelector(".tile-open");
    show(Array.from(grid.querySelectorAll(".tile")).indexOf(tile));
    if (!dialog.open) dialog.showModal();
    $(".lightbox-close").focus();
  }

  function close() {
    if (dialog.open) dialog.close();
  }

  dialog.addEventListener("close", function () {
    if (opener && document.contains(opener)) opener.focus();
  });

  grid.addEventListener("click", function (event) {
    const link = event.target.closest(".tile-open");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    open(link.closest(".tile"));
  });

  dialog.addEventListener("keydown", function (event) {
    if (event.key === "ArrowLeft" && !event.target.matches("input, textarea")) {
      event.preventDefault();
      show(index - 1);
    } else if (event.key === "ArrowRight" && !event.target.matches("input, textarea")) {
      event.preventDefault();
      next();
    } else if (event.key === "Tab") {
      trapFocus(event);
    }
  });

  function trapFocus(event) {
    const focusable = Array.from(dialog.querySelectorAll("button, a[href], input, select, textarea"))
      .filter((element) => !element.closest("[hidden]") && !element.hidden && element.offsetParent !== null);
    if (!focusable.length) return;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  }

  dialog.addEventListener("click", function (event) {
    if (event.target === dialog) close(); // a click on the backdrop
  });
  $(".lightbox-close").addEventListener("click", close);
  $(".lightbox-prev").addEventListener("click", () => show(index - 1));
  $(".lightbox-next").addEventListener("click", next);

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      // Fallback for plain-HTTP origins: a hidden text area and the old copy command.
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "copy-buffer";
      dialog.appendChild(area);
      area.select();
      const copied = document.execCommand("copy");
      area.remove();
      if (copied) resolve(); else reject(new Error("copy refused"));
    });
  }

  dialog.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      const item = facts(tiles[index]);
      const [width, height] = item.size.split("×");
      const texts = {
        prompt: item.prompt,
        seed: item.seed,
        parameters: JSON.stringify({ prompt: item.prompt, negative_prompt: item.negative, seed: Number(item.seed),
          width: Number(width), height: Number(height), model: item.model, quality: item.quality }, null, 2),
      };
      copyText(texts[button.dataset.copy]).then(
        () => { status.textContent = dialog.dataset.copied; },
        () => { status.textContent = dialog.dataset.copyFailed; },
      );
    });
  });

  star.addEventListener("click", function () {
    const tile = tiles[index];
    const wanted = tile.dataset.favourite !== "true";
    const body = new URLSearchParams({ favourite: wanted ? "1" : "0" });
    fetch(url("favouriteUrl", tile.dataset.id), {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    }).then((response) => response.ok ? response.json() : Promise.reject(response))
      .then(function (answer) {
        document.dispatchEvent(new CustomEvent("imagegen:favourite", { detail: answer }));
        if (tiles[index] === tile) show(index);
      })
      .catch(() => { status.textContent = ""; });
  });
  window.ImageGenViewer = { open: open };
})();
