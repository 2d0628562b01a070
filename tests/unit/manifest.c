/* manifest: Procfile, app.yaml, keter.yaml and bin/release parsing, good
 * and bad, with exact values and error positions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest.h"
#include "util.h"
#include "tap.h"
#include "banned.h"

static struct manifest m;

static int procfile(const char *s)
{
	manifest_release(&m);
	manifest_init(&m);
	return manifest_parse_procfile(&m, s, strlen(s), "Procfile");
}

static int app(const char *s)
{
	manifest_release(&m);
	manifest_init(&m);
	return manifest_parse_app_yaml(&m, s, strlen(s), "app.yaml");
}

static int keter(const char *s)
{
	manifest_release(&m);
	manifest_init(&m);
	return manifest_parse_keter(&m, s, strlen(s), "config/keter.yaml", "/rel");
}

static const char *cmd(const char *type)
{
	const struct proc_spec *p = manifest_proc(&m, type);

	return p ? (p->cmd ? p->cmd : "(argv)") : "(none)";
}

/* The parser fails with exactly this message. */
#define BAD(call, msg, what) do {					\
		int r_ = (call);					\
		ok(r_ < 0 && !strcmp(error_last(), msg),		\
		   "%s: got '%s'", what, r_ < 0 ? error_last() : "success"); \
	} while (0)

static void write_file(const char *dir, const char *name, const char *data)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (write_file_atomic(path, data, strlen(data), 0644) < 0)
		abort();
}

static void test_procfile(void)
{
	ok(procfile("web: ./server --port $PORT\nworker: ./work\n") == 0,
	   "simple Procfile");
	ok(m.nprocs == 2 && !strcmp(cmd("web"), "./server --port $PORT") &&
	   !strcmp(cmd("worker"), "./work"), "two types parsed");
	ok(m.procs[0].scale == 1 && m.procs[0].order == ORDER_START_FIRST,
	   "default scale 1, start-first");
	ok(procfile("# comment\n\n   \t\n  # indented comment\r\n"
		    "web:   bundle exec puma -C config/puma.rb   # the app\r\n"
		    "release: rake db:migrate # before going live\n"
		    "cron-1:echo 'a # not a comment' \"b # neither\"\n"
		    "tail: x#y\n") == 0, "comments, CRLF, release: %s",
	   error_last());
	ok(!strcmp(cmd("web"), "bundle exec puma -C config/puma.rb"),
	   "inline comment and spaces stripped: '%s'", cmd("web"));
	ok(m.release_cmd && !strcmp(m.release_cmd, "rake db:migrate"),
	   "release is the release phase");
	ok(!manifest_proc(&m, "release"), "release is not a process");
	ok(!strcmp(cmd("cron-1"), "echo 'a # not a comment' \"b # neither\""),
	   "# inside quotes kept: '%s'", cmd("cron-1"));
	ok(!strcmp(cmd("tail"), "x#y"), "# without a space before is kept");
	ok(procfile("web: a\n") == 0 && procfile("") == 0 && m.nprocs == 0,
	   "empty Procfile parses to nothing");
	ok(procfile("web: a") == 0 && !strcmp(cmd("web"), "a"), "no final newline");

	BAD(procfile("web: a\nweb: b\n"), "Procfile:2:1: duplicate process type 'web'",
	    "duplicate type");
	BAD(procfile("release: a\n  release: b\n"),
	    "Procfile:2:3: duplicate process type 'release'", "duplicate release");
	BAD(procfile("\n\nWeb: a\n"),
	    "Procfile:3:1: invalid process type 'Web' (use a-z, 0-9, _ and -, at most 32)",
	    "upper case type");
	BAD(procfile("we b: a\n"),
	    "Procfile:1:1: invalid process type 'we b' (use a-z, 0-9, _ and -, at most 32)",
	    "space in type");
	BAD(procfile(": a\n"),
	    "Procfile:1:1: invalid process type '' (use a-z, 0-9, _ and -, at most 32)",
	    "empty type");
	BAD(procfile("abcdefghijabcdefghijabcdefghijabc: a\n"),
	    "Procfile:1:1: invalid process type 'abcdefghijabcdefghijabcdefghijabc' (use a-z, 0-9, _ and -, at most 32)",
	    "33-char type");
	BAD(procfile("web: a\n  just words\n"), "Procfile:2:3: expected 'type: command'",
	    "line without colon");
	BAD(procfile("web:   # only a comment\n"),
	    "Procfile:1:4: process type 'web' has no command", "empty command");
	BAD(procfile("web:\r\n"), "Procfile:1:4: process type 'web' has no command",
	    "empty command with CRLF");
	BAD(manifest_parse_procfile(&m, "web: a\0b\n", 9, "Procfile"),
	    "Procfile:1:7: NUL byte in line", "NUL byte");
}

/* resources: each process's cgroup limits (issue #12) */
static void test_resources(void)
{
	ok(app("") == 0 && m.res_memory == -1 && m.res_cpu_millis == -1 &&
	   m.res_processes == -1, "no resources: berth.yaml's defaults");
	ok(app("resources:\n  memory: 256M\n  cpu: 0.5\n  processes: 200\n")
	   == 0 && m.res_memory == 256LL << 20 && m.res_cpu_millis == 500 &&
	   m.res_processes == 200, "memory, cpu and processes read");
	ok(app("resources:\n  cpu: 2\n") == 0 && m.res_cpu_millis == 2000 &&
	   m.res_memory == -1 && m.res_processes == -1,
	   "one set, the others left to berth.yaml");
	BAD(app("resources:\n  memory: 1M\n"),
	    "app.yaml:2:11: 'resources.memory' must be a size from 4M, like 256M or 1G",
	    "memory below 4M");
	BAD(app("resources:\n  cpu: lots\n"),
	    "app.yaml:2:8: 'resources.cpu' must be a number of cores from 0.01, like 0.5 or 2",
	    "cpu not a number");
	BAD(app("resources:\n  processes: 0\n"),
	    "app.yaml:2:14: 'resources.processes' must be a number from 1 to 1000000",
	    "no processes");
	BAD(app("resources:\n  disk: 1G\n"),
	    "app.yaml:2:3: unknown key 'disk' in 'resources'", "unknown key");
	BAD(app("resources: 256M\n"),
	    "app.yaml:1:12: 'resources' must be a mapping, not a string",
	    "not a mapping");
}

static void test_app_yaml(void)
{
	ok(app("") == 0 && m.nprocs == 0, "empty app.yaml is all defaults");
	ok(!strcmp(m.health_path, "/") && m.health_timeout_ms == -1 &&
	   m.health_max_status == 499 && m.drain_ms == -1 &&
	   m.stop_timeout_ms == -1 && m.settle_ms == -1 && !m.postgres &&
	   !m.buildpack && !m.static_root && !m.webhook && !m.release_cmd &&
	   !m.hosts.n && !m.env.n && !m.pipeline.n, "defaults");
	ok(app("processes:\n"
	       "  web: ./server\n"
	       "  worker:\n"
	       "    command: ./work --queue=x\n"
	       "    scale: 3\n"
	       "    order: stop-first\n"
	       "  idle: {command: sleep 1, scale: 0}\n"
	       "release: ./migrate\n"
	       "healthcheck:\n"
	       "  path: /healthz?full=1\n"
	       "  timeout: 30s\n"
	       "  max_status: 399\n"
	       "drain: 500ms\n"
	       "stop_timeout: 1m\n"
	       "settle: 2\n"
	       "hosts: [example.com, \"*.example.org\", Example.com]\n"
	       "postgres: yes\n"
	       "buildpack: https://github.com/heroku/heroku-buildpack-go\n"
	       "pipeline:\n  - test\n  - build.assets\n"
	       "static: ./public/\n"
	       "env:\n  RAILS_ENV: production\n  WORKERS: 4\n  EMPTY:\n"
	       "webhook: https://hooks.example.com/deploy\n") == 0,
	   "full app.yaml: %s", error_last());
	ok(m.nprocs == 3 && !strcmp(cmd("web"), "./server") &&
	   !strcmp(cmd("worker"), "./work --queue=x"), "processes");
	ok(manifest_proc(&m, "worker")->scale == 3 &&
	   manifest_proc(&m, "worker")->order == ORDER_STOP_FIRST &&
	   manifest_proc(&m, "web")->scale == 1 &&
	   manifest_proc(&m, "idle")->scale == 0, "scale and order");
	ok(!strcmp(m.release_cmd, "./migrate"), "release");
	ok(!strcmp(m.health_path, "/healthz?full=1") && m.health_timeout_ms == 30000 &&
	   m.health_max_status == 399, "healthcheck");
	ok(m.drain_ms == 500 && m.stop_timeout_ms == 60000 && m.settle_ms == 2000,
	   "durations");
	ok(m.hosts.n == 2 && !strcmp(m.hosts.v[0], "example.com") &&
	   !strcmp(m.hosts.v[1], "*.example.org"), "hosts (duplicates folded)");
	ok(m.postgres == 1, "postgres");
	ok(!strcmp(m.buildpack, "https://github.com/heroku/heroku-buildpack-go"),
	   "buildpack");
	ok(m.pipeline.n == 2 && !strcmp(m.pipeline.v[1], "build.assets"), "pipeline");
	ok(!strcmp(m.static_root, "public"), "static cleaned: %s", m.static_root);
	ok(m.env.n == 3 && !strcmp(m.env.v[0], "RAILS_ENV=production") &&
	   !strcmp(m.env.v[1], "WORKERS=4") && !strcmp(m.env.v[2], "EMPTY="), "env");
	ok(!strcmp(m.webhook, "https://hooks.example.com/deploy"), "webhook");
	ok(m.socket == SOCKET_AUTO, "socket: auto by default");
	ok(app("socket: inherit\n") == 0 && m.socket == SOCKET_INHERIT,
	   "socket: inherit");
	ok(app("socket: none\n") == 0 && m.socket == SOCKET_NONE, "socket: none");
	ok(app("socket: auto\n") == 0 && m.socket == SOCKET_AUTO, "socket: auto");
	ok(app("healthcheck: /up\nhosts: one.example.com\n") == 0 &&
	   !strcmp(m.health_path, "/up") && m.hosts.n == 1,
	   "healthcheck and hosts as plain strings");
	ok(app("processes:\n  release: ./migrate\n  web: x\n") == 0 &&
	   !strcmp(m.release_cmd, "./migrate") && m.nprocs == 1,
	   "release under processes");
	ok(app("hosts:\nenv:\n") == 0, "keys without values are as if absent");
	ok(app("static: .\n") == 0 && !strcmp(m.static_root, "."), "static: .");
	ok(app("static: {root: ./public, hosts: [static.example.com, \"*.cdn.example.com\"]}\n"
	       "hosts: www.example.com\n"
	       "processes: {web: ./server}\n") == 0 &&
	   !strcmp(m.static_root, "public") && m.static_hosts.n == 2 &&
	   m.hosts.n == 3 && !strcmp(m.hosts.v[0], "www.example.com") &&
	   !strcmp(m.hosts.v[1], "static.example.com"),
	   "static: {root, hosts}: the folder on its hosts, beside the web processes: %s",
	   error_last());
	ok(app("static:\n  root: site\n") == 0 && !strcmp(m.static_root, "site") &&
	   !m.static_hosts.n, "static: {root} alone is static: site");
	BAD(app("static: {hosts: [a.example.com]}\n"),
	    "app.yaml:1:9: 'static' needs 'root'", "static without root");
	BAD(app("static: {root: ../x}\n"),
	    "app.yaml:1:16: 'static.root' must be a folder inside the bundle (letters, digits, . _ - + /)",
	    "static.root escaping");
	BAD(app("static: {root: s, host: a.example.com}\n"),
	    "app.yaml:1:19: unknown key 'static.host' (use root and hosts)",
	    "static.host misspelt");
	BAD(app("hosts: [a.example.com]\nstatic: {root: s, hosts: [a.example.com]}\n"),
	    "app.yaml:2:27: host 'a.example.com' is the web processes' already: a host goes to the web processes or to the folder, not both",
	    "a host both the app's and the folder's");
	BAD(app("static: {root: s, hosts: [\"bad host\"]}\n"),
	    "app.yaml:1:27: 'static.hosts' has an invalid host name 'bad host'",
	    "a bad static host");
	ok(app("a: &cmd ./server\nprocesses: {web: *cmd}\n") < 0,
	   "anchors work but unknown keys still fail");
	ok(app("x-common: &c {command: ./server, scale: 2}\n") < 0, "x- keys are unknown");
	ok(app("processes:\n  web: &w {command: ./server, scale: 2}\n  web2: *w\n") == 0 &&
	   manifest_proc(&m, "web2") && manifest_proc(&m, "web2")->scale == 2,
	   "aliases copy their anchor");

	ok(app("processes:\n"
	       "  web: &base {command: ./server, scale: 2, order: stop-first}\n"
	       "  worker:\n    <<: *base\n    command: ./worker\n"
	       "  other: {<<: [*base, {scale: 9}], scale: 3}\n") == 0 &&
	   !strcmp(cmd("worker"), "./worker") && manifest_proc(&m, "worker")->scale == 2 &&
	   manifest_proc(&m, "worker")->order == ORDER_STOP_FIRST &&
	   !strcmp(cmd("other"), "./server") && manifest_proc(&m, "other")->scale == 3,
	   "merge keys: own keys win, then earlier sources: %s", error_last());
	BAD(app("processes:\n  web: &b {command: x, scal: 2}\n  w2: {<<: *b}\n"),
	    "app.yaml:2:24: unknown key 'scal' in 'processes.web'", "merged typo is found");
	BAD(app("processes:\n  web: {<<: [a]}\n"),
	    "app.yaml:2:14: '<<' needs a mapping or a list of mappings", "merge of a scalar");
	BAD(app("env:\n  <<: &b {A: '1'}\n  B: '2'\npipeline: [*b]\n"),
	    "app.yaml:4:12: 'pipeline' must be a string, not a mapping",
	    "an anchor inside a merge source stays usable");
	ok(app("env:\n  <<: {A: '1', B: x}\n  B: '2'\n") == 0 && m.env.n == 2 &&
	   !strcmp(m.env.v[0], "B=2") && !strcmp(m.env.v[1], "A=1"), "merged env");
	BAD(app("processes:\n  web: x\nfoo: 1\n"), "app.yaml:3:1: unknown key 'foo'",
	    "unknown key");
	BAD(app("drain: soon\n"), "app.yaml:1:8: 'drain' must be a duration like 2s",
	    "bad duration");
	BAD(app("stop_timeout: 2h\n"),
	    "app.yaml:1:15: 'stop_timeout' must be a duration like 2s", "2h is not a duration");
	BAD(app("settle: [1]\n"), "app.yaml:1:9: 'settle' must be a duration like 2s",
	    "list as duration");
	BAD(app("drain: 2000m\n"), "app.yaml:1:8: 'drain' must be from 0ms to 3600s",
	    "duration out of range");
	BAD(app("healthcheck:\n  timeout: 10ms\n"),
	    "app.yaml:2:12: 'healthcheck.timeout' must be from 100ms to 3600s",
	    "health timeout too short");
	BAD(app("healthcheck:\n  path: healthz\n"),
	    "app.yaml:2:9: 'healthcheck.path' must start with '/'", "relative health path");
	BAD(app("healthcheck:\n  path: /a b\n"),
	    "app.yaml:2:9: 'healthcheck.path' must not contain spaces or control characters",
	    "space in health path");
	BAD(app("healthcheck:\n  max_status: 600\n"),
	    "app.yaml:2:15: 'healthcheck.max_status' must be a number from 200 to 599",
	    "max_status range");
	BAD(app("healthcheck:\n  paht: /\n"),
	    "app.yaml:2:3: unknown key 'paht' in 'healthcheck'", "typo in healthcheck");
	BAD(app("hosts:\n  - good.example.com\n  - bad host!\n"),
	    "app.yaml:3:5: 'hosts' has an invalid host name 'bad host!'", "bad host");
	BAD(app("hosts: [a..b]\n"), "app.yaml:1:9: 'hosts' has an invalid host name 'a..b'",
	    "empty label");
	BAD(app("hosts: {a: b}\n"), "app.yaml:1:8: 'hosts' must be a list, not a mapping",
	    "hosts mapping");
	BAD(app("postgres: maybe\n"), "app.yaml:1:11: 'postgres' must be true or false",
	    "bad bool");
	BAD(app("processes:\n  Web: x\n"),
	    "app.yaml:2:3: invalid process type 'Web' (use a-z, 0-9, _ and -, at most 32)",
	    "bad type");
	BAD(app("processes:\n  web: x\n  web: y\n"), "app.yaml:3:3: duplicate key 'web'",
	    "duplicate YAML key");
	BAD(app("processes:\n  web:\n    scale: 2\n"),
	    "app.yaml:3:5: 'processes.web' needs a 'command'", "map without command");
	BAD(app("processes:\n  web:\n    command: x\n    scale: many\n"),
	    "app.yaml:4:12: 'processes.web.scale' must be a number from 0 to 100",
	    "bad scale");
	BAD(app("processes:\n  web:\n    command: x\n    order: random\n"),
	    "app.yaml:4:12: 'processes.web.order' must be start-first or stop-first",
	    "bad order");
	BAD(app("processes:\n  web:\n    command: x\n    cmd: y\n"),
	    "app.yaml:4:5: unknown key 'cmd' in 'processes.web'", "unknown process key");
	BAD(app("processes:\n  web: [a, b]\n"),
	    "app.yaml:2:8: 'processes.web' must be a string, not a list", "list command");
	BAD(app("processes:\n  web: \"  \"\n"),
	    "app.yaml:2:8: 'processes.web' has an empty command", "blank command");
	BAD(app("processes: [web]\n"),
	    "app.yaml:1:12: 'processes' must be a mapping of type: command, not a list",
	    "processes list");
	BAD(app("release: a\nprocesses:\n  release: b\n"),
	    "app.yaml:3:3: 'release' is set twice", "release twice");
	BAD(app("static: ../etc\n"),
	    "app.yaml:1:9: 'static' must be a folder inside the bundle (letters, digits, . _ - + /)",
	    "static escaping");
	BAD(app("static: /srv\n"),
	    "app.yaml:1:9: 'static' must be a folder inside the bundle (letters, digits, . _ - + /)",
	    "static absolute");
	BAD(app("static: \"pub;lic\"\n"),
	    "app.yaml:1:9: 'static' must be a folder inside the bundle (letters, digits, . _ - + /)",
	    "static with nginx syntax");
	BAD(app("env:\n  1BAD: x\n"), "app.yaml:2:3: 'env' has an invalid variable name '1BAD'",
	    "bad env name");
	BAD(app("env: [A=1]\n"),
	    "app.yaml:1:6: 'env' must be a mapping of NAME: value, not a list", "env list");
	BAD(app("env:\n  A: {b: c}\n"), "app.yaml:2:6: 'env' must be a string, not a mapping",
	    "env value mapping");
	BAD(app("socket: systemd\n"),
	    "app.yaml:1:9: 'socket' must be auto, inherit or none", "bad socket");
	BAD(app("webhook: ftp://x\n"),
	    "app.yaml:1:10: 'webhook' must be an http:// or https:// URL", "webhook scheme");
	BAD(app("pipeline: [test, \"../x\"]\n"),
	    "app.yaml:1:18: 'pipeline' has an invalid step name '../x'", "bad step");
	BAD(app("buildpack: \"a b\"\n"),
	    "app.yaml:1:12: 'buildpack' must not contain spaces or control characters",
	    "bad buildpack");
	BAD(app("- web\n"), "app.yaml:1:1: expected a mapping of settings, not a list",
	    "top-level list");
	BAD(app("processes:\n  web: x\n bad\n"),
	    "app.yaml:3:2: did not find expected key while parsing a block mapping",
	    "YAML syntax error");
	BAD(app("processes: {web: x\n"),
	    "app.yaml:2:1: did not find expected ',' or '}' while parsing a flow mapping",
	    "unclosed flow mapping");
	BAD(app("a: *nope\n"), "app.yaml:1:4: unknown alias 'nope'", "unknown alias");
	BAD(app("a: 1\n---\nb: 2\n"), "app.yaml:2:1: only one YAML document is allowed",
	    "two documents");
	BAD(app("? [a]\n: b\n"), "app.yaml:1:3: mapping keys must be strings",
	    "complex key");
	BAD(app("env:\n  A: \"x\\0y\"\n"), "app.yaml:2:6: 'env' must not contain NUL bytes",
	    "NUL in value");
	{
		/* billion laughs: the node budget stops it */
		const char *lol =
			"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
			"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
			"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
			"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
			"f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
		ok(app(lol) < 0 && strstr(error_last(), "document too large"),
		   "alias bomb refused: %s", error_last());
	}
	{
		struct buf deep = BUF_INIT;
		int i;

		for (i = 0; i < 100; i++)
			buf_addstr(&deep, "[");
		ok(app(deep.data) < 0 && strstr(error_last(), "too deeply nested"),
		   "deep nesting refused: %s", error_last());
		buf_release(&deep);
	}
}

static void test_keter(void)
{
	ok(keter("exec: ../dist/bin/app\n"
		 "args: [--port, 3000, -v]\n"
		 "host: www.example.com\n"
		 "extra-hosts: [example.com]\n"
		 "env: {APPROOT: \"http://www.example.com\"}\n"
		 "ssl: true\n"
		 "postgres: true\n") == 0, "flat keter: %s", error_last());
	ok(m.nprocs == 1 && !m.procs[0].cmd && m.procs[0].argv.n == 4 &&
	   !strcmp(m.procs[0].argv.v[0], "/rel/dist/bin/app") &&
	   !strcmp(m.procs[0].argv.v[2], "3000") && !strcmp(m.procs[0].type, "web"),
	   "flat: web with argv, exec resolved against config/: %s",
	   m.nprocs ? m.procs[0].argv.v[0] : "-");
	ok(m.hosts.n == 2 && !strcmp(m.hosts.v[0], "www.example.com"), "flat hosts");
	ok(m.postgres && m.env.n == 1, "flat postgres and env");

	ok(keter("stanzas:\n"
		 "  - type: webapp\n"
		 "    exec: ../app\n"
		 "    args: [serve]\n"
		 "    hosts: [a.example.com, b.example.com]\n"
		 "    env: {MODE: web}\n"
		 "    forward-env: [HOME]\n"
		 "    ensure-alive-time-bound: 90000000\n"
		 "  - type: background\n"
		 "    exec: ./worker.sh\n"
		 "    restart-count: unlimited\n"
		 "  - type: background\n"
		 "    exec: ../bin/cron\n"
		 "    args: [--every, 5m]\n"
		 "  - type: static-files\n"
		 "    root: ../static\n"
		 "    hosts: [static.example.com]\n"
		 "plugins:\n"
		 "  postgres: true\n") == 0, "stanzas keter: %s", error_last());
	ok(m.nprocs == 3 && !strcmp(m.procs[0].type, "web") &&
	   !strcmp(m.procs[1].type, "background1") &&
	   !strcmp(m.procs[2].type, "background2"), "webapp -> web, backgrounds numbered");
	ok(!strcmp(m.procs[1].argv.v[0], "/rel/config/worker.sh") &&
	   !strcmp(m.procs[2].argv.v[0], "/rel/bin/cron") && m.procs[2].argv.n == 3,
	   "background argv");
	ok(!strcmp(m.static_root, "static"), "static-files root relative to config/");
	ok(m.hosts.n == 3 && !strcmp(m.hosts.v[2], "static.example.com"), "all hosts");
	ok(m.postgres == 1, "plugins.postgres");
	ok(m.static_hosts.n == 1 &&
	   !strcmp(m.static_hosts.v[0], "static.example.com"),
	   "the static-files hosts are the folder's");
	ok(keter("stanzas:\n"
		 "  - type: static-files\n"
		 "    root: ../static\n"
		 "    directory-listing: false\n"
		 "    hosts: [s.example.com, \"*.cdn.example.com\"]\n"
		 "  - type: webapp\n"
		 "    exec: ../app\n"
		 "    hosts: [www.example.com]\n") == 0 &&
	   m.hosts.n == 3 && !strcmp(m.hosts.v[0], "www.example.com") &&
	   m.static_hosts.n == 2 &&
	   !strcmp(m.static_hosts.v[1], "*.cdn.example.com"),
	   "static-files first: the webapp's host stays the main one: %s",
	   error_last());
	BAD(keter("stanzas:\n"
		  "  - {type: webapp, exec: ../app, hosts: [www.example.com]}\n"
		  "  - {type: static-files, root: ../s, hosts: [WWW.example.com]}\n"),
	    "config/keter.yaml:3:46: host 'WWW.example.com' is the web processes' already: a host goes to the web processes or to the folder, not both",
	    "a host both the webapp's and the folder's");
	BAD(keter("stanzas:\n"
		  "  - {type: static-files, root: ../s, hosts: [www.example.com]}\n"
		  "  - {type: webapp, exec: ../app, hosts: [www.example.com]}\n"),
	    "config/keter.yaml:3:42: host 'www.example.com' is the static folder's already: a host goes to the web processes or to the folder, not both",
	    "and the other way round");
	ok(keter("static-hosts:\n  - host: s.example.com\n    root: ../public\n") == 0 &&
	   !strcmp(m.static_root, "public") && m.nprocs == 0,
	   "flat static-hosts only: %s", error_last());

	ok(keter("host: www.example.com\nstatic-hosts:\n  - {host: s.example.com, root: ../public}\n") == 0 &&
	   m.hosts.n == 2 && !strcmp(m.hosts.v[0], "www.example.com") &&
	   !strcmp(m.hosts.v[1], "s.example.com"),
	   "flat static-only keeps its host: %s", error_last());
	BAD(keter("args: [x]\nstatic-hosts:\n  - {host: s.example.com, root: ../public}\n"),
	    "config/keter.yaml:1:1: 'args' needs 'exec'", "args without exec");
	BAD(keter("exec: ../../etc/evil\n"),
	    "config/keter.yaml:1:7: 'exec' must be a path inside the bundle, relative to config/",
	    "exec escaping");
	BAD(keter("exec: /bin/sh\n"),
	    "config/keter.yaml:1:7: 'exec' must be a path inside the bundle, relative to config/",
	    "absolute exec");
	BAD(keter("exec: ..\n"),
	    "config/keter.yaml:1:7: 'exec' must be a path inside the bundle, relative to config/",
	    "exec is the root");
	BAD(keter("exec: ../app\nhost: bad host!\n"),
	    "config/keter.yaml:2:7: 'host' has an invalid host name 'bad host!'", "bad host");
	BAD(keter("exec: ../app\nargs: --port\n"),
	    "config/keter.yaml:2:7: 'args' must be a list, not a string", "args not a list");
	BAD(keter("exec: ../app\nhots: x\n"), "config/keter.yaml:2:1: unknown key 'hots'",
	    "unknown flat key");
	BAD(keter("host: x.example.com\n"),
	    "config/keter.yaml:1:1: keter.yaml needs 'exec' or 'stanzas'", "nothing to run");
	BAD(keter("stanzas:\n  - type: webapp\n    hosts: [a.example.com]\n"),
	    "config/keter.yaml:2:5: 'webapp' needs 'exec'", "webapp without exec");
	BAD(keter("stanzas:\n  - type: redirect\n    hosts: [a]\n"),
	    "config/keter.yaml:2:11: stanza type 'redirect' is not supported",
	    "redirect stanza");
	BAD(keter("stanzas:\n  - type: mystery\n"),
	    "config/keter.yaml:2:11: unknown stanza type 'mystery'", "unknown stanza");
	BAD(keter("stanzas:\n  - exec: ../app\n"),
	    "config/keter.yaml:2:5: stanza needs a 'type'", "stanza without type");
	BAD(keter("stanzas:\n  - {type: webapp, exec: ../a}\n  - {type: webapp, exec: ../b}\n"),
	    "config/keter.yaml:3:5: only one webapp stanza is supported", "two webapps");
	BAD(keter("stanzas:\n  - type: static-files\n    root: ../../x\n"),
	    "config/keter.yaml:3:11: 'root' must be a folder inside the bundle (letters, digits, . _ - + /)",
	    "static root escaping");
	BAD(keter("stanzas:\n  - type: static-files\n    hosts: [a.b]\n"),
	    "config/keter.yaml:2:5: 'static-files' needs 'root'", "static without root");
	BAD(keter("stanzas: []\n"),
	    "config/keter.yaml:1:10: 'stanzas' has nothing to run or serve", "empty stanzas");
	BAD(keter("stanzas: []\nplugins: {mysql: true}\n"),
	    "config/keter.yaml:2:11: unknown plugin 'mysql'", "unknown plugin");
	BAD(keter("exec: ../a\nredirects: [{from: a, to: b}]\n"),
	    "config/keter.yaml:2:1: 'redirects' is not supported", "redirects");
}

static void test_release_yaml(void)
{
	const char *rel = "---\naddons: []\nconfig_vars:\n  LANG: en_US.UTF-8\n  PATH: /app/bin\n"
			  "default_process_types:\n  web: bin/start\n  worker: bin/work\n";

	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_parse_procfile(&m, "web: mine\n", 10, "Procfile") == 0, "Procfile first");
	strv_env_set(&m.env, "PATH", "/mine");
	ok(manifest_parse_release_yaml(&m, rel, strlen(rel)) == 0, "bin/release: %s",
	   error_last());
	ok(!strcmp(cmd("web"), "mine") && !strcmp(cmd("worker"), "bin/work"),
	   "Procfile wins, buildpack types fill in");
	ok(m.env.n == 2 && strv_env_find(&m.env, "LANG") >= 0 &&
	   !strcmp(m.env.v[strv_env_find(&m.env, "PATH")], "PATH=/mine"),
	   "config_vars fill in, app's own env wins");
	ok(manifest_parse_release_yaml(&m, "", 0) == 0, "empty output is fine");
	BAD(manifest_parse_release_yaml(&m, "default_process_types:\n  Web: x\n", 32),
	    "bin/release:2:3: invalid process type 'Web'", "bad type in bin/release");
	BAD(manifest_parse_release_yaml(&m, "default_process_types: [a]\n", 27),
	    "bin/release:1:24: 'default_process_types' must be a mapping, not a list",
	    "list of types");
}

static void test_load(void)
{
	char dir[] = "/tmp/berth-unit-manifest-XXXXXX", sub[300];

	if (!mkdtemp(dir))
		abort();
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_load(&m, dir) < 0 &&
	   !strcmp(error_last(), "no app.yaml, Procfile or config/keter.yaml in bundle"),
	   "empty folder: %s", error_last());

	snprintf(sub, sizeof(sub), "%s/config", dir);
	mkdir(sub, 0755);
	write_file(dir, "config/keter.yaml", "exec: ../app\n");
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_load(&m, dir) == 0 && !strcmp(m.source, "config/keter.yaml"),
	   "keter bundle: %s", error_last());
	snprintf(sub, sizeof(sub), "%s/app", dir);
	ok(m.nprocs == 1 && !strcmp(m.procs[0].argv.v[0], sub), "exec resolved in dir");

	write_file(dir, "Procfile", "web: ./procfile-web\nrelease: ./migrate\n");
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_load(&m, dir) == 0 && !strcmp(m.source, "Procfile") &&
	   !strcmp(cmd("web"), "./procfile-web"), "Procfile before keter.yaml");

	{
		/* a file over the limit: safefs's ERR_TOOBIG, said as such
		 * (never told by matching the wording of the error) */
		size_t big = 1024 * 1024 + 1;
		char *data = malloc(big + 1);

		if (!data)
			abort();
		memset(data, '#', big);
		data[big] = '\0';
		write_file(dir, "Procfile", data);
		free(data);
		manifest_release(&m);
		manifest_init(&m);
		ok(manifest_load(&m, dir) < 0 &&
		   !strcmp(error_last(), "'Procfile' is too large (over 1048576 bytes)"),
		   "a Procfile over 1 MiB: %s", error_last());
		write_file(dir, "Procfile", "web: ./procfile-web\nrelease: ./migrate\n");
	}

	write_file(dir, "app.yaml", "drain: 1s\n");
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_load(&m, dir) == 0 && !strcmp(m.source, "app.yaml") &&
	   m.drain_ms == 1000 && !strcmp(cmd("web"), "./procfile-web") &&
	   !strcmp(m.release_cmd, "./migrate"),
	   "app.yaml without processes reads the Procfile: %s", error_last());

	write_file(dir, "app.yaml", "processes: {web: ./yaml-web}\n");
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_load(&m, dir) == 0 && m.nprocs == 1 &&
	   !strcmp(cmd("web"), "./yaml-web") && !m.release_cmd,
	   "app.yaml processes win over the Procfile");

	write_file(dir, "app.yaml", "drain: 1s\n");
	write_file(dir, "Procfile", "# nothing\n");
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_load(&m, dir) < 0 &&
	   !strcmp(error_last(), "app.yaml: no processes to run (no 'processes', no Procfile, no 'static')"),
	   "nothing to run: %s", error_last());
	write_file(dir, "app.yaml", "static: public\n");
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_load(&m, dir) == 0 && !m.nprocs && !strcmp(m.static_root, "public"),
	   "a static-only app is fine: %s", error_last());
	snprintf(sub, sizeof(sub), "%s/app.yaml", dir);
	unlink(sub);
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_load(&m, dir) < 0 && !strcmp(error_last(), "Procfile: no processes to run"),
	   "empty Procfile: %s", error_last());

	write_file(dir, "app.yaml", "processes: {web: ./yaml-web}\nhosts: [a..b]\n");
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_load(&m, dir) < 0 &&
	   !strcmp(error_last(), "app.yaml:2:9: 'hosts' has an invalid host name 'a..b'"),
	   "load reports the file's error: %s", error_last());
	rm_rf(dir);
}

int main(void)
{
	manifest_init(&m);
	ok(proc_type_valid("web") && proc_type_valid("a_b-9") &&
	   !proc_type_valid("") && !proc_type_valid("Web") && !proc_type_valid("a.b") &&
	   !proc_type_valid(NULL), "proc_type_valid");
	ok(host_name_valid("example.com") && host_name_valid("*.example.com") &&
	   host_name_valid("localhost") && host_name_valid("a-b.c9") &&
	   host_name_valid("EXAMPLE.com"), "good hosts");
	ok(!host_name_valid("bad host!") && !host_name_valid("a..b") &&
	   !host_name_valid("") && !host_name_valid("*.") && !host_name_valid("a.*.b") &&
	   !host_name_valid("-a.b") && !host_name_valid("a-.b") && !host_name_valid("a.") &&
	   !host_name_valid(".a") && !host_name_valid("a;b") && !host_name_valid("a_b") &&
	   !host_name_valid("*") && !host_name_valid(NULL), "bad hosts");
	test_procfile();
	test_app_yaml();
	test_resources();
	test_keter();
	test_release_yaml();
	test_load();
	manifest_release(&m);
	return tap_done();
}
