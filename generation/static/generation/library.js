// Library grid: selection bar (count, select all), star toggles without reloading, and "Load more".
(function () {
  "use strict";
  const grid = document.getElementById("grid");
  const bar = document.getElementById("selection-form");
  if (!bar) return;
  const count = bar.querySelector(".selection-count");

  function picks() {
    return Array.from(document.querySelectorAll("input.pick"));
  }

  function updateBar() {
    const chosen = picks().filter((box) => box.checked).length;
    count.textContent = chosen ? count.dataset.some.replace("__N__", String(chosen)) : count.dataset.none;
    bar.classList.toggle("has-selection", chosen > 0);
    bar.querySelectorAll("button[type=submit]").forEach((button) => { button.disabled = chosen === 0; });
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches("input.pick")) updateBar();
  });
  bar.querySelector(".select-all").addEventListener("click", function () {
    const boxes = picks();
    const all = boxes.every((box) => box.checked);
    boxes.forEach((box) => { box.checked = !all; });
    updateBar();
  });
  updateBar();

  function setStar(tile, favourite) {
    tile.dataset.favourite = String(favourite);
    const form = tile.querySelector(".tile-star");
    if (!form) return;
    form.querySelector("input[name=favourite]").value = favourite ? "0" : "1";
    const button = form.querySelector("button");
    button.setAttribute("aria-pressed", String(favourite));
    button.querySelector("[aria-hidden]").textContent = favourite ? "★" : "☆";
  }

  document.addEventListener("imagegen:favourite", function (event) {
    const tile = grid && grid.querySelector('[data-id="' + event.detail.id + '"]');
    if (tile) setStar(tile, event.detail.favourite);
  });

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!form.matches(".tile-star")) return;
    event.preventDefault();
    fetch(form.action, {
      method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then((response) => response.ok ? response.json() : Promise.reject(response))
      .then((answer) => setStar(form.closest(".tile"), answer.favourite))
      .catch(() => form.submit());
  });

  // "Load more" appends the next page's tiles; the viewer calls it too when → passes the last tile.
  let loading = null;

  function loadMore() {
    const more = document.getElementById("load-more");
    if (!more || !grid) return Promise.resolve(0);
    if (loading) return loading;
    const label = more.textContent;
    more.textContent = more.dataset.loading;
    loading = fetch(more.href, { credentials: "same-origin" })
      .then((response) => response.ok ? response.text() : Promise.reject(response))
      .then(function (html) {
        const page = new DOMParser().parseFromString(html, "text/html");
        const tiles = page.querySelectorAll("#grid > .tile");
        tiles.forEach((tile) => grid.appendChild(document.adoptNode(tile)));
        const next = page.getElementById("load-more");
        if (next) {
          more.href = next.href;
          more.textContent = label;
        } else {
          more.parentElement.remove();
        }
        updateBar();
        return tiles.length;
      })
      .finally(() => { loading = null; });
    return loading;
  }

  const more = document.getElementById("load-more");
  if (more) {
    more.addEventListener("click", function (event) {
      event.preventDefault();
      loadMore().catch(() => { window.location.href = more.href; });
    });
  }
  window.ImageGenLibrary = {
    hasMore: () => Boolean(document.getElementById("load-more")),
    loadMore: loadMore,
  };
})();
