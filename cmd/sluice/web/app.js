// The sluice demo page: one EventSource subscription, a publish form, and
// the connection's state. No framework, no build step.
//
// window.sluiceDemo exposes the page's state (received events in arrival
// order, connection state, reconnection count, last event id) for tests
// and for the curious in the console.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const meta = (name) => (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
  const hub = meta("sluice-hub") || "/.well-known/mercure";

  const demo = (window.sluiceDemo = {
    events: [],       // {id, type, data, at} in arrival order
    state: "closed",  // open | connecting | closed
    reconnects: 0,    // opens after the first one
    opens: 0,
    lastEventId: "",
  });

  let es = null;
  let topic = "";
  let retryTimer = 0;
  let retryDelay = 1000;
  // The development tokens the hub put in the page (empty otherwise). A
  // token field still holding one of them is the hub's to renew; a token
  // pasted by hand is never replaced.
  const served = { pub: meta("sluice-publisher-token"), sub: meta("sluice-subscriber-token") };
  const types = new Set(["message", "sluice-reset", "mercure"]);

  const clock = (d) =>
    d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");

  function setState(state, note) {
    const changed = state !== demo.state;
    demo.state = state;
    const el = $("state");
    el.textContent = state;
    el.className = "state state-" + state;
    const now = new Date();
    if (changed) $("state-since").textContent = "since " + clock(now);
    if (!changed && !note) return;
    const li = document.createElement("li");
    li.className = state;
    li.textContent = `${clock(now)} ${state}${note ? " — " + note : ""}`;
    const log = $("conn-log");
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
  }

  function streamURL() {
    const q = new URLSearchParams();
    q.append("topic", topic);
    const tok = $("sub-token").value.trim();
    if ($("sub-use-token").checked && tok) q.append("authorization", tok);
    // A new EventSource cannot send a Last-Event-ID header: the cursor
    // travels as a query parameter. Later automatic reconnections of the
    // same EventSource send the header, which the hub prefers.
    if (demo.lastEventId) q.append("last_event_id", demo.lastEventId);
    return hub + "?" + q.toString();
  }

  function onEvent(e) {
    if (e.lastEventId) demo.lastEventId = e.lastEventId;
    const ev = { id: e.lastEventId, type: e.type, data: e.data, at: Date.now() };
    demo.events.push(ev);
    $("last-id").textContent = demo.lastEventId || "—";
    $("count").textContent = String(demo.events.length);
    $("no-events").hidden = true;
    const tr = document.createElement("tr");
    if (e.type === "sluice-reset") tr.className = "reset";
    for (const v of [demo.events.length, clock(new Date(ev.at)), ev.id, ev.type, ev.data]) {
      const td = document.createElement("td");
      td.textContent = String(v);
      tr.appendChild(td);
    }
    $("events").prepend(tr);
  }

  // refreshTokens reads the page again for the hub's current development
  // tokens (a hub whose key changed, say one on --store memory after a
  // restart, refuses the old ones with 401) and puts them in the token
  // fields that still hold the old ones. It reports whether a token changed.
  async function refreshTokens() {
    if (!served.pub && !served.sub) return false;
    let doc;
    try {
      const res = await fetch(new URL(".", location.href), { cache: "no-store" });
      if (!res.ok) return false;
      doc = new DOMParser().parseFromString(await res.text(), "text/html");
    } catch {
      return false; // the hub is away: the next attempt tries again
    }
    const fresh = (name) => (doc.querySelector(`meta[name="${name}"]`) || {}).content || "";
    let changed = false;
    for (const [field, key, name] of [["pub-token", "pub", "sluice-publisher-token"], ["sub-token", "sub", "sluice-subscriber-token"]]) {
      const tok = fresh(name);
      if (!tok || tok === served[key]) continue;
      if ($(field).value.trim() === served[key]) {
        $(field).value = tok;
        changed = true;
      }
      served[key] = tok;
    }
    return changed;
  }

  // whyRefused asks the hub, with a HEAD of the same subscription, why it
  // refused the stream (an EventSource never shows the status): "" when it
  // does not refuse it now, or the hub cannot be reached.
  async function whyRefused() {
    try {
      const res = await fetch(streamURL(), { method: "HEAD", cache: "no-store" });
      if (res.ok) return "";
      const challenge = res.headers.get("WWW-Authenticate") || "";
      const m = /error_description="([^"]*)"/.exec(challenge);
      return `${res.status} ${m ? m[1] : res.statusText}`;
    } catch {
      return "";
    }
  }

  // retry reconnects after the browser gave up on src: at once with fresh
  // tokens when the hub refused the old ones, else after a backoff.
  async function retry(src) {
    const why = await whyRefused();
    if (src !== es) return; // closed or replaced meanwhile
    if (/^40[13] /.test(why) && (await refreshTokens())) {
      if (src !== es) return;
      setState("closed", `${why}: reconnecting with the hub's fresh tokens`);
      connect();
      return;
    }
    setState("closed", `${why ? why + ", " : ""}retrying in ${retryDelay / 1000}s`);
    retryTimer = setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  }

  function connect() {
    clearTimeout(retryTimer);
    if (es) es.close();
    const src = new EventSource(streamURL()); // withCredentials stays off
    es = src;
    setState("connecting", demo.opens ? "resuming after " + (demo.lastEventId || "the start") : "subscribing to " + topic);
    src.addEventListener("open", () => {
      if (src !== es) return;
      demo.opens++;
      if (demo.opens > 1) demo.reconnects++;
      $("reconnects").textContent = String(demo.reconnects);
      retryDelay = 1000;
      setState("open", demo.opens > 1 ? "reconnected" : "");
    });
    src.addEventListener("error", () => {
      if (src !== es) return;
      if (src.readyState === EventSource.CLOSED) {
        // The browser gave up (an error status: 503 while the hub drains,
        // 401 when it no longer accepts the token): reconnect ourselves,
        // from the last event id.
        src.close();
        setState("closed", "refused");
        retry(src);
      } else {
        setState("connecting", "connection lost, the browser reconnects");
      }
    });
    for (const t of types) src.addEventListener(t, onEvent);
  }

  $("subscribe-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("topic").value.trim();
    if (!t) return;
    if (t !== topic) demo.lastEventId = "";
    topic = t;
    demo.opens = 0;
    connect();
    $("unsubscribe").disabled = false;
    $("pub-topic").value = t;
  });

  $("unsubscribe").addEventListener("click", () => {
    clearTimeout(retryTimer);
    if (es) es.close();
    es = null;
    setState("closed", "closed by you");
    $("unsubscribe").disabled = true;
  });

  $("clear").addEventListener("click", () => {
    $("events").replaceChildren();
    $("no-events").hidden = false;
  });

  $("publish-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const out = $("pub-result");
    const body = new URLSearchParams();
    body.append("topic", $("pub-topic").value.trim());
    body.append("data", $("pub-data").value);
    const type = $("pub-type").value.trim();
    if (type) body.append("type", type);
    if ($("pub-private").checked) body.append("private", "on");
    if (type && !types.has(type)) {
      // EventSource delivers typed events only to listeners of that type.
      types.add(type);
      if (es) es.addEventListener(type, onEvent);
    }
    const post = () => {
      const headers = {};
      const tok = $("pub-token").value.trim();
      if (tok) headers.Authorization = "Bearer " + tok;
      return fetch(hub, { method: "POST", body, headers });
    };
    out.className = "muted";
    out.textContent = "publishing…";
    try {
      let res = await post();
      // A hub that no longer accepts the page's token (its key changed):
      // once more with its fresh one.
      if (res.status === 401 && (await refreshTokens())) res = await post();
      const text = (await res.text()).trim();
      if (!res.ok) throw new Error(`${res.status} ${text || res.statusText}`);
      out.className = "ok";
      out.textContent = "published, id " + text;
    } catch (err) {
      out.className = "err";
      out.textContent = "failed: " + err.message;
    }
  });

  // Subscribe at once: to ?topic= when the address has one, else to the
  // form's topic (demo).
  const initial = new URLSearchParams(location.search).get("topic");
  if (initial) $("topic").value = initial;
  $("subscribe-form").requestSubmit();
})();
