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

  // The tabs, when the hub has the demo relay.
  for (const b of document.querySelectorAll(".tabs button")) {
    b.addEventListener("click", () => {
      for (const o of document.querySelectorAll(".tabs button")) {
        o.setAttribute("aria-selected", String(o === b));
        $(o.dataset.tab).hidden = o !== b;
      }
    });
  }
  const relayName = meta("sluice-relay");
  if (relayName) relayTab(relayName);

  // Subscribe at once: to ?topic= when the address has one, else to the
  // form's topic (demo).
  const initial = new URLSearchParams(location.search).get("topic");
  if (initial) $("topic").value = initial;
  $("subscribe-form").requestSubmit();

  // relayTab runs the "LLM answer" tab: POST /relay/NAME starts the answer
  // and streams it; when the connection drops, GET /relay/streams/ID with
  // the last event id resumes it, on whichever hub answers, until the hub
  // says it is over (204) or a relay-… event ends it. An EventSource
  // cannot POST, so the page reads the streams with fetch. Stop POSTs
  // /relay/streams/ID/cancel with the token that asked: the hub cancels the
  // upstream request wherever it runs, and the page ends the answer there.
  function relayTab(name) {
    const rel = (demo.relay = {
      id: "",          // the relay's stream id (Sluice-Relay-Id)
      state: "idle",   // idle | streaming | reconnecting | complete | cancelled | ended | failed
      end: "",         // the type of the relay-… event that ended it, if one did
      events: [],      // {id, type, data} in arrival order
      answer: "",      // the tokens' text
      connections: 0,  // responses that streamed the answer
      lastEventId: "",
    });
    let abort = null;  // aborts the current response
    let run = 0;       // the current answer; an older loop stops
    let token = "";    // the token that asked for the current answer
    let stopping = 0;  // the answer whose cancel is under way, if one is

    // live reports whether the answer is under way (Stop and Drop apply).
    const live = () => rel.id !== "" && (rel.state === "streaming" || rel.state === "reconnecting");

    function relayNote(note) {
      const li = document.createElement("li");
      li.textContent = `${clock(new Date())} ${note}`;
      $("relay-log").appendChild(li);
      $("relay-log").scrollTop = $("relay-log").scrollHeight;
    }

    function setRelayState(state, note) {
      rel.state = state;
      $("relay-state").textContent = state;
      $("relay-state").className = "state state-" + ({ streaming: "open", complete: "open", reconnecting: "connecting", cancelled: "stopped" }[state] || "closed");
      if (note) relayNote(note);
      $("relay-drop").disabled = !live();
      $("relay-stop").disabled = !live() || stopping === run;
    }

    // refusal describes a response the hub refused: its status and why.
    const refusal = async (res) => `${res.status} ${(await res.text().catch(() => "")).trim() || res.statusText}`;

    // tokenText is the text of an event of an OpenAI-compatible answer
    // (choices[0].delta.content), or its data when it is something else.
    function tokenText(data) {
      if (data === "[DONE]") return "";
      try {
        const c = JSON.parse(data).choices[0];
        return (c.delta && c.delta.content) || c.text || "";
      } catch {
        return data;
      }
    }

    function onRelayEvent(ev) {
      if (ev.id) rel.lastEventId = ev.id;
      rel.events.push(ev);
      if (ev.type === "message") rel.answer += tokenText(ev.data);
      $("relay-answer").textContent = rel.answer;
      $("relay-count").textContent = String(rel.events.length);
      $("relay-last-id").textContent = rel.lastEventId || "—";
    }

    // read streams the events of res to onRelayEvent, as the WHATWG
    // parser does (data, event and id fields; comments and retry ignored).
    // It returns the type of the relay-… event that ended the answer, or
    // "" when the response ended without one; it throws when the
    // connection breaks.
    async function read(res, mine) {
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "", data = [], type = "", id = null;
      for (;;) {
        const { value, done } = await reader.read();
        if (done || mine !== run) return "";
        buf += value;
        for (;;) {
          const m = /\r\n|\r|\n/.exec(buf);
          if (!m || (m[0] === "\r" && m.index === buf.length - 1)) break; // a CR may precede an LF yet to come
          const line = buf.slice(0, m.index);
          buf = buf.slice(m.index + m[0].length);
          if (line === "") {
            if (id !== null) rel.lastEventId = id;
            if (data.length) {
              const ev = { id: id !== null ? id : rel.lastEventId, type: type || "message", data: data.join("\n") };
              onRelayEvent(ev);
              if (ev.type.startsWith("relay-")) return ev.type;
            }
            data = []; type = ""; id = null;
            continue;
          }
          const colon = line.indexOf(":");
          if (colon === 0) continue;
          const field = colon < 0 ? line : line.slice(0, colon);
          let v = colon < 0 ? "" : line.slice(colon + 1);
          if (v.startsWith(" ")) v = v.slice(1);
          if (field === "data") data.push(v);
          else if (field === "event") type = v;
          else if (field === "id" && !v.includes("\0")) id = v;
        }
      }
    }

    async function ask() {
      const mine = ++run;
      if (abort) abort.abort();
      Object.assign(rel, { id: "", end: "", events: [], answer: "", connections: 0, lastEventId: "" });
      token = $("relay-token").value.trim();
      $("relay-answer").textContent = "";
      $("relay-log").replaceChildren();
      $("relay-connections").textContent = "0";
      $("relay-count").textContent = "0";
      setRelayState("streaming", "asking the relay " + name);
      let res;
      try {
        abort = new AbortController();
        const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
        if (token) headers.Authorization = "Bearer " + token;
        res = await fetch("/relay/" + encodeURIComponent(name), { method: "POST", headers, body: $("relay-body").value, signal: abort.signal });
      } catch (err) {
        if (mine !== run) return; // another answer aborted this one
        setRelayState("failed", "the hub cannot be reached: " + err.message);
        return;
      }
      if (mine !== run) return;
      const id = res.headers.get("Sluice-Relay-Id") || "";
      if (!res.ok || !id) {
        setRelayState("failed", "refused: " + (await refusal(res)));
        return;
      }
      rel.id = id;
      setRelayState("streaming"); // Stop and Drop apply now
      let delay = 0;
      for (;;) {
        if (res) {
          rel.connections++;
          $("relay-connections").textContent = String(rel.connections);
          try {
            const end = await read(res, mine);
            if (mine !== run) return;
            if (end) {
              rel.end = end;
              const last = rel.events[rel.events.length - 1].data;
              if (end === "relay-cancelled") setRelayState("cancelled", `stopped${stopping === mine ? " by you" : ""} (${end}): ${last}`);
              else setRelayState("ended", `ended by ${end}: ${last}`);
              break;
            }
            delay = 0; // a clean end: ask whether anything is left
          } catch (err) {
            if (mine !== run) return;
            setRelayState("reconnecting", "connection lost: " + err.message);
          }
          res = null;
        }
        if (delay) await new Promise((ok) => setTimeout(ok, delay));
        if (mine !== run) return;
        delay = Math.min(Math.max(delay * 2, 250), 2000);
        try {
          abort = new AbortController();
          const headers = rel.lastEventId ? { "Last-Event-ID": rel.lastEventId } : {};
          const r = await fetch("/relay/streams/" + encodeURIComponent(rel.id), { headers, cache: "no-store", signal: abort.signal });
          if (mine !== run) return;
          if (r.status === 204) {
            setRelayState("complete", `complete: ${rel.events.length} events over ${rel.connections} connections`);
            break;
          }
          if (!r.ok) {
            setRelayState("reconnecting", `resuming: ${r.status}, retrying in ${delay / 1000}s`);
            continue;
          }
          setRelayState("streaming", "resumed after " + (rel.lastEventId || "the start"));
          res = r;
        } catch (err) {
          if (mine !== run) return;
          setRelayState("reconnecting", `resuming failed (${err.message}), retrying in ${delay / 1000}s`);
        }
      }
    }

    // stop asks the hub to cancel the answer, with the token that asked
    // for it. Once the hub has (204), the answer ends here: what came so
    // far stays, and the page reads no more (the upstream request is
    // cancelled; the relay's log ends with relay-cancelled). When the hub
    // refuses, the answer goes on and Stop may be pressed again.
    async function stop() {
      const mine = run;
      if (!live() || stopping === mine) return;
      stopping = mine;
      setRelayState(rel.state, "stopping: asking the hub to cancel the relay");
      let failed = "";
      try {
        const headers = token ? { Authorization: "Bearer " + token } : {};
        const res = await fetch(`/relay/streams/${encodeURIComponent(rel.id)}/cancel`, { method: "POST", headers, cache: "no-store" });
        if (!res.ok) failed = await refusal(res);
      } catch (err) {
        failed = "the hub cannot be reached: " + err.message;
      }
      if (mine !== run) return; // another answer meanwhile
      stopping = 0;
      if (!live()) {
        // The answer ended meanwhile, perhaps with relay-cancelled.
        if (failed) relayNote("stopping failed, the answer is over: " + failed);
        return;
      }
      if (failed) {
        setRelayState(rel.state, "stopping failed: " + failed);
        return;
      }
      run++; // the answer's loop stops
      if (abort) abort.abort();
      setRelayState("cancelled", `stopped by you: ${rel.events.length} events kept`);
    }

    $("relay-form").addEventListener("submit", (e) => {
      e.preventDefault();
      ask();
    });
    $("relay-drop").addEventListener("click", () => {
      if (abort) abort.abort(); // the loop resumes from the last event id
    });
    $("relay-stop").addEventListener("click", stop);
  }
})();
