/// dashboard.js: the only script, loaded from this origin (no inline script). Pages work without
/// it; with it, the task page follows its task live through the API's Server-Sent Events
/// (`GET /v1/tasks/{id}/events`, authorised by the session cookie) and the DAG zooms.
/// The state icons and words mirror ``StateLabel``.
enum DashboardScript {
    static let js = """
        (function () {
          "use strict";
          document.documentElement.classList.add("js");
          var LABELS = {
            pending: ["◌", "pending"], enqueued: ["…", "enqueued"], in_progress: ["▶", "running"],
            waiting_for_retry: ["↻", "waiting for retry"], complete: ["✓", "complete"], error: ["✗", "error"],
            cancelled: ["⊘", "cancelled"], resolved_manually: ["✎", "resolved by hand"], skipped: ["⤼", "skipped"]
          };
          function label(state) { return LABELS[state] || ["?", state]; }
          function badge(state) {
            var span = document.createElement("span");
            var l = label(state);
            span.className = "state st-" + state;
            span.textContent = l[0] + " " + l[1];
            return span;
          }

          // Zoom of the DAG: width and height attributes, so no inline style is needed.
          var svg = document.getElementById("dag");
          if (svg) {
            var scale = 1;
            var width = Number(svg.getAttribute("data-width")), height = Number(svg.getAttribute("data-height"));
            var reset = document.getElementById("zoom-reset");
            var apply = function () {
              svg.setAttribute("width", String(Math.round(width * scale)));
              svg.setAttribute("height", String(Math.round(height * scale)));
              if (reset) { reset.textContent = Math.round(scale * 100) + " %"; }
            };
            var zoom = function (factor) { scale = Math.min(3, Math.max(0.1, scale * factor)); apply(); };
            var bind = function (id, fn) { var b = document.getElementById(id); if (b) { b.addEventListener("click", fn); } };
            bind("zoom-in", function () { zoom(1.25); });
            bind("zoom-out", function () { zoom(0.8); });
            bind("zoom-reset", function () { scale = 1; apply(); });
            // A DAG wider than its box starts scaled to fit (down to 10 %).
            var wrap = document.getElementById("dag-wrap");
            if (wrap && width > wrap.clientWidth && wrap.clientWidth > 0) { scale = Math.max(0.1, wrap.clientWidth / width); apply(); }
          }

          function groupText(group) {
            var counts = {};
            document.querySelectorAll('tr[data-group="' + group + '"]').forEach(function (row) {
              var s = row.getAttribute("data-state");
              counts[s] = (counts[s] || 0) + 1;
            });
            return Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a] || (a < b ? -1 : a > b ? 1 : 0); })
              .map(function (s) { return counts[s] + label(s)[0]; }).join(" ");
          }

          // Group boxes are recounted once per frame, not once per event: a stream's first burst
          // replays every transition of a 1,000-step task.
          var dirtyGroups = {}, recountScheduled = false;
          function recountGroups() {
            recountScheduled = false;
            Object.keys(dirtyGroups).forEach(function (group) {
              var node = document.querySelector('a[data-group="' + group + '"] text.group-counts');
              if (node) { node.textContent = groupText(group); }
            });
            dirtyGroups = {};
          }

          function stepMoved(id, state) {
            var row = document.querySelector('tr[data-step-row="' + id + '"]');
            if (row && row.getAttribute("data-state") === state) { return; }
            var l = label(state);
            document.querySelectorAll('a[data-step-id="' + id + '"]').forEach(function (node) {
              var rect = node.querySelector("rect");
              if (rect) { rect.setAttribute("class", "node st-" + state); }
              var text = node.querySelector("text.node-state");
              if (text) { text.textContent = l[0] + " " + l[1]; }
              node.setAttribute("data-state", state);
            });
            if (row) {
              row.setAttribute("data-state", state);
              var cell = row.querySelector(".step-state");
              if (cell) { cell.replaceChildren(badge(state)); }
              var group = row.getAttribute("data-group");
              if (group && group.charAt(0) === "g") {
                dirtyGroups[group] = true;
                if (!recountScheduled) { recountScheduled = true; window.requestAnimationFrame(recountGroups); }
              }
            }
          }

          function taskMoved(state) {
            var cell = document.getElementById("task-state");
            if (cell) { cell.setAttribute("data-state", state); cell.replaceChildren(badge(state)); }
          }

          // The task list: while a row shows a task that is not finished, the same page is
          // fetched again every 3 s and its rows replaced (one query per open list, no more).
          var list = document.querySelector("#task-list tbody");
          if (list && list.querySelector("tr[data-live]") && window.fetch && window.DOMParser) {
            var refresh = function () {
              fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
                .then(function (answer) { return answer.ok ? answer.text() : null; })
                .then(function (text) {
                  if (!text) { return; }
                  var fresh = new DOMParser().parseFromString(text, "text/html").querySelector("#task-list tbody");
                  if (fresh) { list.replaceChildren.apply(list, Array.from(fresh.childNodes)); }
                  if (list.querySelector("tr[data-live]")) { window.setTimeout(refresh, 3000); }
                })
                .catch(function () { window.setTimeout(refresh, 10000); });
            };
            window.setTimeout(refresh, 3000);
          }

          var task = document.body.getAttribute("data-live-task");
          var status = document.getElementById("live-status");
          if (task && window.EventSource) {
            var source = new EventSource("/v1/tasks/" + encodeURIComponent(task) + "/events");
            if (status) { status.textContent = "· live"; }
            source.addEventListener("transition", function (event) {
              var e = JSON.parse(event.data);
              if (e.kind === "step" && e.step_id != null) { stepMoved(String(e.step_id), e.to); }
              if (e.kind === "task") { taskMoved(e.to); }
            });
            source.addEventListener("end", function (event) {
              source.close();
              try { taskMoved(JSON.parse(event.data).state); } catch (ignored) {}
              if (status) { status.textContent = "· finished (reload for timings)"; }
            });
            source.addEventListener("error", function (event) {
              if (event.data) { source.close(); if (status) { status.textContent = "· live updates stopped: reload"; } }
            });
          }
        })();
        """
}
