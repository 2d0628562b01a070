// lib-browser.js: drive headless Chromium over the DevTools protocol on a
// pipe (--remote-debugging-pipe: NUL-separated JSON on fds 3 and 4), with
// no package beyond node itself.
//   const b = await require("./lib-browser.js").launch(profileDir);
//   await b.goto(url); await b.eval("document.title");
//   await b.waitFor("expr", ms); await b.screenshot(file); b.close();
//   await b.resize(390, 844);   (a phone's viewport)
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");

async function launch(profile, width = 1100, height = 900) {
	const proc = spawn(process.env.CHROMIUM || "chromium", [
		"--headless", "--no-sandbox", "--disable-gpu",
		"--disable-dev-shm-usage", "--no-first-run",
		"--remote-debugging-pipe", `--user-data-dir=${profile}`,
		`--window-size=${width},${height}`, "about:blank",
	], { stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"] });
	const toBrowser = proc.stdio[3], fromBrowser = proc.stdio[4];
	let nextId = 1, pending = new Map(), listeners = [], acc = "";
	fromBrowser.on("data", (chunk) => {
		acc += chunk.toString("utf8");
		let i;
		while ((i = acc.indexOf("\0")) >= 0) {
			const msg = JSON.parse(acc.slice(0, i));
			acc = acc.slice(i + 1);
			if (msg.id && pending.has(msg.id)) {
				const { resolve, reject } = pending.get(msg.id);
				pending.delete(msg.id);
				if (msg.error)
					reject(new Error(JSON.stringify(msg.error)));
				else
					resolve(msg.result);
			} else if (msg.method) {
				listeners.forEach((l) => l(msg));
			}
		}
	});
	function send(method, params = {}, sessionId) {
		const id = nextId++;
		const m = { id, method, params };
		if (sessionId)
			m.sessionId = sessionId;
		toBrowser.write(JSON.stringify(m) + "\0");
		return new Promise((resolve, reject) =>
			pending.set(id, { resolve, reject }));
	}
	function once(method, timeout) {
		return new Promise((resolve, reject) => {
			const t = setTimeout(() => reject(new Error(
				`timed out waiting for ${method}`)), timeout);
			const l = (msg) => {
				if (msg.method !== method)
					return;
				listeners = listeners.filter((x) => x !== l);
				clearTimeout(t);
				resolve(msg.params);
			};
			listeners.push(l);
		});
	}
	const { targetId } = await send("Target.createTarget",
					{ url: "about:blank" });
	const { sessionId } = await send("Target.attachToTarget",
					 { targetId, flatten: true });
	const s = (method, params) => send(method, params, sessionId);
	await s("Page.enable");
	await s("Runtime.enable");

	const b = {
		async goto(url, timeout = 30000) {
			const loaded = once("Page.loadEventFired", timeout);
			await s("Page.navigate", { url });
			await loaded;
		},
		async eval(expression) {
			const r = await s("Runtime.evaluate", {
				expression, returnByValue: true, awaitPromise: true,
			});
			if (r.exceptionDetails)
				throw new Error(r.exceptionDetails.text + ": " +
						expression);
			return r.result.value;
		},
		async waitFor(expression, timeout = 30000) {
			const until = Date.now() + timeout;
			for (;;) {
				const v = await b.eval(expression).catch(() => null);
				if (v)
					return v;
				if (Date.now() > until)
					throw new Error(`timed out: ${expression}`);
				await new Promise((r) => setTimeout(r, 200));
			}
		},
		// Click and wait for the page that the form's POST leads to.
		async clickAndLoad(selector, timeout = 60000) {
			const loaded = once("Page.loadEventFired", timeout);
			await b.eval(`document.querySelector(${JSON.stringify(
				selector)}).click(), true`);
			await loaded;
		},
		// The page as a phone of width x height shows it.
		async resize(width, height, mobile = true) {
			await s("Emulation.setDeviceMetricsOverride", {
				width, height, deviceScaleFactor: 1, mobile,
			});
		},
		async screenshot(file) {
			const r = await s("Page.captureScreenshot",
					  { format: "png" });
			fs.writeFileSync(file, Buffer.from(r.data, "base64"));
		},
		close() {
			proc.kill("SIGTERM");
		},
	};
	return b;
}

module.exports = { launch };
