// rxfill console: the live feed (server-sent events) swaps in the sections whose topics
// changed; a lost feed is said at once; idle sign-out; scanner fields; confirmations.
"use strict";
(function () {
  const body = document.body;
  const csrf = body.dataset.csrf;
  if (body.dataset.signedIn !== "yes") return;

  // -- idle sign-out: the server decides; the page leaves as soon as the time is up --------
  const idleMs = Number(body.dataset.idleS) * 1000;
  const reportEvery = Math.min(20000, idleMs / 4);
  let idleTimer = null;
  let lastReport = 0;
  function armIdle() {
    clearTimeout(idleTimer);
    // The server decides, signs the person out and says why (or sends them back, if they
    // were active in another window).
    idleTimer = setTimeout(() => {
      window.location.assign("/idle?back=" + encodeURIComponent(window.location.pathname));
    }, idleMs + 1000);
  }
  function active() {
    const now = Date.now();
    if (now - lastReport > reportEvery) {
      lastReport = now;
      fetch("/activity", {method: "POST", headers: {"X-CSRF-Token": csrf}}).then((r) => {
        if (r.status === 401) window.location.assign("/sign-in");
      });
    }
    armIdle();
  }
  lastReport = Date.now();
  armIdle();
  ["keydown", "pointerdown"].forEach((e) => document.addEventListener(e, active, true));

  // -- scanners: a scan types fast and sends Enter; GS1's group separator arrives as a key
  // the browser may drop, so it is written <GS>, as the CLI accepts it -----------------------
  document.addEventListener("keydown", (e) => {
    const field = e.target;
    if (!(field instanceof HTMLInputElement) || !field.classList.contains("scan")) return;
    const gs = e.key === "GroupSeparator" || e.keyCode === 29 || (e.ctrlKey && e.key === "]");
    if (gs) {
      e.preventDefault();
      field.setRangeText("<GS>", field.selectionStart, field.selectionEnd, "end");
    }
  });

  // -- an action that cannot be undone says what it will do first --------------------------
  const dialog = document.getElementById("confirm");
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (!form.dataset.confirm || form.dataset.confirmed === "yes" || !dialog) return;
    e.preventDefault();
    dialog.querySelector("p").textContent = form.dataset.confirm;
    dialog.returnValue = "";
    dialog.showModal();
    dialog.addEventListener("close", function done() {
      dialog.removeEventListener("close", done);
      if (dialog.returnValue === "yes") {
        form.dataset.confirmed = "yes";
        form.requestSubmit();
      }
    });
  });

  // -- the live feed -----------------------------------------------------------------------
  const sections = Array.from(document.querySelectorAll("[data-fragment]"));
  const lost = document.getElementById("feed-lost");
  let lastHeard = Date.now();
  let watchdog = null;
  function heard() {
    lastHeard = Date.now();
    if (lost && !lost.hidden) {
      lost.hidden = true;
      sections.forEach((s) => s.classList.remove("stale"));
      refresh(null);
    }
    clearTimeout(watchdog);
    watchdog = setTimeout(() => feedLost(), 12000);
  }
  function feedLost() {
    if (!lost || !lost.hidden) return;
    const at = new Date(lastHeard);
    lost.querySelector("time").textContent = at.toLocaleTimeString();
    lost.querySelector("time").dateTime = at.toISOString();
    lost.hidden = false;
    sections.forEach((s) => s.classList.add("stale"));
  }
  // Each section draws only its newest answer: a slower, older answer that arrives after a
  // newer one would otherwise show what is no longer so.
  const inFlight = new Map();
  async function swap(section) {
    const before = inFlight.get(section);
    if (before) before.abort();
    const asked = new AbortController();
    inFlight.set(section, asked);
    let response;
    try {
      response = await fetch(section.dataset.fragment,
        {headers: {"X-Live": "1"}, signal: asked.signal});
    } catch (e) {
      return;  // aborted by a newer change, or the site is gone (the feed says so)
    }
    if (inFlight.get(section) !== asked) return;
    if (response.status === 401) { window.location.assign("/sign-in"); return; }
    if (!response.ok) return;
    const html = await response.text();
    if (inFlight.get(section) !== asked) return;
    inFlight.delete(section);
    const focused = document.activeElement;
    const keep = focused && section.contains(focused) && focused.id
      ? {id: focused.id, value: focused.value, at: focused.selectionStart} : null;
    section.innerHTML = html;
    if (keep) {
      const again = document.getElementById(keep.id);
      if (again) {
        again.value = keep.value;
        again.focus();
        if (keep.at !== null && again.setSelectionRange) again.setSelectionRange(keep.at, keep.at);
      }
    }
    section.dispatchEvent(new CustomEvent("swapped", {bubbles: true}));
  }
  function refresh(topics) {
    sections.forEach((s) => {
      const mine = s.dataset.topics.split(" ");
      if (topics === null || topics.some((t) => mine.includes(t))) swap(s);
    });
  }
  if (sections.length || lost) {
    const feed = new EventSource("/events");
    feed.addEventListener("hello", heard);
    feed.addEventListener("beat", heard);
    feed.addEventListener("changed", (e) => { heard(); refresh(JSON.parse(e.data)); });
    feed.addEventListener("signed-out", () => { window.location.assign("/sign-in"); });
    feed.onerror = () => { feedLost(); };
    heard();
  }

  // -- an optional sound for a new alarm -------------------------------------------------------
  const sound = document.getElementById("alarm-sound");
  const known = new Set(Array.from(document.querySelectorAll("[data-alarm].unack"))
    .map((r) => r.dataset.alarm));
  if (sound) {
    sound.checked = localStorage.getItem("rxfill-sound") === "on";
    sound.addEventListener("change", () => {
      localStorage.setItem("rxfill-sound", sound.checked ? "on" : "off");
    });
  }
  document.addEventListener("swapped", () => {
    const fresh = Array.from(document.querySelectorAll("[data-alarm].unack"))
      .filter((r) => !known.has(r.dataset.alarm));
    fresh.forEach((r) => known.add(r.dataset.alarm));
    if (fresh.length && sound && sound.checked) beep();
  });
  function beep() {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    tone.frequency.value = 880;
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.25);
  }

  // -- a robot's wire, live (Maintenance) --------------------------------------------------------
  const trace = document.getElementById("trace");
  if (trace) {
    const pause = document.getElementById("trace-pause");
    const wire = new EventSource(trace.dataset.src);
    wire.addEventListener("frame", (e) => {
      if (pause && pause.checked) return;
      trace.append(JSON.parse(e.data) + "\n");
      while (trace.childNodes.length > 500) trace.removeChild(trace.firstChild);
      trace.scrollTop = trace.scrollHeight;
    });
    wire.onerror = () => { trace.append("(the trace stream was lost; reconnecting)\n"); };
  }
})();
