/* The journey canvas: Drawflow draws and drags; this script keeps the journey document.
 *
 * The document (steps, start, layout) is the truth: every gesture changes it, posts it whole to
 * the canvas endpoint (which saves through the journey services, as the API does) and redraws
 * from what the server answers. Drawflow's own state is thrown away on each redraw, so the
 * canvas never shows a link the journey does not have. A step's fields are edited in the side
 * panel, which is the builder's step form fetched without its page.
 */
(function () {
  "use strict";

  const root = document.getElementById("journey-canvas");
  if (!root || typeof Drawflow === "undefined") return;
  const report = root.dataset.mode === "report";
  const area = root.querySelector(".jc-area");
  const panel = root.querySelector(".jc-panel");
  const status = root.querySelector(".jc-status");
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]");
  const ENTRY = "__entry";
  const SKELETONS = {
    condition: { branches: [] }, wait: { duration_s: 3600 }, end: {},
    split: { branches: [{ percent: 50 }, { percent: 50 }] }, wait_event: { timeout_s: 86400 }, jump: {},
  };
  // Django's JavaScript catalogue (loaded before this script) translates; without it, the English text.
  const gettext = window.gettext || ((message) => message);
  const ngettext = window.ngettext || ((singular, plural, count) => (count === 1 ? singular : plural));
  const interpolate = window.interpolate || ((format, values) => format.replace(/%\((\w+)\)s/g, (_, name) => values[name]));
  const counted = (format, count) => interpolate(format, { count }, true); // a ngettext text and its count
  const KIND = { action: gettext("Action"), condition: gettext("Condition"), wait: gettext("Wait"), end: gettext("End"), split: gettext("Split"),
    wait_event: gettext("Wait for event"), jump: gettext("Jump") };

  let doc = JSON.parse(document.getElementById("journey-canvas-data").textContent);
  let byId = {}; // Drawflow node id -> step key (ENTRY for the entry)
  let idOf = {}; // step key -> Drawflow node id
  let redrawing = false;
  let batch = null; // changes made by one gesture, saved once
  let pending = 0; // gestures not saved yet
  let saving = Promise.resolve();
  let selectedArrow = null; // {from, path, to}: where the next palette item goes
  let focusKey = "";
  let moved = false; // a node dragged: the click that ends the drag does not open its panel
  const undo = [];

  const editor = new Drawflow(area);
  // Our own keys (onKey): Drawflow's Delete acts on the last click, even from a field of the panel.
  editor.key = function () {};
  editor.curvature = 0.35;
  editor.zoom_min = 0.3;
  editor.force_first_input = true; // a link dropped anywhere on a step goes in
  editor.editor_mode = doc.editable ? "edit" : "view";
  editor.start();
  editor.precanvas.style.transformOrigin = "0 0"; // so that fit is plain arithmetic

  // --- the document -----------------------------------------------------------------------
  const clone = (value) => JSON.parse(JSON.stringify(value));
  const stepOf = (key) => doc.steps.find((s) => s.key === key);
  const text = (value, max) => {
    const s = String(value == null ? "" : value);
    return s.length > max ? s.slice(0, max - 1) + "\u2026" : s;
  };
  const escape = (value) =>
    String(value).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

  /* Each output of a step, in the order Drawflow draws them: [path in the step, label]. */
  function outputsOf(step) {
    const then = ["next", gettext("then")];
    const onError = ["on_error", gettext("on error")];
    if (step.type === "action") return [then, onError, ["on_timeout", gettext("on timeout")], ["on_capped", gettext("when capped")]];
    if (step.type === "wait") return [then, onError];
    if (step.type === "wait_event") return [["next", gettext("when it comes")], ["on_timeout", gettext("on timeout")]];
    if (step.type === "condition") {
      const branches = (step.branches || []).map((b, i) =>
        ["branches." + i, interpolate(gettext("if %(expression)s"), { expression: text(b.expression || "\u2026", 18) }, true)]);
      const more = doc.editable ? [["branches.new", gettext("+ if")]] : []; // a new branch is drawn from here
      return [...branches, ...more, ["else", gettext("otherwise")], onError];
    }
    if (step.type === "split") {
      const shares = (step.branches || []).map((b, i) =>
        ["branches." + i, (b.percent || 0) + " %"]);
      return [...shares, ...(doc.editable ? [["branches.new", gettext("+ branch")]] : [])];
    }
    return [];
  }

  function target(step, path) {
    if (path === "branches.new") return "";
    if (path.startsWith("branches.")) return ((step.branches || [])[Number(path.slice(9))] || {}).next || "";
    return step[path] || "";
  }

  function setTarget(step, path, key) {
    if (path === "branches.new") {
      const branch = step.type === "split" ? { percent: 0, next: key } : { expression: "", next: key };
      if (key) (step.branches = step.branches || []).push(branch);
    } else if (path.startsWith("branches.")) {
      step.branches[Number(path.slice(9))].next = key;
    } else if (key) {
      step[path] = key;
    } else {
      delete step[path];
    }
  }

  /* Where a new step's own way on goes, when it is put between two steps (a split's: its first branch). */
  const onwards = (step) =>
    ({ action: "next", wait: "next", wait_event: "next", condition: "else", split: "branches.0" })[step.type];

  /* The output a step dropped after this one links from: its free way on, or a condition's next branch. */
  function freeOutput(step) {
    if (step.type === "condition" || step.type === "split") {
      const open = (step.branches || []).findIndex((b) => !b.next);
      return open >= 0 ? "branches." + open : "branches.new";
    }
    const path = onwards(step);
    return path && !target(step, path) ? path : "";
  }

  function newKey(base) {
    let slug = String(base).toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
    if (!/^[a-z]/.test(slug)) slug = "step_" + slug;
    slug = slug.slice(0, 56).replace(/_+$/, "");
    let key = slug;
    for (let n = 2; stepOf(key); n++) key = slug + "_" + n;
    return key;
  }

  /* Columns by distance from the start, for journeys made by the API (no position yet). */
  function autoLayout(all) {
    const place = {};
    const column = {};
    const queue = doc.start && stepOf(doc.start) ? [[doc.start, 0]] : [];
    while (queue.length) {
      const [key, depth] = queue.shift();
      if (key in column) continue;
      column[key] = depth;
      const step = stepOf(key);
      for (const [path] of outputsOf(step)) {
        const next = target(step, path);
        if (next && stepOf(next) && !(next in column)) queue.push([next, depth + 1]);
      }
    }
    const last = Math.max(-1, ...Object.values(column)) + 1;
    const rows = {};
    for (const step of doc.steps) {
      if (!all && doc.layout[step.key]) continue;
      const col = step.key in column ? column[step.key] : last;
      rows[col] = (rows[col] || 0) + 1;
      place[step.key] = { x: 260 + col * 290, y: 30 + (rows[col] - 1) * 190 };
    }
    return place;
  }

  // --- drawing ----------------------------------------------------------------------------
  function summary(step) {
    if (step.type === "action") return doc.names[String(step.action)] || gettext("choose an action");
    if (step.type === "wait") {
      if (step.until) return interpolate(gettext("until %(expression)s"), { expression: text(step.until, 30) }, true);
      return waitText(step.duration_s || 0);
    }
    if (step.type === "condition") {
      const n = (step.branches || []).length;
      return counted(ngettext("%(count)s branch(es) and otherwise", "%(count)s branch(es) and otherwise", n), n);
    }
    if (step.type === "split") return (step.branches || []).map((b) => (b.percent || 0) + " %").join(" / ");
    if (step.type === "wait_event") {
      return step.event ? interpolate(gettext("until %(event)s"), { event: text(step.event, 30) }, true) : gettext("choose an event");
    }
    if (step.type === "jump") return doc.journeys[String(step.journey)] || gettext("choose a journey");
    return gettext("the run ends");
  }

  function waitText(seconds) {
    const [days, hours, minutes] = [seconds / 86400, seconds / 3600, seconds / 60];
    if (seconds % 86400 === 0 && seconds) return counted(ngettext("%(count)s day(s)", "%(count)s day(s)", days), days);
    if (seconds % 3600 === 0 && seconds) return counted(ngettext("%(count)s hour(s)", "%(count)s hour(s)", hours), hours);
    if (seconds % 60 === 0 && seconds) return counted(ngettext("%(count)s minute(s)", "%(count)s minute(s)", minutes), minutes);
    return interpolate(gettext("%(count)s s"), { count: seconds }, true);
  }

  function countsHtml(key) {
    const row = doc.counts[key];
    if (!row) return "";
    const part = (name, label) => {
      const pct = row.percent && row.percent[name] != null ? ` (${row.percent[name]} %)` : "";
      const some = row[name] > 0 ? " jc-some" : "";
      return `<span class="jc-count-${name}${some}">${label} ${row[name]}${pct}</span>`;
    };
    return `<div class="jc-counts">${part("entered", gettext("entered"))} ${part("succeeded", gettext("succeeded"))} ${part("failed", gettext("failed"))} ${part("waiting", gettext("waiting"))} ${part("exited", gettext("exited"))}</div>`;
  }

  function nodeHtml(step) {
    const problems = doc.problems[step.key] || [];
    const kind = KIND[step.type] || step.type;
    const said = [interpolate(gettext("Step %(key)s: %(type)s, %(summary)s"), { key: step.key, type: kind, summary: summary(step) }, true)];
    if (problems.length) said.push(interpolate(ngettext("%(count)s problem(s): %(problems)s", "%(count)s problem(s): %(problems)s", problems.length), { count: problems.length, problems: problems.join("; ") }, true));
    if (step.key === doc.start) said.push(gettext("First step."));
    const toFix = counted(ngettext("%(count)s to fix", "%(count)s to fix", problems.length), problems.length);
    return `<div class="jc-node jc-${escape(step.type)}" tabindex="0" role="button" data-key="${escape(step.key)}"
      aria-label="${escape(said.join(". "))}">
      <div class="jc-kind">${escape(step.key === doc.start ? interpolate(gettext("%(type)s \u00b7 first"), { type: kind }, true) : kind)}</div>
      <div class="jc-title">${escape(step.key)}</div><div class="jc-what">${escape(summary(step))}</div>
      ${problems.length ? `<div class="jc-problems" title="${escape(problems.join("\n"))}">\u26a0 ${escape(toFix)}</div>` : ""}
      ${countsHtml(step.key)}</div>`;
  }

  function redraw() {
    redrawing = true;
    editor.clear();
    byId = {};
    idOf = {};
    const place = { ...autoLayout(false), ...doc.layout };
    for (const step of doc.steps) {
      const outputs = outputsOf(step);
      const { x, y } = place[step.key];
      const id = editor.addNode(step.type, 1, outputs.length, x, y, "jc-box", {}, nodeHtml(step));
      byId[id] = step.key;
      idOf[step.key] = id;
      const element = document.getElementById("node-" + id);
      element.dataset.key = step.key;
      element.querySelectorAll(".outputs .output").forEach((output, i) => {
        output.dataset.link = outputs[i][0];
        output.dataset.label = outputs[i][1];
        output.title = interpolate(gettext("%(label)s: drag to a step"), { label: outputs[i][1] }, true);
      });
      if (doc.problems[step.key]) element.classList.add("jc-has-problems");
    }
    const first = doc.start && place[doc.start] ? place[doc.start] : { x: 260, y: 30 };
    const entryText = doc.entry ? interpolate(gettext("each \u201c%(event)s\u201d event"), { event: doc.entry }, true) : gettext("no entry event yet");
    const entry = editor.addNode("entry", 0, 1, first.x - 230, first.y, "jc-box jc-entry", {},
      `<div class="jc-node jc-entry-node"><div class="jc-kind">${escape(gettext("Entry"))}</div><div class="jc-what">${escape(entryText)}</div></div>`);
    byId[entry] = ENTRY;
    idOf[ENTRY] = entry;
    const entryOutput = document.querySelector(`#node-${entry} .output`);
    entryOutput.dataset.link = "start";
    entryOutput.dataset.label = gettext("first step");
    if (doc.start && idOf[doc.start]) editor.addConnection(entry, idOf[doc.start], "output_1", "input_1");
    for (const step of doc.steps) {
      outputsOf(step).forEach(([path], i) => {
        const to = target(step, path);
        if (to && idOf[to] !== undefined) editor.addConnection(idOf[step.key], idOf[to], "output_" + (i + 1), "input_1");
      });
    }
    const n = doc.steps.length; // the catalogue's texts are written out in full, for makemessages to find them
    const howTo = doc.editable
      ? ngettext("Journey canvas: %(count)s step(s). Tab to a step; Enter opens it; Delete removes it; arrow keys move it; Ctrl+Z undoes.",
        "Journey canvas: %(count)s step(s). Tab to a step; Enter opens it; Delete removes it; arrow keys move it; Ctrl+Z undoes.", n)
      : ngettext("Journey canvas: %(count)s step(s). Tab to a step; Enter opens it.",
        "Journey canvas: %(count)s step(s). Tab to a step; Enter opens it.", n);
    area.setAttribute("aria-label", counted(howTo, n));
    showChecklist();
    showFallback();
    redrawing = false;
    if (focusKey && idOf[focusKey] !== undefined) {
      const again = document.querySelector(`#node-${idOf[focusKey]} .jc-node`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  /* The page's fallback parts (the table of steps, the first step in the settings) follow the canvas. */
  function showFallback() {
    const rows = document.querySelector("table.journey-steps tbody");
    if (rows && !report) {
      rows.replaceChildren(...doc.steps.map((step) => {
        const row = document.createElement("tr");
        const link = Object.assign(document.createElement("a"), { textContent: step.key,
          href: doc.urls.panel.replace("{key}", encodeURIComponent(step.key)).replace("?panel=1", "") });
        const cells = [link, KIND[step.type] || step.type, summary(step),
          outputsOf(step).filter(([path]) => target(step, path)).map(([path, label]) => `${label} \u2192 ${target(step, path)}`).join(", ")];
        for (const value of cells) {
          const cell = document.createElement("td");
          cell.append(value); // text or the link: never parsed as HTML
          row.append(cell);
        }
        if (step.key === doc.start) row.children[0].append(" " + gettext("(first)"));
        return row;
      }));
    }
    const start = document.getElementById("id_start");
    if (start && !report) {
      start.replaceChildren(new Option("---------", ""), ...doc.steps.map((s) => new Option(s.key, s.key)));
      start.value = doc.start || "";
    }
  }

  function say(message, kind) {
    status.textContent = message;
    status.className = "jc-status" + (kind ? " jc-status-" + kind : "");
  }

  /* The page's publish checklist and Publish button follow the document as it changes. */
  function showChecklist() {
    const list = document.getElementById("journey-checklist");
    if (!list || report) return;
    const lines = [...doc.general];
    for (const [key, found] of Object.entries(doc.problems)) for (const p of found) lines.push(`${key}: ${p}`);
    list.hidden = lines.length === 0;
    list.querySelector("ul").replaceChildren(...lines.map((line) => Object.assign(document.createElement("li"), { textContent: line })));
    const ready = document.querySelector("[data-publish-ready]");
    const blocked = document.querySelector("[data-publish-blocked]");
    if (ready && blocked) {
      ready.hidden = lines.length > 0;
      blocked.hidden = lines.length === 0;
    }
    const fine = document.getElementById("journey-publishable");
    if (fine) fine.hidden = lines.length > 0;
  }

  // --- saving -----------------------------------------------------------------------------
  const documentOf = (d) => ({ steps: d.steps, start: d.start, layout: d.layout });

  /* Apply one change to the document; changes of the same gesture are saved together. */
  function change(mutate, note) {
    if (!doc.editable || redrawing) return Promise.resolve(false);
    if (!batch) {
      busy(1);
      batch = { before: clone(documentOf(doc)) };
      batch.done = new Promise((resolve) => { batch.resolve = resolve; });
      setTimeout(flush, 0);
    }
    mutate(doc);
    if (note) batch.note = note;
    return batch.done; // true once saved
  }

  /* Saves not answered yet, on the canvas's data-saving (tests wait for "no"). */
  function busy(step) {
    pending += step;
    root.dataset.saving = pending ? "yes" : "no";
  }

  function flush() {
    const { before, resolve, note } = batch;
    batch = null;
    undo.push(before);
    post(documentOf(doc), before, note).then((ok) => {
      busy(-1);
      resolve(ok);
    });
  }

  function post(body, before, note) {
    say(gettext("Saving\u2026"));
    saving = saving.then(() =>
      fetch(doc.urls.save, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf.value },
        body: JSON.stringify(body),
      }).then(async (response) => {
        const answer = await response.json().catch(() => ({ general: [gettext("The server did not answer in JSON.")] }));
        if (response.ok) {
          doc = answer;
          followLinks(before);
          say(note || gettext("Saved."), "ok");
          redraw();
          return true;
        } else {
          Object.assign(doc, clone(before));
          if (undo[undo.length - 1] === before) undo.pop();
          const lines = [...(answer.general || [])];
          for (const [key, found] of Object.entries(answer.problems || {})) lines.push(`${key}: ${found.join("; ")}`);
          say(interpolate(gettext("Not saved: %(problems)s"), { problems: lines.join(" \u00b7 ") }, true), "error");
        }
        redraw();
        return false;
      }).catch(() => {
        Object.assign(doc, clone(before));
        say(gettext("Not saved: the server cannot be reached."), "error");
        redraw();
        return false;
      })
    );
    return saving;
  }

  /* An arrow drawn, removed or undone on the canvas while its step's panel is open changes the panel's
   * form too, so that saving the panel keeps it; fields the canvas did not change keep what was typed. */
  function followLinks(before) {
    const key = panel.dataset.key;
    const was = (before.steps || []).find((s) => s.key === key);
    const step = stepOf(key);
    if (!was || !step || !panel.querySelector("form")) return;
    for (const [path] of outputsOf(step)) {
      if (path === "branches.new" || target(step, path) === target(was, path)) continue;
      const name = path.startsWith("branches.") ? `branch${path.slice(9)}_next` : path;
      const field = panel.querySelector(`select[name="${name}"]`);
      if (!field) continue;
      const to = target(step, path);
      if (to && ![...field.options].some((o) => o.value === to)) field.append(new Option(to, to));
      field.value = to;
    }
  }

  function undoLast() {
    const before = undo.pop();
    if (!before) return say(gettext("Nothing to undo."));
    const now = clone(documentOf(doc));
    Object.assign(doc, clone(before));
    redraw();
    busy(1);
    post(before, now, gettext("Undone.")).then(() => {
      busy(-1);
      if (undo[undo.length - 1] === now) undo.pop(); // an undo is not itself undone by the next one
    });
  }

  function reload(message) {
    return fetch(doc.urls.save, { credentials: "same-origin" }).then((r) => r.json()).then((answer) => {
      doc = answer;
      redraw();
      if (message) say(message, "ok");
    });
  }

  // --- gestures ---------------------------------------------------------------------------
  function addStep(item, x, y, arrow) {
    const step = item.type === "action"
      ? { key: newKey(item.name || "action"), type: "action", action: item.id, parameters: {} }
      : { key: newKey(item.type), type: item.type, ...clone(SKELETONS[item.type]) };
    const saved = change((d) => {
      d.steps.push(step);
      d.layout[step.key] = { x: Math.round(x), y: Math.round(y) };
      const from = arrow ? arrow.from : focusKey;
      if (arrow) { // put between the two ends of the arrow
        if (arrow.from === ENTRY) d.start = step.key;
        else setTarget(stepOf(arrow.from), arrow.path, step.key);
        if (onwards(step)) setTarget(step, onwards(step), arrow.to);
      } else if (!d.start) {
        d.start = step.key;
        d.layout[step.key].x = Math.max(d.layout[step.key].x, 240); // room for the entry on its left
      } else if (from && stepOf(from) && freeOutput(stepOf(from))) {
        setTarget(stepOf(from), freeOutput(stepOf(from)), step.key); // after the step selected, if it has a way free
      }
    });
    focusKey = step.key;
    selectedArrow = null;
    return saved.then((ok) => ok && openPanel(step.key));
  }

  function arrowAt(element) {
    const svg = element && element.closest && element.closest("svg.connection");
    if (!svg) return null;
    const cls = svg.getAttribute("class");
    const from = byId[(cls.match(/node_out_node-(\S+)/) || [])[1]];
    const to = byId[(cls.match(/node_in_node-(\S+)/) || [])[1]];
    const output = Number((cls.match(/output_(\d+)/) || [])[1]);
    if (!from || !to) return null;
    const path = from === ENTRY ? "start" : outputsOf(stepOf(from))[output - 1][0];
    return { from, path, to };
  }

  function canvasPoint(clientX, clientY) {
    const rect = editor.precanvas.getBoundingClientRect();
    return { x: (clientX - rect.left) / editor.zoom, y: (clientY - rect.top) / editor.zoom };
  }

  function freePlace() {
    const taken = Object.values({ ...autoLayout(false), ...doc.layout });
    const near = focusKey && doc.layout[focusKey];
    let x = near ? near.x + 290 : 260;
    let y = near ? near.y : 30;
    while (taken.some((p) => Math.abs(p.x - x) < 200 && Math.abs(p.y - y) < 150)) y += 190;
    return { x, y };
  }

  editor.on("connectionCreated", ({ output_id, input_id, output_class }) => {
    const from = byId[output_id];
    const to = byId[input_id];
    if (redrawing) return;
    if (!from || !to || to === ENTRY || from === to) return redraw();
    change((d) => {
      if (from === ENTRY) d.start = to;
      else setTarget(stepOf(from), outputsOf(stepOf(from))[Number(output_class.slice(7)) - 1][0], to);
    });
  });

  editor.on("connectionRemoved", ({ output_id, input_id, output_class }) => {
    if (redrawing) return;
    const from = byId[output_id];
    if (!from) return;
    change((d) => {
      if (from === ENTRY) {
        if (d.start === byId[input_id]) d.start = "";
        return;
      }
      const step = stepOf(from);
      if (step) setTarget(step, outputsOf(step)[Number(output_class.slice(7)) - 1][0], "");
    });
  });

  editor.on("nodeRemoved", (id) => {
    if (redrawing) return;
    const key = byId[id];
    if (key === ENTRY || !key) return redraw();
    removeStep(key);
  });

  function removeStep(key) {
    change((d) => {
      d.steps = d.steps.filter((s) => s.key !== key);
      for (const step of d.steps) for (const [path] of outputsOf(step)) if (target(step, path) === key) setTarget(step, path, "");
      if (d.start === key) d.start = "";
      delete d.layout[key];
    }, interpolate(gettext("Step %(key)s deleted. Ctrl+Z brings it back."), { key }, true));
    if (panel.dataset.key === key) closePanel();
  }

  editor.on("nodeMoved", (id) => {
    const key = byId[id];
    const node = editor.getNodeFromId(id);
    if (!key || key === ENTRY) return;
    change((d) => { d.layout[key] = { x: Math.round(node.pos_x), y: Math.round(node.pos_y) }; });
    moved = true;
  });

  editor.on("connectionSelected", ({ output_id, input_id, output_class }) => {
    const element = document.querySelector(`svg.connection.node_out_node-${output_id}.node_in_node-${input_id}.${output_class}`);
    selectedArrow = arrowAt(element);
    area.focus({ preventScroll: true }); // Delete now means the arrow, not the step focused before
    if (selectedArrow) {
      const ends = { from: selectedArrow.from, to: selectedArrow.to };
      say(interpolate(gettext("Arrow %(from)s \u2192 %(to)s selected: a step chosen in the palette goes between them; Delete removes the arrow."), ends, true));
    }
  });
  editor.on("connectionUnselected", () => { selectedArrow = null; });

  area.addEventListener("click", (e) => {
    const node = e.target.closest(".jc-node[data-key]");
    if (!node || moved) return (moved = false);
    focusKey = node.dataset.key;
    if (report) window.location.assign(doc.urls.report.replace("{key}", encodeURIComponent(focusKey)));
    else openPanel(focusKey);
  });

  area.addEventListener("keydown", (e) => {
    const node = e.target.closest && e.target.closest(".jc-node[data-key]");
    if (node && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      node.click();
    } else if (node && doc.editable && (e.key === "Delete" || e.key === "Backspace")) {
      e.preventDefault();
      removeStep(node.dataset.key);
    } else if (node && doc.editable && e.key.startsWith("Arrow")) {
      e.preventDefault();
      const key = node.dataset.key;
      const here = { ...autoLayout(false), ...doc.layout }[key];
      const dx = { ArrowLeft: -20, ArrowRight: 20 }[e.key] || 0;
      const dy = { ArrowUp: -20, ArrowDown: 20 }[e.key] || 0;
      focusKey = key;
      change((d) => { d.layout[key] = { x: here.x + dx, y: here.y + dy }; });
    } else if (!node && selectedArrow && doc.editable && (e.key === "Delete" || e.key === "Backspace")) {
      e.preventDefault();
      editor.removeConnection();
    }
  });
  area.addEventListener("focusin", (e) => {
    const node = e.target.closest && e.target.closest(".jc-node[data-key]");
    if (node) {
      focusKey = node.dataset.key;
      selectedArrow = null;
    }
  });

  document.addEventListener("keydown", (e) => {
    const typing = e.target.closest && e.target.closest("input, textarea, select, [contenteditable]");
    if (!typing && doc.editable && (e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") {
      e.preventDefault();
      undoLast();
    }
  });

  // --- the palette ------------------------------------------------------------------------
  const palette = root.querySelector(".jc-palette");
  if (palette && doc.editable) {
    const items = [
      ...doc.palette.steps.map((s) => ({ ...s, group: gettext("Orchestration") })),
      ...doc.palette.actions.map((a) => ({ type: "action", id: a.id, name: a.name, label: a.name, help: a.description, group: gettext("Actions") })),
    ];
    let group = "";
    for (const item of items) {
      if (item.group !== group) {
        group = item.group;
        palette.append(Object.assign(document.createElement("h3"), { textContent: group }));
      }
      const button = document.createElement("button");
      button.type = "button";
      button.className = "jc-item jc-" + item.type;
      button.draggable = true;
      button.dataset.item = JSON.stringify(item);
      button.innerHTML = `<strong>${escape(item.label)}</strong><small>${escape(text(item.help || "", 90))}</small>`;
      button.title = interpolate(gettext("%(label)s: drag onto the canvas or onto an arrow, or press Enter to add it after the selected step"), { label: item.label }, true);
      palette.append(button);
    }
    if (!doc.palette.actions.length) {
      palette.append(Object.assign(document.createElement("p"), { textContent: gettext("No active action yet: a technical user adds them.") }));
    }
    palette.addEventListener("dragstart", (e) => {
      const item = e.target.closest(".jc-item");
      if (!item) return;
      e.dataTransfer.setData("application/x-journey-step", item.dataset.item);
      root.classList.add("jc-dragging"); // arrows widen, so that one is easy to drop on
    });
    palette.addEventListener("dragend", () => root.classList.remove("jc-dragging"));
    palette.addEventListener("click", (e) => {
      const item = e.target.closest(".jc-item");
      if (!item) return;
      const where = selectedArrow ? midpoint(selectedArrow) : freePlace();
      addStep(JSON.parse(item.dataset.item), where.x, where.y, selectedArrow);
    });
    let hovered = null;
    area.addEventListener("dragover", (e) => {
      if (!e.dataTransfer.types.includes("application/x-journey-step")) return;
      e.preventDefault();
      const svg = e.target.closest && e.target.closest("svg.connection");
      if (hovered !== svg) {
        if (hovered) hovered.classList.remove("jc-drop-here");
        if (svg) svg.classList.add("jc-drop-here");
        hovered = svg;
      }
    });
    area.addEventListener("drop", (e) => {
      const data = e.dataTransfer.getData("application/x-journey-step");
      root.classList.remove("jc-dragging");
      if (hovered) hovered.classList.remove("jc-drop-here");
      hovered = null;
      if (!data) return;
      e.preventDefault();
      const { x, y } = canvasPoint(e.clientX, e.clientY);
      addStep(JSON.parse(data), x - 10, y - 10, arrowAt(document.elementFromPoint(e.clientX, e.clientY)));
    });
  }

  function midpoint(arrow) {
    const place = { ...autoLayout(false), ...doc.layout };
    const a = arrow.from === ENTRY ? { x: 30, y: 30 } : place[arrow.from];
    const b = place[arrow.to];
    return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 + 100 };
  }

  // --- zoom, fit, tidy, undo --------------------------------------------------------------
  function fit() {
    const nodes = [...area.querySelectorAll(".drawflow-node")];
    if (!doc.steps.length) return;
    const boxes = nodes.map((n) => {
      const node = editor.getNodeFromId(n.id.slice(5));
      return { x: node.pos_x, y: node.pos_y, w: n.offsetWidth, h: n.offsetHeight };
    });
    const left = Math.min(...boxes.map((b) => b.x)) - 30;
    const top = Math.min(...boxes.map((b) => b.y)) - 30;
    const width = Math.max(...boxes.map((b) => b.x + b.w)) + 60 - left;
    const height = Math.max(...boxes.map((b) => b.y + b.h)) + 30 - top;
    const zoom = Math.max(editor.zoom_min, Math.min(1, area.clientWidth / width, area.clientHeight / height));
    editor.zoom = editor.zoom_last_value = zoom;
    editor.canvas_x = (area.clientWidth - width * zoom) / 2 - left * zoom;
    editor.canvas_y = (area.clientHeight - height * zoom) / 2 - top * zoom;
    editor.zoom_refresh();
  }

  const tools = {
    "zoom-in": () => editor.zoom_in(),
    "zoom-out": () => editor.zoom_out(),
    fit,
    tidy: () => change((d) => { d.layout = autoLayout(true); }),
    undo: undoLast,
  };
  root.querySelectorAll("[data-tool]").forEach((button) => {
    if (!doc.editable && ["tidy", "undo"].includes(button.dataset.tool)) return button.remove();
    button.addEventListener("click", () => tools[button.dataset.tool]());
  });

  // --- the side panel ---------------------------------------------------------------------
  function openPanel(key, note) {
    panel.dataset.key = key;
    return fetch(doc.urls.panel.replace("{key}", encodeURIComponent(key)), { credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : Promise.reject(r)))
      .then((html) => showPanel(key, html, note))
      .catch(() => { panel.textContent = interpolate(gettext("Step %(key)s cannot be shown."), { key }, true); });
  }

  function closePanel() {
    delete panel.dataset.key;
    panel.innerHTML = "<p>" + escape(gettext("Select a step to see its settings.")) + "</p>";
  }

  function showPanel(key, html, note) {
    panel.innerHTML = html;
    const problems = doc.problems[key] || [];
    const head = document.createElement("div");
    if (note) head.append(Object.assign(document.createElement("p"), { className: "jc-saved", textContent: note }));
    if (problems.length) {
      const box = Object.assign(document.createElement("div"), { className: "journey-problems" });
      box.append(Object.assign(document.createElement("strong"), { textContent: gettext("Before publishing:") }));
      const list = document.createElement("ul");
      for (const p of problems) list.append(Object.assign(document.createElement("li"), { textContent: p }));
      box.append(list);
      head.append(box);
      for (const p of problems) markField(p);
    }
    panel.prepend(head);
    panel.querySelectorAll("h3").forEach((h) => h.setAttribute("tabindex", "-1"));
  }

  /* A publishing problem "parameters.phone: ..." also shows on the field it names; one about all the
   * branches ("branches: the percentages add up to 90, not 100") on the first branch. */
  function markField(problem) {
    const field = problem.split(":")[0]
      .replace(/^parameters\./, "param__")
      .replace(/^branches\[(\d+)\]\.(expression|percent|next)$/, "branch$1_$2");
    const row = field === "branches"
      ? panel.querySelector(".form-row.field-branch0_percent, .form-row.field-branch0_expression")
      : panel.querySelector(`.form-row.field-${CSS.escape(field)}`);
    if (!row || row.classList.contains("errors")) return;
    row.classList.add("errors");
    const list = Object.assign(document.createElement("ul"), { className: "errorlist" });
    list.append(Object.assign(document.createElement("li"), { textContent: problem.slice(problem.indexOf(":") + 1).trim() }));
    row.prepend(list);
  }

  /* The field picker: a click puts the field at the cursor of the expression box last used. */
  let lastBox = null;
  panel.addEventListener("focusin", (e) => {
    if (e.target.matches("input[list=journey-fields]")) lastBox = e.target;
  });
  panel.addEventListener("click", (e) => {
    const chip = e.target.closest(".jc-field");
    if (!chip) return;
    const box = lastBox && panel.contains(lastBox) ? lastBox : panel.querySelector("input[list=journey-fields]");
    if (!box) return say(gettext("Click in an expression box first."));
    const at = box.selectionStart == null ? box.value.length : box.selectionStart;
    box.setRangeText(chip.dataset.path, at, box.selectionEnd == null ? at : box.selectionEnd, "end");
    box.focus();
  });

  panel.addEventListener("submit", (e) => {
    e.preventDefault();
    const form = e.target;
    const key = panel.dataset.key;
    const data = new FormData(form, e.submitter);
    const before = clone(documentOf(doc));
    busy(1);
    fetch(form.getAttribute("action"), { method: "POST", credentials: "same-origin", body: data })
      .then(async (response) => {
        const body = await response.text();
        if (response.headers.get("X-Journey-Saved")) {
          undo.push(before);
          const deleted = e.submitter && e.submitter.name === "_delete";
          await reload(body + (deleted ? " " + gettext("Ctrl+Z brings it back.") : ""));
          if (deleted) closePanel();
          else openPanel(key, body);
        } else {
          showPanel(key, body);
        }
      })
      .catch(() => say(gettext("Not saved: the server cannot be reached."), "error"))
      .finally(() => busy(-1));
  });

  closePanel();
  redraw();
  fit();
})();
