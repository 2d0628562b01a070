// t5002's browser part: log in with a one-time link, follow a live log
// line, press rollback.  Prints "ok: ..." lines; any failure exits 1.
// usage: node t5002-dashboard-browser.js LOGIN-URL APP HTTP-PORT OUTDIR
"use strict";
const http = require("http");
const { launch } = require("./lib-browser.js");
const [link, app, port, outdir] = process.argv.slice(2);

function appRequest(path) {
	return new Promise((resolve) => {
		const req = http.get({ host: "127.0.0.1", port, path,
				       headers: { Host: `${app}.localhost` } },
				     (res) => { res.resume(); res.on("end", resolve); });
		req.on("error", resolve);
	});
}

(async () => {
	const b = await launch(`${outdir}/profile`, 1100, 1400);
	try {
		await b.goto(`${link}&next=/apps/${app}`);
		const title = await b.eval("document.querySelector('h1').textContent");
		console.log(`ok: app page: ${title}`);
		await b.waitFor("document.getElementById('log-state').textContent === 'live'");
		console.log("ok: the log stream is live");
		const marker = `/marker-browser-${Date.now()}`;
		await appRequest(marker);
		await b.waitFor(`document.getElementById('log').textContent.includes(${JSON.stringify(marker)})`);
		console.log(`ok: followed a live log line ${marker}`);
		// pause: a new line is kept but not shown until resume
		await b.eval("document.getElementById('log-pause').click(), true");
		const marker2 = `/marker-paused-${Date.now()}`;
		await appRequest(marker2);
		await new Promise((r) => setTimeout(r, 1500));
		const shownWhilePaused = await b.eval(`document.getElementById('log').textContent.includes(${JSON.stringify(marker2)})`);
		await b.eval("document.getElementById('log-pause').click(), true");
		await b.waitFor(`document.getElementById('log').textContent.includes(${JSON.stringify(marker2)})`);
		console.log(`ok: pause held the line back (${!shownWhilePaused}), resume showed it`);
		await b.screenshot(`${outdir}/app.png`);
		const before = await b.eval("document.getElementById('release').textContent");
		const target = await b.eval("(document.querySelector('button.rollback') || {}).id || ''");
		if (!target)
			throw new Error("no rollback button");
		await b.eval("window.confirm = () => true, true");
		await b.clickAndLoad(`#${target}`);
		const flash = await b.eval("(document.getElementById('flash') || {}).textContent || ''");
		const after = await b.eval("document.getElementById('release').textContent");
		console.log(`ok: rollback pressed (${target}): release ${before} -> ${after}`);
		console.log(`flash: ${flash.split("\n")[0]}`);
		await b.screenshot(`${outdir}/rollback.png`);
	} finally {
		b.close();
	}
})().catch((e) => {
	console.log(`not ok: ${e.message}`);
	process.exit(1);
});
