// Batch page: while a re-processing job runs, poll its progress and update the line in place.
(function () {
  "use strict";
  const list = document.getElementById("output-jobs");
  if (!list) {
    return;
  }
  const POLL_MS = 2000;

  function running() {
    return list.querySelector(".job-progress[data-status=running]") !== null;
  }

  function render(jobs) {
    for (const job of jobs) {
      const line = list.querySelector('.job-progress[data-job="' + job.id + '"]');
      if (!line) {
        continue;
      }
      line.dataset.status = job.status;
      line.textContent = list.dataset.progress
        .replace("__DONE__", job.done)
        .replace("__TOTAL__", job.total)
        .replace("__FAILED__", job.failed);
    }
  }

  async function poll() {
    try {
      const response = await fetch(list.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        render(await response.json());
      }
    } catch (error) {
      // A dropped connection: try again on the next tick.
    }
    if (running()) {
      window.setTimeout(poll, POLL_MS);
    }
  }

  if (running()) {
    window.setTimeout(poll, POLL_MS);
  }
})();
