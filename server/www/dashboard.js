/* berth dashboard: a little JavaScript for live updates.  The pages work
 * without it; this adds polling, the live log and config reveal. */
"use strict";
(function () {
	var body = document.body;
	var csrf = body.getAttribute("data-csrf");
	var app = body.getAttribute("data-app");

	function text(el, s) {
		if (el && el.textContent !== s)
			el.textContent = s;
	}

	function badge(el, status) {
		if (!el)
			return;
		el.className = "badge s-" + status;
		text(el, status);
	}

	function get(url, fn) {
		fetch(url, { credentials: "same-origin" }).then(function (r) {
			return r.ok ? r.json() : null;
		}).then(function (j) {
			if (j)
				fn(j);
		}).catch(function () {});
	}

	function counts(p) {
		var out = [];
		Object.keys(p).forEach(function (k) {
			out.push(k + "\u00a0\u00d7" + p[k]);
		});
		return out.length ? out.join(" ") : "-";
	}

	/* Confirmation for actions that stop or go back. */
	document.querySelectorAll("form[data-confirm]").forEach(function (f) {
		f.addEventListener("submit", function (ev) {
			if (!window.confirm(f.getAttribute("data-confirm")))
				ev.preventDefault();
		});
	});

	/* The apps list: refresh every few seconds. */
	if (document.getElementById("apps")) {
		setInterval(function () {
			get("/api/apps", function (j) {
				j.apps.forEach(function (a) {
					var row = document.querySelector(
						'tr[data-app="' + a.name + '"]');
					if (!row) {
						location.reload();
						return;
					}
					badge(row.querySelector(".status .badge"),
					      a.status);
					text(row.querySelector(".release"),
					     a.release ? "v" + a.release : "-");
					text(row.querySelector(".procs"),
					     counts(a.processes));
					text(row.querySelector(".deployed"),
					     a.last_deploy_ago);
				});
			});
		}, 3000);
	}

	if (!app)
		return;

	/* One app: status and release, live. */
	setInterval(function () {
		get("/api/apps/" + app, function (j) {
			badge(document.getElementById("status"), j.status);
			var rel = j.release ? "v" + j.release : "none";
			text(document.getElementById("release"), rel);
		});
	}, 3000);

	/* Config values stay hidden until asked for, one at a time. */
	document.querySelectorAll("button.reveal").forEach(function (b) {
		b.addEventListener("click", function () {
			var span = b.parentNode.querySelector(".secret");
			if (b.textContent === "Hide") {
				span.textContent = "hidden";
				b.textContent = "Show";
				return;
			}
			get("/api/apps/" + app + "/config?key=" +
			    encodeURIComponent(b.getAttribute("data-key")),
			    function (j) {
				span.textContent = j.value;
				b.textContent = "Hide";
			});
		});
	});

	/* The live log: Server-Sent Events, filters, pause. */
	var log = document.getElementById("log");
	var source = document.getElementById("log-source");
	var search = document.getElementById("log-search");
	var pause = document.getElementById("log-pause");
	var state = document.getElementById("log-state");
	var lines = [], paused = false, MAX = 2000;

	function wanted(l) {
		var parts = l.split(" ");
		if (source.value && parts[1] !== source.value)
			return false;
		return !search.value ||
			l.toLowerCase().indexOf(search.value.toLowerCase()) >= 0;
	}

	function render() {
		log.textContent = lines.filter(wanted).join("\n");
		log.scrollTop = log.scrollHeight;
	}

	function add(l) {
		lines.push(l);
		if (lines.length > MAX)
			lines.shift();
		if (paused || !wanted(l))
			return;
		log.appendChild(document.createTextNode(
			(log.firstChild ? "\n" : "") + l));
		log.scrollTop = log.scrollHeight;
	}

	source.addEventListener("change", render);
	search.addEventListener("input", render);
	pause.addEventListener("click", function () {
		paused = !paused;
		pause.textContent = paused ? "Resume" : "Pause";
		text(state, paused ? "paused" : "live");
		if (!paused)
			render();
	});

	var es = new EventSource("/api/apps/" + app + "/logs/stream?n=200");
	es.onopen = function () {
		/* a reconnect sends the last lines again */
		lines = [];
		log.textContent = "";
		text(state, paused ? "paused" : "live");
	};
	es.onmessage = function (ev) { add(ev.data); };
	es.addEventListener("end", function () {
		text(state, "ended");
		es.close();
	});
	es.onerror = function () { text(state, "reconnecting"); };
})();
