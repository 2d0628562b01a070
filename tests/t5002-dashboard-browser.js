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
		// filters: a source (as logs --source) and a search, no reload
		const visible = "document.getElementById('log').textContent.split('\\n').filter((l) => l)";
		const pick = (v) => b.eval(`(() => { const s = document.getElementById('log-source'); s.value = ${JSON.stringify(v)}; s.dispatchEvent(new Event('change')); return true; })()`);
		await pick("router");
		const routerLines = await b.eval(visible);
		const onlyRouter = routerLines.length > 0 && routerLines.every((l) => l.split(" ")[1] === "router") &&
			routerLines.some((l) => l.includes(marker));
		await pick("app");
		const appLines = await b.eval(visible);
		const onlyApp = appLines.length > 0 && appLines.every((l) => !/^\S+ (router|berth|build|release) /.test(l)) &&
			appLines.some((l) => l.includes(marker));
		await pick("web");
		const webLines = await b.eval(visible);
		const onlyWeb = webLines.length > 0 && webLines.every((l) => /^\S+ web\.\d+ /.test(l));
		await pick("");
		await b.eval(`(() => { const s = document.getElementById('log-search'); s.value = ${JSON.stringify(marker2)}; s.dispatchEvent(new Event('input')); return true; })()`);
		const found = await b.eval(visible);
		const onlySearched = found.length > 0 && found.every((l) => l.includes(marker2));
		await b.eval("(() => { const s = document.getElementById('log-search'); s.value = ''; s.dispatchEvent(new Event('input')); return true; })()");
		const all = await b.eval(visible);
		console.log(`ok: filters: router only ${onlyRouter}, app only ${onlyApp}, web only ${onlyWeb}, search only ${onlySearched}, all back ${all.length > found.length}`);
		// the newest deploy's kept output is shown on load
		await b.waitFor("document.getElementById('deploy-state').textContent === 'complete'");
		const first = await b.eval("document.getElementById('deploy-title').textContent");
		console.log(`ok: the newest deploy's output shown: ${first}`);
		// a release row's Output link shows that deploy's output below,
		// without a reload (a mark on window survives)
		await b.eval("window.noReload = 'still here', true");
		await b.eval("document.querySelector('#releases tr[data-release=\"1\"] a.output').click(), true");
		await b.waitFor("document.getElementById('deploy-log').textContent.includes('Deploying release 1 of ')");
		const kept = await b.eval("window.noReload + ': ' + document.getElementById('deploy-title').textContent + ': ' + document.getElementById('deploy-log').textContent.split('\\n')[0]");
		console.log(`ok: release v1's output without a reload: ${kept}`);
		// a deploy started while the page is open: its lines come live
		await b.eval("fetch('/api/apps/' + document.body.dataset.app + '/restart', " +
			     "{ method: 'POST', credentials: 'same-origin', " +
			     "headers: { 'X-CSRF-Token': document.body.dataset.csrf } }), true");
		await b.waitFor("document.getElementById('deploy-log').textContent.includes('Restarting release')", 60000);
		const dl = await b.eval("document.getElementById('deploy-log').textContent.split('\\n').filter((l) => l.includes('Restarting release')).pop()");
		const row = await b.eval("document.querySelector('#deploys tbody tr').textContent");
		console.log(`ok: a deploy in progress showed its lines live: ${dl}`);
		console.log(`ok: its row: ${row}`);
		await b.eval("document.getElementById('deploys').scrollIntoView(), true");
		await b.screenshot(`${outdir}/deploys.png`);
		await b.eval("window.scrollTo(0, 0), true");
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
		// on a phone: nothing wider than the screen, every section there
		await b.resize(390, 844);
		await b.goto(`http://berth.localhost:${port}/apps/${app}`).catch(() => {});
		await b.waitFor("document.getElementById('deploys') !== null");
		const fits = await b.eval("document.documentElement.scrollWidth <= window.innerWidth + 1");
		const sections = await b.eval("Array.from(document.querySelectorAll('h2')).map((h) => h.textContent).join(', ')");
		console.log(`ok: phone width ${await b.eval("window.innerWidth")}: fits ${fits}; ${sections}`);
		await b.screenshot(`${outdir}/phone.png`);
	} finally {
		b.close();
	}
})().catch((e) => {
	console.log(`not ok: ${e.message}`);
	process.exit(1);
});
