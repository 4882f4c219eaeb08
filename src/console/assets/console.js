// hookgate console: the little the server-rendered pages and htmx do not.
"use strict";

// A live list: an element with data-live (an SSE URL) and data-rows (the URL
// of its rows for the page's filter) is refreshed whenever the server
// announces something new. Announcements arriving during a refresh cause one
// more refresh after it, never one per announcement.
document.querySelectorAll("[data-live]").forEach((rows) => {
  let running = false;
  let again = false;
  const refresh = () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    htmx
      .ajax("GET", rows.dataset.rows, { target: rows, swap: "innerHTML" })
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  };
  const feed = new EventSource(rows.dataset.live);
  feed.addEventListener("new", refresh);
  // On (re)connecting: whatever arrived while not listening.
  feed.addEventListener("open", refresh);
  // Leaving the page closes the stream rather than leaving it to time out.
  window.addEventListener("pagehide", () => feed.close());
});


// A later page of a live list: its rows stay still; a banner (data-news, an
// SSE URL) counts what arrived since the page opened, with a link to the newest.
document.querySelectorAll("[data-news]").forEach((banner) => {
  let count = 0;
  const feed = new EventSource(banner.dataset.news);
  feed.addEventListener("new", () => {
    count += 1;
    const noun = count === 1 ? "request" : "requests";
    banner.querySelector(".count").textContent = `${count} new ${noun} arrived`;
    banner.hidden = false;
  });
  // Marks when it listens: what arrives from then on is counted.
  feed.addEventListener("open", () => {
    banner.dataset.listening = "true";
  });
  window.addEventListener("pagehide", () => feed.close());
});
