/* Dana console: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";
  var csrfToken = document.querySelector('meta[name="csrf-token"]').content;

  function post(url, body) {
    return fetch(url, {method: "POST", body: body, credentials: "same-origin",
                       headers: {"X-CSRFToken": csrfToken, "Accept": "application/json"}});
  }

  function showStatus(text) {
    var el = document.getElementById("live-status");
    if (el) { el.textContent = text; el.hidden = !text; }
  }

  // htmx requests (the inbox filters) carry the CSRF token like every other request.
  document.body.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRFToken"] = csrfToken;
  });

  // Forms marked data-fetch post in the background; the result arrives over Socket.IO.
  document.querySelectorAll("form[data-fetch]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var errorEl = form.querySelector("[data-form-error]");
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      post(form.action, new FormData(form)).then(function (resp) {
        return resp.json().then(function (data) { return {ok: resp.ok, data: data}; });
      }).then(function (r) {
        if (r.ok) {
          form.reset();
          if (errorEl) { errorEl.hidden = true; }
          if (r.data.message && r.data.message.id) { renderMessage(r.data.message); }
        } else if (errorEl) {
          var err = r.data.error || {};
          var details = (err.details || []).map(function (d) { return d.message; }).join(" ");
          errorEl.textContent = details || err.message || "The reply was not sent.";
          errorEl.hidden = false;
        }
      }).catch(function () {
        if (errorEl) { errorEl.textContent = "Network error: the reply was not sent."; errorEl.hidden = false; }
      }).finally(function () { button.disabled = false; });
    });
  });

  // File imports: a progress bar while the file uploads, then while the server indexes it.
  document.querySelectorAll("form[data-upload]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var bar = form.querySelector("progress"), state = form.querySelector("[role=status]");
      var errorEl = form.querySelector("[data-form-error]");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRFToken", csrfToken);
      xhr.setRequestHeader("Accept", "application/json");
      bar.hidden = false; bar.value = 0; errorEl.hidden = true;
      xhr.upload.onprogress = function (ev) {
        if (ev.lengthComputable) { bar.value = Math.round(90 * ev.loaded / ev.total); }
        state.textContent = "Uploading…";
      };
      xhr.upload.onload = function () { bar.value = 90; state.textContent = "Indexing…"; };
      xhr.onload = function () {
        var data = {};
        try { data = JSON.parse(xhr.responseText); } catch (err) { data = {}; }
        if (xhr.status < 300) {
          bar.value = 100; state.textContent = data.message || "Imported.";
          form.dataset.done = "true";
        } else {
          bar.hidden = true; state.textContent = "";
          errorEl.textContent = (data.error && data.error.message) || "The import failed.";
          errorEl.hidden = false;
        }
      };
      xhr.onerror = function () { errorEl.textContent = "Network error."; errorEl.hidden = false; };
      xhr.send(new FormData(form));
    });
  });

  // Reply suggestions ("quick replies"): one click puts a draft in the reply box.
  var suggest = document.getElementById("suggest-button");
  if (suggest) {
    suggest.addEventListener("click", function () {
      var box = document.getElementById("quick-replies");
      post(box.dataset.suggestUrl, new FormData()).then(function (r) { return r.json(); })
        .then(function (data) {
          box.querySelectorAll(".suggestion").forEach(function (b) { b.remove(); });
          (data.suggestions || []).forEach(function (text) {
            var b = document.createElement("button");
            b.type = "button"; b.className = "suggestion"; b.textContent = text;
            b.addEventListener("click", function () {
              var area = document.getElementById("text");
              area.value = text; area.focus();
            });
            box.appendChild(b);
          });
        });
    });
  }

  // ----------------------------------------------------------------- live updates
  var thread = document.getElementById("thread");
  var inbox = document.querySelector('[data-live="inbox"]');
  var WHO = {contact: "Customer", ai: "AI", agent: "Agent", system: "Dana"};

  function renderMessage(m) {
    if (!thread || m.conversation_id && m.conversation_id !== thread.dataset.conversationId) { return; }
    if (thread.querySelector('[data-message-id="' + m.id + '"]')) { return; }
    var li = document.createElement("li");
    li.className = "msg " + m.direction + " " + m.sender_type + (m.is_note ? " note" : "");
    li.dataset.messageId = m.id;
    var who = document.createElement("span"); who.className = "who";
    who.textContent = (WHO[m.sender_type] || m.sender_type) + (m.is_note ? " (note)" : "");
    var text = document.createElement("span"); text.className = "text";
    text.textContent = m.text || "[attachment]";
    var meta = document.createElement("span"); meta.className = "meta";
    meta.textContent = (m.created_at || "").slice(0, 16).replace("T", " ");
    if (m.direction === "outbound") {
      var st = document.createElement("span"); st.className = "status"; st.dataset.status = "";
      st.textContent = m.status; meta.appendChild(document.createTextNode(" · ")); meta.appendChild(st);
    }
    li.appendChild(who); li.appendChild(text); li.appendChild(meta);
    thread.appendChild(li);
    li.scrollIntoView({block: "end"});
  }

  // One inbox refresh at a time, and one more after it when events arrived meanwhile: htmx
  // drops a request for an element that already has one in flight, which would leave the list
  // showing the state before the last event.
  var refreshing = false, refreshAgain = false;
  function refreshInbox() {
    if (!window.htmx) { return; }
    if (refreshing) { refreshAgain = true; return; }
    refreshing = true;
    var done = function () {
      refreshing = false;
      if (refreshAgain) { refreshAgain = false; refreshInbox(); }
    };
    htmx.ajax("GET", window.location.href, {target: "#inbox-list", select: "#inbox-list", swap: "outerHTML"})
      .then(done, done);
  }

  if ((thread || inbox) && window.io) {
    var socket = io({
      transports: ["websocket", "polling"],
      auth: function (cb) {
        post("/app/socket-token", new FormData()).then(function (r) { return r.json(); })
          .then(function (d) { cb({token: d.token}); }).catch(function () { cb({}); });
      }
    });
    // On every (re)connect the inbox is fetched again: events sent between the page's render
    // and the socket's connect, or while it was away, would otherwise be missed until a reload.
    socket.on("connect", function () {
      if (inbox) { refreshInbox(); }
      document.body.dataset.live = "connected"; showStatus("");
    });
    socket.on("disconnect", function () { document.body.dataset.live = "disconnected"; });
    socket.on("connect_error", function () { showStatus("Live updates are unavailable; reload to see new messages."); });
    socket.on("new_message", function (d) {
      if (thread && d.conversation_id === thread.dataset.conversationId) { renderMessage(d.message); }
      if (inbox) { refreshInbox(); }
    });
    socket.on("message_status", function (d) {
      if (!thread) { return; }
      var li = thread.querySelector('[data-message-id="' + d.message_id + '"] [data-status]');
      if (li) { li.textContent = d.status + (d.error ? " (" + d.error + ")" : ""); }
    });
    socket.on("conversation_updated", function (c) {
      if (inbox) { refreshInbox(); }
      if (thread && c.id === thread.dataset.conversationId) {
        var s = document.getElementById("conv-status"); if (s) { s.textContent = c.status; }
        var ai = document.getElementById("ai-state");
        if (ai) { ai.textContent = c.ai_enabled ? "AI answers" : "AI paused"; }
      }
    });
  }

  // ----------------------------------------------------------------- analytics chart
  var dataEl = document.getElementById("analytics-data");
  var canvas = document.getElementById("messages-chart");
  if (dataEl && canvas && window.Chart) {
    var data = JSON.parse(dataEl.textContent);
    var days = [], seen = {};
    data.messages.forEach(function (r) { if (!seen[r.date]) { seen[r.date] = 1; days.push(r.date); } });
    var platforms = {};
    data.messages.forEach(function (r) { platforms[r.platform] = true; });
    var colors = {facebook: "#1d4ed8", instagram: "#a21caf", whatsapp: "#15803d", unknown: "#64748b"};
    var datasets = [];
    Object.keys(platforms).forEach(function (p) {
      ["inbound", "outbound"].forEach(function (dir) {
        datasets.push({
          label: p + " " + (dir === "inbound" ? "in" : "out"), stack: dir,
          backgroundColor: colors[p] || "#64748b", borderColor: colors[p] || "#64748b",
          borderWidth: dir === "outbound" ? 2 : 0,
          data: days.map(function (d) {
            var row = data.messages.find(function (r) { return r.date === d && r.platform === p; });
            return row ? row[dir] : 0;
          })
        });
      });
      datasets[datasets.length - 1].backgroundColor = "rgba(0,0,0,0.08)";
    });
    new Chart(canvas, {type: "bar", data: {labels: days, datasets: datasets},
      options: {responsive: true, maintainAspectRatio: false, animation: false,
                scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true, ticks: {precision: 0}}}}});
    canvas.dataset.drawn = "true";
  }
})();
