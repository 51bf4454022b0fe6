// The Jobs page: what a tenant's sessions and jobs are doing on qmux's backends, live.
//
// Reads the native API (see /openapi.json) with the tenant's token as `Authorization: Bearer`,
// kept in this tab's sessionStorage only: never in a URL, never in localStorage. Lists come from
// GET /backends, /sessions and /jobs (with the filters as query parameters); after that, the page
// changes only when the server says something changed: GET /events is read as Server-Sent Events
// through fetch() (EventSource cannot send the header), and each event updates its row at once
// and, for what the event does not carry (usage, times, reasons), re-reads that one session, job
// or queue, a burst of events coalesced into one read each. No reload, no polling.
//
// Everything the server says is put into the page with textContent, never parsed as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "qmux.token";
  // a listing's page, and the most rows a table keeps (older ones drop off the end)
  const PAGE = 100;
  const MAX_ROWS = 500;
  // requests the page makes at once when it re-reads many things (a job's metrics each)
  const AT_ONCE = 4;
  // a burst of events is answered by one re-read each, this long after its first event
  const COALESCE_MS = 150;
  // waits between reconnections of the event stream: from the server's `retry:` up to this
  const MAX_RETRY_MS = 30000;
  // the most an event stream may send without a line break (a broken server, not qmux)
  const MAX_LINE = 4 * 1024 * 1024;

  const JOB_STATUS = {
    "job.queued": "QUEUED",
    "job.running": "RUNNING",
    "job.done": "DONE",
    "job.error": "ERROR",
    "job.cancelled": "CANCELLED",
  };
  // a job document's state.status (IBM's word) -> qmux's status, what events, filters and the CLI say
  const STATUS_OF_STATE = {
    Queued: "QUEUED",
    Running: "RUNNING",
    Completed: "DONE",
    Failed: "ERROR",
    Cancelled: "CANCELLED",
  };
  const JOB_RANK = { QUEUED: 0, RUNNING: 1, DONE: 2, ERROR: 2, CANCELLED: 2 };
  const FINAL = new Set(["DONE", "ERROR", "CANCELLED"]);

  const $ = (id) => document.getElementById(id);

  const state = {
    token: null,
    // true once the server took the token: a 401 after that logs out
    loggedIn: false,
    // bumped on each login and logout: the event stream and answers of an earlier login are dropped
    login: 0,
    // bumped on each full read of the lists (a login, a filter changed): answers to an earlier one are dropped
    epoch: 0,
    backends: new Map(), // name -> {device, queue: {priority, normal} | null}
    sessions: new Map(), // id -> session document
    sessionOrder: [], // ids, newest first
    jobs: new Map(), // id -> {doc, status, metrics, times}
    jobOrder: [],
    sessionsNext: null,
    jobsNext: null,
    stream: null, // the AbortController of the event stream
    lastEventId: null,
    retryMs: 1000,
    stale: { sessions: new Set(), jobs: new Set(), queues: new Set() },
    flushing: null,
  };

  // -- talking to the server --------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  function url(path, query) {
    const target = new URL(path, document.baseURI);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== "" && value !== null && value !== undefined) target.searchParams.set(name, value);
    }
    return target;
  }

  function authorization() {
    return { Authorization: `Bearer ${state.token}` };
  }

  async function api(method, path, { query, body } = {}) {
    const headers = { ...authorization(), Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url(path, query), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (error) {
      throw new ApiError(0, `cannot reach the qmux server (${error.message})`);
    }
    readPendingJobs(response);
    if (!response.ok) {
      let message = `${method} ${path} answered ${response.status}`;
      try {
        message = (await response.json()).error.message || message;
      } catch {
        // not qmux's error body: keep the status line
      }
      const retryAfter = Number(response.headers.get("Retry-After")) || null;
      const error = new ApiError(response.status, message, retryAfter);
      if (response.status === 401 && state.loggedIn) loggedOut("The server no longer takes this token. Log in again.");
      throw error;
    }
    return response.status === 204 ? null : response.json();
  }

  // every authenticated answer carries each backend's queue depth: the column stays fresh for free
  function readPendingJobs(response) {
    const header = response.headers.get("Qmux-Pending-Jobs");
    if (!header) return;
    try {
      for (const [name, count] of Object.entries(JSON.parse(header))) {
        const backend = state.backends.get(name);
        if (backend && Number.isInteger(count)) backend.device.queue_length = count;
      }
    } catch {
      return;
    }
    scheduleRender();
  }

  // run `work` on each of `items`, AT_ONCE at a time
  async function eachAtOnce(items, work) {
    const queue = [...items];
    const worker = async () => {
      while (queue.length) await work(queue.shift());
    };
    await Promise.all(Array.from({ length: Math.min(AT_ONCE, queue.length) }, worker));
  }

  // -- loading ------------------------------------------------------------------------------------

  function filters() {
    return {
      backend: $("filter-backend").value,
      state: $("filter-state").value,
      status: $("filter-status").value,
    };
  }

  async function loadAll() {
    const epoch = ++state.epoch;
    const chosen = filters();
    const [backends, sessions, jobs] = await Promise.all([
      api("GET", "backends"),
      api("GET", "sessions", { query: { backend: chosen.backend, state: chosen.state, limit: PAGE } }),
      api("GET", "jobs", { query: { backend: chosen.backend, status: chosen.status, limit: PAGE } }),
    ]);
    if (epoch !== state.epoch) return;
    state.backends = new Map(backends.devices.map((device) => [device.name, { device, queue: null }]));
    fillBackendFilter(backends.devices.map((device) => device.name));
    state.sessions = new Map();
    state.sessionOrder = [];
    state.jobs = new Map();
    state.jobOrder = [];
    addSessions(sessions);
    addJobs(jobs);
    scheduleRender();
    await Promise.all([
      eachAtOnce(state.backends.keys(), (name) => readQueue(name, epoch)),
      eachAtOnce(jobs.jobs.map((job) => job.id), (id) => readMetrics(id, epoch)),
    ]);
  }

  function addSessions(page) {
    for (const session of page.sessions) {
      if (!state.sessions.has(session.id)) state.sessionOrder.push(session.id);
      state.sessions.set(session.id, session);
    }
    state.sessionsNext = page.next;
  }

  function addJobs(page) {
    for (const doc of page.jobs) {
      if (!state.jobs.has(doc.id)) state.jobOrder.push(doc.id);
      state.jobs.set(doc.id, { doc, status: statusOf(doc), metrics: null, times: {} });
    }
    state.jobsNext = page.next;
  }

  async function more(kind) {
    const epoch = state.epoch;
    const chosen = filters();
    try {
      if (kind === "sessions") {
        const query = { backend: chosen.backend, state: chosen.state, limit: PAGE, cursor: state.sessionsNext };
        const page = await api("GET", "sessions", { query });
        if (epoch === state.epoch) addSessions(page);
      } else {
        const query = { backend: chosen.backend, status: chosen.status, limit: PAGE, cursor: state.jobsNext };
        const page = await api("GET", "jobs", { query });
        if (epoch !== state.epoch) return;
        addJobs(page);
        await eachAtOnce(page.jobs.map((job) => job.id), (id) => readMetrics(id, epoch));
      }
    } catch (error) {
      say(`Could not read older ${kind}: ${error.message}`, true);
    }
    scheduleRender();
  }

  async function readQueue(name, epoch = state.epoch) {
    try {
      const queue = await api("GET", `backends/${encodeURIComponent(name)}/queue`);
      const backend = state.backends.get(name);
      if (epoch === state.epoch && backend) backend.queue = queue;
    } catch (error) {
      if (error.status !== 404) throw error;
    }
    scheduleRender();
  }

  async function readMetrics(id, epoch = state.epoch) {
    try {
      const metrics = await api("GET", `jobs/${id}/metrics`);
      const job = state.jobs.get(id);
      if (epoch === state.epoch && job) job.metrics = metrics;
    } catch (error) {
      if (error.status !== 404) throw error; // gone: retention dropped it
    }
    scheduleRender();
  }

  async function readSession(id, epoch) {
    let session;
    try {
      session = await api("GET", `sessions/${id}`);
    } catch (error) {
      if (error.status === 404) return;
      throw error;
    }
    if (epoch !== state.epoch) return;
    const known = state.sessions.get(id);
    if (known && known.state === "closed" && session.state !== "closed") return; // an older answer
    state.sessions.set(id, session);
    if (!known) {
      if (!sessionShown(session)) {
        state.sessions.delete(id);
        return;
      }
      insertNewest(state.sessionOrder, id, (other) => opened(state.sessions.get(other)));
      trim(state.sessionOrder, state.sessions);
    }
  }

  async function readJob(id, epoch) {
    let doc;
    let metrics;
    try {
      [doc, metrics] = await Promise.all([api("GET", `jobs/${id}`), api("GET", `jobs/${id}/metrics`)]);
    } catch (error) {
      if (error.status === 404) return;
      throw error;
    }
    if (epoch !== state.epoch) return;
    const status = statusOf(doc);
    let job = state.jobs.get(id);
    if (!job) {
      if (!jobShown(doc.backend, status)) return;
      job = { doc, status, metrics, times: {} };
      state.jobs.set(id, job);
      insertNewest(state.jobOrder, id, (other) => state.jobs.get(other)?.metrics?.timestamps.created ?? "");
      trim(state.jobOrder, state.jobs);
    }
    job.doc = doc;
    job.metrics = metrics;
    if (JOB_RANK[status] >= JOB_RANK[job.status]) job.status = status;
  }

  function statusOf(doc) {
    return STATUS_OF_STATE[doc.state.status] || doc.state.status;
  }

  // put `id` in `order` (newest first, as the listings are) by the instant `when` gives each id
  function insertNewest(order, id, when) {
    const at = when(id);
    const index = order.findIndex((other) => other !== id && when(other) < at);
    if (index < 0) order.push(id);
    else order.splice(index, 0, id);
  }

  function opened(session) {
    return session.timestamps.length ? session.timestamps[0].timestamp : session.started_at || "";
  }

  function trim(order, items) {
    while (order.length > MAX_ROWS) items.delete(order.pop());
  }

  // -- live updates -------------------------------------------------------------------------------

  // Follow GET /events until logout, reconnecting with Last-Event-ID (the server resumes after it).
  // The lists are read once the stream is open (its subscription exists from its first byte), so an
  // event between the two is not lost: it waits in the stream, and is applied after the lists.
  async function follow(login) {
    let wait = state.retryMs;
    let loaded = false;
    while (login === state.login) {
      const controller = new AbortController();
      state.stream = controller;
      let trouble = "";
      try {
        const headers = { ...authorization(), Accept: "text/event-stream" };
        if (state.lastEventId !== null) headers["Last-Event-ID"] = state.lastEventId;
        const response = await fetch(url("events"), {
          headers,
          signal: controller.signal,
          cache: "no-store",
          credentials: "omit",
        });
        if (response.status === 401) {
          loggedOut("The server no longer takes this token. Log in again.");
          return;
        }
        if (!response.ok) throw new Error(`GET /events answered ${response.status}`);
        if (!loaded || state.lastEventId === null) {
          await reload();
          loaded = true;
        }
        if (login !== state.login) return;
        connection("live", "Live: updates as they happen");
        wait = state.retryMs;
        await readEvents(response.body, (event) => onEvent(event, login));
        trouble = "the server ended the event stream";
      } catch (error) {
        if (controller.signal.aborted) return;
        trouble = error.message;
      }
      if (login !== state.login) return;
      if (!loaded) {
        await reload(); // the lists, even without live updates
        loaded = true;
      }
      connection("retrying", `Not live (${trouble}); trying again in ${Math.round(wait / 1000)} s`);
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, MAX_RETRY_MS);
    }
  }

  // Server-Sent Events, parsed as the HTML standard says: `field: value` lines, a blank line ends one
  async function readEvents(body, dispatch) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let data = [];
    let kind = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, "");
        buffer = buffer.slice(end + 1);
        if (line === "") {
          if (data.length) dispatch({ kind: kind || "message", data: data.join("\n") });
          data = [];
          kind = "";
          continue;
        }
        if (line.startsWith(":")) continue; // a keepalive comment
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "data") data.push(text);
        else if (field === "event") kind = text;
        else if (field === "id" && !text.includes("\0")) state.lastEventId = text;
        else if (field === "retry" && /^\d+$/.test(text)) state.retryMs = Number(text);
      }
      if (buffer.length > MAX_LINE) throw new Error("the event stream sent a line too long to be an event");
    }
  }

  function onEvent(message, login) {
    if (login !== state.login) return;
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (event.kind === "lagged") {
      say(`The page missed ${event.data.missed ?? "some"} events; reading everything again.`);
      reload();
      return;
    }
    if (event.backend) state.stale.queues.add(event.backend);
    if (event.kind.startsWith("session.")) {
      const chosen = filters().backend;
      if (state.sessions.has(event.session_id) || !chosen || event.backend === chosen) {
        state.stale.sessions.add(event.session_id);
      }
      if (event.kind === "session.max_time_warning" || event.kind === "session.ittl_warning") {
        const left = event.data.seconds_left;
        const what = event.kind === "session.ittl_warning" ? "interactive timeout" : "max time";
        if (state.sessions.has(event.session_id)) say(`Session ${event.session_id}: ${left} s of ${what} left.`);
      }
    } else if (event.kind in JOB_STATUS) {
      onJobEvent(event);
    }
    scheduleFlush();
  }

  function onJobEvent(event) {
    const status = JOB_STATUS[event.kind];
    const job = state.jobs.get(event.job_id);
    if (job) {
      if (JOB_RANK[status] >= JOB_RANK[job.status]) job.status = status; // at once, before the re-read
      if (status === "RUNNING") job.times.running = event.at;
      if (FINAL.has(status)) job.times.finished = event.at;
      if (FINAL.has(status) || status === "RUNNING") state.stale.jobs.add(event.job_id);
      scheduleRender();
    } else if (jobShown(event.backend, status)) {
      state.stale.jobs.add(event.job_id);
    }
    if (event.session_id && state.sessions.has(event.session_id)) state.stale.sessions.add(event.session_id);
  }

  function scheduleFlush() {
    if (state.flushing === null) state.flushing = setTimeout(flush, COALESCE_MS);
  }

  // re-read what the events of the last moments touched; one flush at a time, the next one after it
  async function flush() {
    const epoch = state.epoch;
    const { sessions, jobs, queues } = state.stale;
    state.stale = { sessions: new Set(), jobs: new Set(), queues: new Set() };
    try {
      if (sessions.size + jobs.size > PAGE) {
        await loadAll(); // a burst: one read of the lists is cheaper than a read per row
      } else {
        await Promise.all([
          eachAtOnce(sessions, (id) => readSession(id, epoch)),
          eachAtOnce(jobs, (id) => readJob(id, epoch)),
          eachAtOnce(queues, (name) => readQueue(name, epoch)),
        ]);
      }
    } catch (error) {
      if (error.status !== 401) say(`Could not read an update: ${error.message}`, true);
    }
    state.flushing = null;
    scheduleRender();
    const { sessions: more, jobs: moreJobs, queues: moreQueues } = state.stale;
    if (state.token !== null && more.size + moreJobs.size + moreQueues.size > 0) scheduleFlush();
  }

  async function reload() {
    try {
      await loadAll();
    } catch (error) {
      if (error.status !== 401) say(`Could not read the lists: ${error.message}`, true);
    }
  }

  // -- filters ------------------------------------------------------------------------------------

  function sessionShown(session) {
    const chosen = filters();
    return (!chosen.backend || session.backend_name === chosen.backend) && (!chosen.state || session.state === chosen.state);
  }

  function jobShown(backend, status) {
    const chosen = filters();
    return (!chosen.backend || backend === chosen.backend) && (!chosen.status || status === chosen.status);
  }

  function fillBackendFilter(names) {
    const select = $("filter-backend");
    const chosen = select.value;
    const known = new Set([...select.options].map((option) => option.value));
    for (const name of names) {
      if (known.has(name)) continue;
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      select.append(option);
    }
    select.value = chosen;
  }

  // -- drawing ------------------------------------------------------------------------------------

  let renderPending = false;

  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    requestAnimationFrame(() => {
      renderPending = false;
      render();
    });
  }

  function render() {
    if (state.token === null) return;
    const sessions = state.sessionOrder.map((id) => state.sessions.get(id)).filter((s) => s && sessionShown(s));
    const jobs = state.jobOrder
      .map((id) => state.jobs.get(id))
      .filter((job) => job && jobShown(job.doc.backend, job.status));
    renderBackends();
    renderRows($("sessions").tBodies[0], sessions, (s) => s.id, sessionCells, sessionRow);
    renderRows($("jobs").tBodies[0], jobs, (job) => job.doc.id, jobCells, jobRow);
    $("sessions-empty").hidden = sessions.length > 0;
    $("jobs-empty").hidden = jobs.length > 0;
    $("sessions-more").hidden = state.sessionsNext === null;
    $("jobs-more").hidden = state.jobsNext === null;
  }

  function renderBackends() {
    const holders = new Map();
    const open = new Map();
    for (const session of state.sessions.values()) {
      if (session.state === "active") holders.set(session.backend_name, session.id);
      if (session.state !== "closed") open.set(session.backend_name, (open.get(session.backend_name) || 0) + 1);
    }
    const rows = [...state.backends.values()];
    renderRows($("backends").tBodies[0], rows, (b) => b.device.name, (b) => {
      const { device, queue } = b;
      const online = device.status.name === "online";
      return [
        { text: device.name, header: true },
        { text: online ? "online" : "offline", badge: online ? "ok" : "bad" },
        { text: String(device.qubits), number: true },
        { text: holders.get(device.name) || "—", code: holders.has(device.name) },
        { text: String(device.queue_length), number: true },
        { text: queue ? String(queue.priority) : "…", number: true },
        { text: queue ? String(queue.normal) : "…", number: true },
        { text: String(open.get(device.name) || 0), number: true },
      ];
    });
  }

  function sessionCells(session) {
    const live = session.state !== "closed";
    return [
      { text: session.id, code: true, header: true },
      { text: session.backend_name },
      { text: session.mode },
      { text: session.state, badge: session.state },
      { text: session.accepting_jobs ? "yes" : "no" },
      { time: opened(session) },
      { time: session.closed_at },
      { text: seconds(session.elapsed_time), number: true },
      { text: live ? seconds(session.active_ttl) : "—", number: true },
      { text: session.closed_reason || "—", wrap: true },
    ];
  }

  function sessionRow(row, session) {
    const live = session.state !== "closed";
    const cell = actionCell(row);
    const closing = button(cell, "close", "Close", `Close session ${session.id}`, () => closeSession(session.id));
    const cancelling = button(cell, "cancel", "Cancel", `Cancel session ${session.id}`, () => cancelSession(session.id));
    closing.hidden = !live || !session.accepting_jobs;
    cancelling.hidden = !live;
  }

  function jobCells(job) {
    const { doc, metrics } = job;
    const times = metrics ? metrics.timestamps : {};
    return [
      { text: doc.id, code: true, header: true },
      { text: doc.session_id || "job mode", code: Boolean(doc.session_id) },
      { text: doc.backend },
      { text: doc.program.id },
      { text: job.status, badge: job.status.toLowerCase() },
      { time: times.created },
      { time: times.running || job.times.running },
      { time: times.finished || job.times.finished },
      { text: metrics ? seconds(metrics.queue_seconds) : "", number: true },
      // how long it ran: once it has ended (a running job's metrics are as of their last read)
      { text: metrics && FINAL.has(job.status) ? seconds(metrics.usage.quantum_seconds) : "", number: true },
      { text: doc.state.reason || "", wrap: true },
    ];
  }

  function jobRow(row, job) {
    const cell = actionCell(row);
    const cancelling = button(cell, "cancel", "Cancel", `Cancel job ${job.doc.id}`, () => cancelJob(job.doc.id));
    cancelling.hidden = FINAL.has(job.status);
  }

  // keyed rows, updated in place: a row keeps its focus and its buttons while the data changes
  function renderRows(tbody, items, key, cellsOf, decorate) {
    const wanted = new Set(items.map(key));
    for (const row of [...tbody.rows]) {
      if (!wanted.has(row.dataset.key)) row.remove();
    }
    const existing = new Map([...tbody.rows].map((row) => [row.dataset.key, row]));
    items.forEach((item, index) => {
      let row = existing.get(key(item));
      if (!row) {
        row = document.createElement("tr");
        row.dataset.key = key(item);
      }
      fillCells(row, cellsOf(item));
      if (decorate) decorate(row, item);
      if (tbody.rows[index] !== row) tbody.insertBefore(row, tbody.rows[index] || null);
    });
  }

  function fillCells(row, cells) {
    cells.forEach((cell, index) => {
      let td = row.cells[index];
      const tag = cell.header ? "TH" : "TD";
      if (!td || td.tagName !== tag || td.classList.contains("actions")) {
        const fresh = document.createElement(tag);
        if (cell.header) fresh.scope = "row";
        if (td) td.replaceWith(fresh);
        else row.append(fresh);
        td = fresh;
      }
      td.className = cell.number ? "number" : cell.wrap ? "wrap" : "";
      if (cell.time !== undefined) {
        setTime(td, cell.time);
      } else {
        setText(td, cell.text, cell);
      }
    });
  }

  function setText(td, text, cell) {
    const kind = cell.badge ? `badge ${cell.badge}` : cell.code ? "id" : "";
    let inner = td.firstElementChild;
    if (!kind) {
      if (inner || td.textContent !== text) td.textContent = text;
      return;
    }
    if (!inner || inner.tagName !== (cell.code ? "CODE" : "SPAN")) {
      inner = document.createElement(cell.code ? "code" : "span");
      td.replaceChildren(inner);
    }
    inner.className = kind;
    if (inner.textContent !== text) inner.textContent = text;
  }

  function setTime(td, iso) {
    if (!iso) {
      if (td.textContent !== "—" || td.firstElementChild) td.textContent = "—";
      return;
    }
    let time = td.firstElementChild;
    if (!time || time.tagName !== "TIME") {
      time = document.createElement("time");
      td.replaceChildren(time);
    }
    if (time.dateTime !== iso) {
      time.dateTime = iso;
      time.textContent = clock(iso);
      time.title = iso;
    }
  }

  function actionCell(row) {
    let cell = row.querySelector("td.actions");
    if (!cell) {
      cell = document.createElement("td");
      cell.className = "actions";
      row.append(cell);
    }
    return cell;
  }

  function button(cell, name, label, description, action) {
    let found = cell.querySelector(`button[data-action="${name}"]`);
    if (!found) {
      found = document.createElement("button");
      found.type = "button";
      found.dataset.action = name;
      found.className = name === "cancel" ? "small danger" : "small";
      found.textContent = label;
      found.addEventListener("click", () => found.onAction());
      cell.append(found);
    }
    found.setAttribute("aria-label", description);
    found.onAction = action;
    return found;
  }

  // the time of day for today's times, the date too for older ones; the full instant is the title
  function clock(iso) {
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return iso;
    const two = (n) => String(n).padStart(2, "0");
    const time = `${two(when.getHours())}:${two(when.getMinutes())}:${two(when.getSeconds())}`;
    if (when.toDateString() === new Date().toDateString()) return time;
    return `${when.getFullYear()}-${two(when.getMonth() + 1)}-${two(when.getDate())} ${time}`;
  }

  function seconds(value) {
    if (value === null || value === undefined) return "—";
    if (value < 1) return `${Math.round(value * 1000)} ms`;
    if (value < 60) return `${value.toFixed(1)} s`;
    const whole = Math.round(value);
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const s = whole % 60;
    return h ? `${h}h ${m}m` : `${m}m ${s}s`;
  }

  // -- actions ------------------------------------------------------------------------------------

  // a modal <dialog>: resolves true for the action, false for "Keep it" or Escape
  function confirmAction(title, text, action) {
    const dialog = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-yes").textContent = action;
    return new Promise((resolve) => {
      const answered = () => {
        dialog.removeEventListener("close", answered);
        resolve(dialog.returnValue === "yes");
      };
      dialog.addEventListener("close", answered);
      dialog.returnValue = "";
      dialog.showModal();
      $("confirm-no").focus();
    });
  }

  async function act(title, text, action, method, path, body, done) {
    if (!(await confirmAction(title, text, action))) return;
    try {
      await api(method, path, { body });
      say(done);
    } catch (error) {
      say(`${action} failed: ${error.message}`, true);
    }
  }

  function closeSession(id) {
    return act(
      `Close session ${id}?`,
      "It takes no new jobs; the jobs it has queued still run.",
      "Close session",
      "PATCH",
      `sessions/${id}`,
      { accepting_jobs: false },
      `Closed session ${id}: it takes no new jobs.`,
    );
  }

  function cancelSession(id) {
    return act(
      `Cancel session ${id}?`,
      "Its queued jobs are cancelled and it closes; a job already running finishes. This cannot be undone.",
      "Cancel session",
      "DELETE",
      `sessions/${id}/close`,
      undefined,
      `Cancelled session ${id}.`,
    );
  }

  function cancelJob(id) {
    return act(
      `Cancel job ${id}?`,
      "A queued job will not run; a running one is asked to stop. This cannot be undone.",
      "Cancel job",
      "POST",
      `jobs/${id}/cancel`,
      undefined,
      `Asked to cancel job ${id}.`,
    );
  }

  // -- logging in and out -------------------------------------------------------------------------

  function refusedTokenMessage(error) {
    if (error.status === 401) return "The server refused this token. Check it and try again: each tenant has its own.";
    if (error.status === 429) {
      const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : "";
      return `Too many failed logins from this address.${wait}`;
    }
    return `Could not log in: ${error.message}`;
  }

  async function login(token, remembered) {
    const login = ++state.login;
    state.token = token;
    $("login-error").textContent = "";
    try {
      await api("GET", "backends"); // the token's check: every other route needs it too
    } catch (error) {
      if (login !== state.login) return;
      const expired = remembered && error.status === 401;
      loggedOut(expired ? "The token of this tab is no longer valid. Log in again." : refusedTokenMessage(error));
      return;
    }
    if (login !== state.login) return;
    state.loggedIn = true;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    $("login").hidden = true;
    $("board").hidden = false;
    $("logout").hidden = false;
    connection("retrying", "Connecting…");
    follow(login);
  }

  function logout() {
    loggedOut("");
    say("");
  }

  function loggedOut(message) {
    state.login += 1;
    state.epoch += 1;
    state.token = null;
    state.loggedIn = false;
    sessionStorage.removeItem(TOKEN_KEY);
    if (state.stream) state.stream.abort();
    state.stream = null;
    state.lastEventId = null;
    state.backends = new Map();
    state.sessions = new Map();
    state.jobs = new Map();
    state.sessionOrder = [];
    state.jobOrder = [];
    state.sessionsNext = null;
    state.jobsNext = null;
    state.stale = { sessions: new Set(), jobs: new Set(), queues: new Set() };
    for (const id of ["backends", "sessions", "jobs"]) $(id).tBodies[0].replaceChildren();
    const dialog = $("confirm");
    if (dialog.open) dialog.close();
    showLogin(message);
  }

  function showLogin(message) {
    $("board").hidden = true;
    $("logout").hidden = true;
    $("connection").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message;
    $("token").focus();
  }

  function connection(kind, text) {
    const line = $("connection");
    line.hidden = false;
    line.className = `connection ${kind}`;
    line.textContent = text;
  }

  function say(text, error = false) {
    const notice = $("notice");
    notice.textContent = text;
    notice.classList.toggle("error", error);
  }

  function start() {
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      if (!token) {
        $("login-error").textContent = "Enter your tenant's token.";
        return;
      }
      login(token, false);
    });
    $("logout").addEventListener("click", logout);
    $("confirm-yes").addEventListener("click", () => $("confirm").close("yes"));
    $("confirm-no").addEventListener("click", () => $("confirm").close("no"));
    for (const id of ["filter-backend", "filter-state", "filter-status"]) $(id).addEventListener("change", reload);
    $("filters").addEventListener("submit", (event) => event.preventDefault());
    $("sessions-more").addEventListener("click", () => more("sessions"));
    $("jobs-more").addEventListener("click", () => more("jobs"));
    const remembered = sessionStorage.getItem(TOKEN_KEY);
    if (remembered) login(remembered, true);
    else showLogin("");
  }

  start();
})();
