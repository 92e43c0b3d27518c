"use strict";
// The inbox's little JavaScript: buttons without a page load, the live list, voicemail errors.
(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content;
  if (!csrf) return;
  const inbox = document.getElementById("inbox");
  const live = document.getElementById("live");
  const toast = document.getElementById("toast");
  let toastTimer = 0;

  function say(text, bad) {
    toast.textContent = text;
    toast.classList.toggle("bad", Boolean(bad));
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, 6000);
  }

  async function refreshParts() {
    // What others change on the other pages: a call's item (a colleague or the callback handled
    // it), the reports' figures. Each such part has an id and `data-live`.
    const parts = [...document.querySelectorAll("[data-live]")];
    if (!parts.length) return;
    const response = await fetch(location.href, { credentials: "same-origin" }).catch(() => null);
    if (!response?.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const part of parts) {
      if (part.contains(document.activeElement)) continue;
      const update = fresh.getElementById(part.id);
      if (update && update.innerHTML !== part.innerHTML) part.innerHTML = update.innerHTML;
    }
  }

  async function refresh() {
    if (!inbox) { await refreshParts(); return; }
    let response;
    try {
      response = await fetch(inbox.dataset.rows, { credentials: "same-origin" });
    } catch {
      return;
    }
    if (response.redirected || response.status === 401) { location.reload(); return; }
    if (!response.ok) return;
    const html = await response.text();
    const seen = new Set([...inbox.querySelectorAll("tr[data-key]")].map((row) => row.dataset.key));
    const focused = document.activeElement;
    const focusRow = inbox.contains(focused) ? focused.closest("tr")?.dataset.key : null;
    const focusLabel = focused?.getAttribute("aria-label");
    inbox.innerHTML = html;
    const arrived = [...inbox.querySelectorAll("tr[data-key]")].filter((row) => !seen.has(row.dataset.key));
    for (const row of arrived) row.classList.add("arrived");
    if (arrived.length) {
      const who = arrived.map((row) => row.querySelector(".caller a")?.textContent).join(", ");
      document.getElementById("announce").textContent = `New in the inbox: ${who}`;
    }
    if (focusRow) {
      const row = [...inbox.querySelectorAll("tr[data-key]")].find((r) => r.dataset.key === focusRow);
      const again = [...(row?.querySelectorAll("button") || [])].find((b) => b.getAttribute("aria-label") === focusLabel)
        || row?.querySelector("a");
      (again || inbox).focus?.();
    }
    const summary = document.getElementById("summary");
    if (summary?.dataset.title) document.title = summary.dataset.title;
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-fetch")) return;
    event.preventDefault();
    const button = event.submitter || form.querySelector("button[type=submit]");
    const action = button.getAttribute("formaction") || form.getAttribute("action");
    const handled = action.endsWith("/handled");
    button.disabled = true;
    try {
      const response = await fetch(action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
        credentials: "same-origin",
      });
      const body = await response.json().catch(() => ({}));
      if (response.status === 401) { location.reload(); return; }
      if (!response.ok) { say(body.error || "That did not work. Please try again.", true); return; }
      say(body.message || "Done.");
      if (!inbox) {
        button.blur();
        await refreshParts();
        return;
      }
      if (handled) form.closest("tr")?.classList.add("leaving");
      await refresh();
    } catch {
      say("callkeeper cannot be reached. Please try again in a moment.", true);
    } finally {
      button.disabled = false;
    }
  });

  function state(value, text) {
    if (!live) return;
    live.dataset.state = value;
    live.textContent = text;
  }

  let version = document.body.dataset.version ?? null;
  let lost = false;
  function connect() {
    const source = new EventSource("/events");
    source.addEventListener("version", (event) => {
      state("live", "Live");
      if ((version !== null && event.data !== version) || lost) refresh();
      version = event.data;
      lost = false;
    });
    source.onerror = () => {
      lost = true;
      state("lost", "Reconnecting…");
      if (source.readyState !== EventSource.CLOSED) return;
      // Closed for good (daemon restarting, or signed out): find out which, then start again.
      source.close();
      setTimeout(async () => {
        try {
          const probe = await fetch(location.href, { method: "HEAD", credentials: "same-origin" });
          if (probe.redirected) { location.reload(); return; }
        } catch {
          // the daemon is still away
        }
        connect();
      }, 2000);
    };
  }
  connect();
  if (inbox) setInterval(refresh, 60000);

  const audio = document.getElementById("voicemail-audio");
  audio?.addEventListener("error", async () => {
    const response = await fetch(audio.currentSrc || audio.src, { method: "HEAD", credentials: "same-origin" }).catch(() => null);
    if (response?.status === 410) {
      audio.hidden = true;
      document.getElementById("voicemail-gone").hidden = false;
    }
  });
})();
