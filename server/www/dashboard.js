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

	function badge(el, status, step) {
		if (!el)
			return;
		el.className = "badge s-" + status;
		text(el, step ? status + ": " + step : status);
	}

	function bytes(b) {
		if (!b)
			return "-";
		if (b < 1048576)
			return Math.floor(b / 1024) + " KiB";
		if (b < 1073741824)
			return (b / 1048576).toFixed(1) + " MiB";
		return (b / 1073741824).toFixed(2) + " GiB";
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
					      a.status, a.step);
					text(row.querySelector(".rps"),
					     a.rps.toFixed(2));
					text(row.querySelector(".errors"),
					     a.error_rate.toFixed(1) + "%");
					text(row.querySelector(".mem"),
					     bytes(a.memory_bytes));
					text(row.querySelector(".cpu"),
					     a.cpu === null ? "-" :
					     a.cpu.toFixed(1) + "%");
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
			text(document.getElementById("step"), j.step);
			j.processes.forEach(function (p) {
				var sel = '[data-proc="' + p.name + '"]';
				text(document.querySelector("td.mem" + sel),
				     bytes(p.rss_bytes));
				text(document.querySelector("td.cpu" + sel),
				     p.cpu === null ? "-" : p.cpu.toFixed(1) + "%");
			});
			var rel = j.release ? "v" + j.release : "none";
			text(document.getElementById("release"), rel);
			deploysUpdate(j.deploys);
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

	/* As the engine's logs --source (logger_source_matches()): "app"
	 * is every process (not the router, berth, a build or a deploy
	 * script), "release" the deploy scripts, a type its processes
	 * ("web": web.1, web.2; "cron": cron.N; "run": run.N). */
	var SCRIPTS = ["release", "predeploy", "postdeploy"];
	function sourceMatches(want, src) {
		if (want === "app")
			return src !== "router" && src !== "berth" &&
				src !== "build" && SCRIPTS.indexOf(src) < 0;
		if (want === "release")
			return SCRIPTS.indexOf(src) >= 0;
		return src === want || (want.indexOf(".") < 0 &&
			src.indexOf(want + ".") === 0);
	}

	function wanted(l) {
		var parts = l.split(" ");
		if (source.value && !sourceMatches(source.value, parts[1] || ""))
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

	/* Deploys: each one's kept output, shown below the table without a
	 * reload; one still running shows its lines as they come (the
	 * engine sends what the record holds, then each new line). */
	var dlog = document.getElementById("deploy-log");
	var dstate = document.getElementById("deploy-state");
	var dtitle = document.getElementById("deploy-title");
	var ds = null, shown = 0, newest = 0;

	function showOutput(d) {
		if (ds)
			ds.close();
		shown = d;
		dlog.textContent = "";
		text(dtitle, "Deploy #" + d);
		text(dstate, "loading");
		document.querySelectorAll("tr.shown").forEach(function (r) {
			r.classList.remove("shown");
		});
		var row = document.querySelector('#deploys tr[data-deploy="' +
						  d + '"]');
		if (row)
			row.classList.add("shown");
		ds = new EventSource("/api/apps/" + app + "/deploys/" + d +
				     "/output/stream");
		ds.onopen = function () {
			/* a reconnect sends every line again */
			dlog.textContent = "";
			text(dstate, "live");
		};
		ds.onmessage = function (ev) {
			dlog.appendChild(document.createTextNode(
				(dlog.firstChild ? "\n" : "") + ev.data));
			dlog.scrollTop = dlog.scrollHeight;
		};
		ds.addEventListener("end", function (ev) {
			text(dstate, ev.data === "ok" ? "complete" : ev.data);
			ds.close();
		});
		ds.onerror = function () { text(dstate, "reconnecting"); };
	}

	function outputLinks(root) {
		root.querySelectorAll("a.output").forEach(function (a) {
			if (a.dataset.bound)
				return;
			a.dataset.bound = "1";
			a.addEventListener("click", function (ev) {
				ev.preventDefault();
				showOutput(a.getAttribute("data-deploy"));
			});
		});
	}
	outputLinks(document);

	/* The deploys table, live: a new deploy gets a row, and unless the
	 * reader picked another one, its output is followed. */
	function badgeDeploy(row, d) {
		var cells = row.querySelectorAll("td");
		text(cells[1], d.release ? "v" + d.release : "none");
		var b = cells[2].querySelector(".badge");
		b.className = "badge d-" + d.status;
		text(b, d.status);
	}

	function deploysUpdate(list) {
		var tbody = document.querySelector("#deploys tbody");
		list.slice().reverse().forEach(function (d) {
			var row = tbody.querySelector('tr[data-deploy="' +
						      d.deploy + '"]');
			if (!row) {
				row = document.createElement("tr");
				row.setAttribute("data-deploy", d.deploy);
				["#" + d.deploy, "", "", d.kind, "just now",
				 (d.commit || "-").slice(0, 10), ""].forEach(
					function (t, i) {
						var td = document.createElement("td");
						if (i === 2) {
							var sp = document.createElement("span");
							sp.className = "badge";
							td.appendChild(sp);
						} else if (i === 6) {
							var a = document.createElement("a");
							a.className = "output";
							a.id = "output-" + d.deploy;
							a.href = "/apps/" + app + "/deploys/" + d.deploy;
							a.setAttribute("data-deploy", d.deploy);
							a.textContent = "Output";
							td.appendChild(a);
						} else {
							td.textContent = t;
						}
						row.appendChild(td);
					});
				var empty = tbody.querySelector("td[colspan]");
				if (empty)
					empty.parentNode.remove();
				tbody.insertBefore(row, tbody.firstChild);
				outputLinks(row);
			}
			badgeDeploy(row, d);
		});
		// a new deploy takes the view, running or done already (a
		// restart can end between two polls)
		if (list.length && list[0].deploy > newest) {
			newest = list[0].deploy;
			showOutput(newest);
		}
	}

	var firstRow = document.querySelector("#deploys tr[data-deploy]");
	if (firstRow) {
		newest = parseInt(firstRow.getAttribute("data-deploy"), 10);
		showOutput(newest);
	}
})();
