/* appjson: the JSON reader, app.json into the manifest (Heroku's and
 * Dokku's keys, what is ignored, errors at line:col), ENV and .env files,
 * Piku's cron: types, formation, and manifest_load() putting them all
 * together under the app's own files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appjson.h"
#include "json.h"
#include "manifest.h"
#include "util.h"
#include "tap.h"
#include "banned.h"

static struct manifest m;

static int aj(const char *s)
{
	manifest_release(&m);
	manifest_init(&m);
	return appjson_parse(&m, s, strlen(s), "app.json");
}

#define BAD(call, msg, what) do {					\
		int r_ = (call);					\
		ok(r_ < 0 && !strcmp(error_last(), msg),		\
		   "%s: got '%s'", what, r_ < 0 ? error_last() : "success"); \
	} while (0)

static const char *env(const char *key)
{
	long i = strv_env_find(&m.env, key);

	return i < 0 ? "(unset)" : strchr(m.env.v[i], '=') + 1;
}

static int has(const struct strv *sv, const char *s)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], s))
			return 1;
	return 0;
}

static void test_json(void)
{
	struct jnode *n = NULL;
	const char *doc = "\xef\xbb\xbf{\"a\": [1, -2.5e1, true, false, null],"
			  " \"b\\u00e9\\ud83d\\ude00\": {\"c\": \"x\\ny\"}}";
	long v;

	ok(json_parse(&n, doc, strlen(doc), "f") == 0 && n &&
	   n->kind == JNODE_OBJECT && jnode_obj_len(n) == 2,
	   "an object with a BOM: %s", error_last());
	if (n) {
		const struct jnode *a = jnode_obj_get(n, "a");
		const struct jnode *b = jnode_obj_get(n, "b\xc3\xa9\xf0\x9f\x98\x80");

		ok(a && a->nkids == 5 && a->kids[1]->number == -25.0 &&
		   a->kids[2]->boolean == 1 && a->kids[4]->kind == JNODE_NULL,
		   "numbers, booleans, null");
		ok(b && !strcmp(jnode_obj_get(b, "c")->str, "x\ny"),
		   "escapes and surrogate pairs decode");
		ok(jnode_int(a->kids[0], 0, 10, &v) == 0 && v == 1 &&
		   jnode_int(a->kids[1], -100, 100, &v) < 0,
		   "jnode_int takes whole numbers only");
		ok(a->line == 1 && a->col == 7, "positions: %d:%d", a->line,
		   a->col);
	}
	jnode_free(n);
	n = NULL;
	BAD(json_parse(&n, "{\"a\": 1,}", 9, "f"),
	    "f:1:9: trailing comma in an object", "trailing comma");
	BAD(json_parse(&n, "{\"a\": 1, \"a\": 2}", 16, "f"),
	    "f:1:10: key 'a' appears twice (first at line 1)", "duplicate key");
	BAD(json_parse(&n, "{\n  'a': 1}", 11, "f"),
	    "f:2:3: expected a key in double quotes, found '''", "single quotes");
	BAD(json_parse(&n, "[01]", 4, "f"),
	    "f:1:3: numbers may not have leading zeros", "leading zero");
	BAD(json_parse(&n, "\"\\ud800\"", 8, "f"),
	    "f:1:2: lone high surrogate \\ud800", "lone surrogate");
	BAD(json_parse(&n, "\"a\xff\"", 4, "f"),
	    "f:1:3: invalid UTF-8 in a string", "bad UTF-8");
	BAD(json_parse(&n, "\"a\tb\"", 5, "f"),
	    "f:1:3: control character 0x09 in a string (write it as \\u0009)",
	    "raw tab");
	BAD(json_parse(&n, "{} x", 4, "f"),
	    "f:1:4: unexpected 'x' after the end of the document", "trailing");
	BAD(json_parse(&n, "  ", 2, "f"),
	    "f:1:3: empty file (expected a JSON object)", "empty");
	BAD(json_parse(&n, "{\"a\": tru}", 10, "f"),
	    "f:1:7: expected a value, found 't'", "bad word");
	{
		struct buf deep = BUF_INIT;
		int i;

		for (i = 0; i < 100; i++)
			buf_addstr(&deep, "[");
		BAD(json_parse(&n, deep.data, deep.len, "f"),
		    "f:1:65: nested deeper than 64 levels", "depth");
		buf_release(&deep);
	}
	ok(n == NULL, "nothing returned on errors");
}

static void test_dokku(void)
{
	const char *doc =
		"{\n"
		"  \"name\": \"sample\",\n"
		"  \"scripts\": {\n"
		"    \"dokku\": {\n"
		"      \"predeploy\": \"touch /app/predeploy.test\",\n"
		"      \"postdeploy\": \"curl -s https://example.com/done\"\n"
		"    },\n"
		"    \"postdeploy\": \"rake db:seed\"\n"
		"  },\n"
		"  \"healthchecks\": {\n"
		"    \"web\": [\n"
		"      {\"type\": \"startup\", \"name\": \"web check\",\n"
		"       \"description\": \"ready?\", \"path\": \"/health/ready\",\n"
		"       \"attempts\": 4, \"timeout\": 2, \"wait\": 1.5,\n"
		"       \"initialDelay\": 3, \"content\": \"ok\", \"port\": 5000},\n"
		"      {\"type\": \"liveness\", \"path\": \"/live\"}\n"
		"    ],\n"
		"    \"worker\": [{\"uptime\": 10}]\n"
		"  },\n"
		"  \"formation\": {\"web\": {\"quantity\": 2, \"max_parallel\": 1},\n"
		"                \"worker\": {\"quantity\": 0}},\n"
		"  \"cron\": [\n"
		"    {\"command\": \"echo hello\", \"schedule\": \"0 1 * * *\"},\n"
		"    {\"command\": \"./sweep\", \"schedule\": \"@hourly\",\n"
		"     \"maintenance\": true, \"concurrency_policy\": \"replace\"}\n"
		"  ]\n"
		"}\n";

	ok(aj(doc) == 0, "Dokku's app.json parses: %s", error_last());
	ok(m.predeploy_cmd && !strcmp(m.predeploy_cmd, "touch /app/predeploy.test") &&
	   m.postdeploy_cmd && !strcmp(m.postdeploy_cmd, "curl -s https://example.com/done") &&
	   m.first_deploy_cmd && !strcmp(m.first_deploy_cmd, "rake db:seed"),
	   "scripts: predeploy, postdeploy and Heroku's first-deploy one");
	ok(!strcmp(m.health_path, "/health/ready") && m.health_attempts == 4 &&
	   m.health_attempt_timeout_ms == 2000 && m.health_wait_ms == 1500 &&
	   m.health_initial_delay_ms == 3000 && m.health_content &&
	   !strcmp(m.health_content, "ok"), "the startup check's numbers");
	ok(m.health_timeout_ms == 3000 + 4 * (2000 + 1500),
	   "overall timeout from them: %ld", m.health_timeout_ms);
	ok(m.nformation == 2 && !strcmp(m.formation[0].type, "web") &&
	   m.formation[0].quantity == 2 && m.formation[1].quantity == 0,
	   "formation quantities");
	ok(m.ncrons == 2 && !strcmp(m.crons[0].schedule, "0 1 * * *") &&
	   !strcmp(m.crons[0].cmd, "echo hello") && !m.crons[0].paused &&
	   !m.crons[0].replace && m.crons[1].paused && m.crons[1].replace &&
	   !strcmp(m.crons[0].origin, "app.json cron[0]") &&
	   m.crons[1].expr.minutes == 1, "cron entries");
	ok(has(&m.ignored, "healthchecks.web[0].port") &&
	   has(&m.ignored, "healthchecks.web[1] (berth runs one check)") &&
	   has(&m.ignored, "healthchecks.worker") &&
	   has(&m.ignored, "formation.web.max_parallel") && m.ignored.n == 4,
	   "ignored: %zu, first '%s'", m.ignored.n,
	   m.ignored.n ? m.ignored.v[0] : "");
}

static void test_heroku(void)
{
	const char *doc =
		"{\"name\": \"Small Sharp Tool\", \"logo\": \"x.png\",\n"
		" \"repository\": \"https://example.com/x\",\n"
		" \"keywords\": [\"node\"],\n"
		" \"addons\": [\"heroku-postgresql\"], \"stack\": \"heroku-22\",\n"
		" \"env\": {\n"
		"   \"SECRET_TOKEN\": {\"description\": \"x\", \"generator\": \"secret\"},\n"
		"   \"WEB_CONCURRENCY\": {\"description\": \"n\", \"value\": \"5\"},\n"
		"   \"PLAIN\": \"text\", \"NUM\": 3, \"FLAG\": {\"value\": true},\n"
		"   \"OPTIONAL\": {\"required\": false},\n"
		"   \"NEEDED\": {\"description\": \"set me\"},\n"
		"   \"PORT\": \"9999\", \"LATER\": null\n"
		" },\n"
		" \"formation\": {\"web\": {\"quantity\": 1, \"size\": \"standard-1x\"}},\n"
		" \"scripts\": {\"postdeploy\": {\"command\": \"bin/seed\", \"size\": \"x\"},\n"
		"             \"pr-predestroy\": \"bin/clean\"},\n"
		" \"buildpacks\": [{\"url\": \"heroku/nodejs\"},\n"
		"                {\"url\": \"https://example.com/bp.git#v2\"}],\n"
		" \"environments\": {\"test\": {}}\n"
		"}";

	ok(aj(doc) == 0, "Heroku's app.json parses: %s", error_last());
	ok(!strcmp(env("WEB_CONCURRENCY"), "5") && !strcmp(env("PLAIN"), "text") &&
	   !strcmp(env("NUM"), "3") && !strcmp(env("FLAG"), "true") &&
	   !strcmp(env("PORT"), "(unset)") && !strcmp(env("LATER"), "(unset)"),
	   "env values: strings, numbers and booleans as written; PORT not");
	ok(has(&m.env_generate, "SECRET_TOKEN") && m.env_generate.n == 1 &&
	   has(&m.env_required, "NEEDED") && m.env_required.n == 1,
	   "generated and required variables");
	ok(m.first_deploy_cmd && !strcmp(m.first_deploy_cmd, "bin/seed"),
	   "scripts.postdeploy as an object");
	ok(m.buildpacks.n == 2 && !strcmp(m.buildpacks.v[0], "heroku/nodejs") &&
	   !strcmp(m.buildpacks.v[1], "https://example.com/bp.git#v2"),
	   "buildpacks");
	ok(has(&m.ignored, "addons") && has(&m.ignored, "stack") &&
	   has(&m.ignored, "environments") &&
	   has(&m.ignored, "formation.web.size") &&
	   has(&m.ignored, "scripts.postdeploy.size") &&
	   has(&m.ignored, "scripts.pr-predestroy") &&
	   has(&m.ignored, "env.PORT (berth sets it)") && m.ignored.n == 7 &&
	   !has(&m.ignored, "name") && !has(&m.ignored, "logo"),
	   "ignored: %zu", m.ignored.n);
	ok(aj("{}") == 0 && m.ignored.n == 0 && !m.ncrons &&
	   m.health_timeout_ms == -1 && !strcmp(m.health_path, "/"),
	   "an empty object: nothing");
	ok(aj("{\"healthchecks\": {\"web\": [{\"path\": \"/up\"}]}}") == 0 &&
	   !strcmp(m.health_path, "/up") && m.health_timeout_ms == -1 &&
	   m.health_attempts == -1, "a path alone keeps the server's timeout");
	ok(aj("{\"healthchecks\": {\"web\": [{\"uptime\": 5}, {\"path\": \"/b\"}]}}")
	   == 0 && !strcmp(m.health_path, "/b") &&
	   has(&m.ignored, "healthchecks.web[0] (no path)"),
	   "an uptime check is skipped for the next one with a path");
	ok(aj("{\"cron\": [{\"command\": \"x\", \"schedule\": \"@daily\", "
	      "\"concurrency_policy\": \"allow\"}]}") == 0 &&
	   has(&m.ignored, "cron[0].concurrency_policy: allow (a run still "
	       "going is never started again)"), "allow is said to be ignored");
}

static void test_errors(void)
{
	BAD(aj("[]"), "app.json:1:1: expected an object, not a list", "a list");
	BAD(aj("{\n \"formation\": {\"web\": {\"quantity\": 1.5}}}"),
	    "app.json:2:36: 'formation.web.quantity' must be a whole number "
	    "from 0 to 100", "fractional quantity");
	BAD(aj("{\"formation\": {\"web\": {\"quantity\": 101}}}"),
	    "app.json:1:36: 'formation.web.quantity' must be a whole number "
	    "from 0 to 100", "too many");
	BAD(aj("{\"formation\": {\"Web\": {\"quantity\": 1}}}"),
	    "app.json:1:16: 'formation' has an invalid process type 'Web' (use "
	    "a-z, 0-9, _ and -, at most 32)", "bad type");
	BAD(aj("{\"formation\": {\"web\": 1}}"),
	    "app.json:1:23: 'formation.web' must be an object, not a number",
	    "formation not an object");
	BAD(aj("{\"cron\": [{\"command\": \"x\", \"schedule\": \"61 * * * *\"}]}"),
	    "app.json:1:40: 'cron[0].schedule': minute '61' is out of range "
	    "(0-59)", "bad schedule");
	BAD(aj("{\"cron\": [{\"command\": \"x\"}]}"),
	    "app.json:1:11: 'cron[0]' needs a 'schedule'", "no schedule");
	BAD(aj("{\"cron\": [{\"command\": \" \", \"schedule\": \"@daily\"}]}"),
	    "app.json:1:23: 'cron[0].command' is an empty command", "empty command");
	BAD(aj("{\"cron\": {}}"), "app.json:1:10: 'cron' must be a list, not an "
	    "object", "cron not a list");
	BAD(aj("{\"scripts\": {\"dokku\": {\"predeploy\": 5}}}"),
	    "app.json:1:37: 'scripts.dokku.predeploy' must be a string, not a "
	    "number", "predeploy not a string");
	BAD(aj("{\"healthchecks\": {\"web\": [{\"path\": \"health\"}]}}"),
	    "app.json:1:36: 'healthchecks.web[0].path' must start with '/' and "
	    "have no spaces", "relative path");
	BAD(aj("{\"healthchecks\": {\"web\": [{\"path\": \"/\", \"timeout\": -1}]}}"),
	    "app.json:1:52: 'healthchecks.web[0].timeout' must be a number of "
	    "seconds from 0 to 3600", "negative timeout");
	BAD(aj("{\"healthchecks\": {\"web\": {}}}"),
	    "app.json:1:26: 'healthchecks.web' must be a list, not an object",
	    "checks not a list");
	BAD(aj("{\"env\": {\"1X\": \"a\"}}"),
	    "app.json:1:10: 'env' has an invalid variable name '1X'", "bad name");
	BAD(aj("{\"env\": {\"X\": [1]}}"),
	    "app.json:1:15: 'env.X' must be a string, not a list", "list value");
	BAD(aj("{\"env\": {\"X\": {\"required\": \"yes\"}}}"),
	    "app.json:1:28: 'env.X.required' must be true or false", "required");
	BAD(aj("{\"buildpacks\": [{\"url\": \"ftp://x/y\"}]}"),
	    "app.json:1:25: buildpack 'ftp://x/y' has an unsupported URL (use "
	    "https://, http://, git://, ssh:// or file://)", "bad buildpack");
	BAD(aj("{\"buildpacks\": [\"heroku/nodejs\"]}"),
	    "app.json:1:17: 'buildpacks[0]' must be an object, not a string",
	    "buildpack as a string");
	BAD(aj("{\"scripts\": {\"postdeploy\": {\"size\": \"x\"}}}"),
	    "app.json:1:28: 'scripts.postdeploy' needs a 'command'",
	    "postdeploy object without command");
}

static void test_env_file(void)
{
	struct strv skipped = STRV_INIT;
	const char *piku =
		"# variables are global and can be replaced\n"
		"SETTING1=True\n"
		"SETTING2=${SETTING1}/Maybe\n"
		"\n"
		"PORT=9080\r\n"
		"  BIND_ADDRESS = 0.0.0.0  \n"
		"URL=http://x/#frag # a comment\n"
		"export QUOTED=\"a \\\"b\\\" $SETTING1\\n\"\n"
		"SINGLE='$SETTING1 # kept'\n"
		"UNKNOWN=$NOPE and ${NOPE2} and $\n"
		"APP=from-file\n";

	manifest_release(&m);
	manifest_init(&m);
	strv_env_set(&m.env, "APP", "from-app-yaml");
	ok(manifest_parse_env_file(&m, piku, strlen(piku), "ENV", &skipped) == 0,
	   "Piku's ENV parses: %s", error_last());
	ok(!strcmp(env("SETTING2"), "True/Maybe") &&
	   !strcmp(env("BIND_ADDRESS"), "0.0.0.0") &&
	   !strcmp(env("URL"), "http://x/#frag") &&
	   !strcmp(env("QUOTED"), "a \"b\" True\n") &&
	   !strcmp(env("SINGLE"), "$SETTING1 # kept") &&
	   !strcmp(env("UNKNOWN"), "$NOPE and ${NOPE2} and $"),
	   "values: '%s' '%s' '%s'", env("SETTING2"), env("URL"),
	   env("UNKNOWN"));
	ok(!strcmp(env("APP"), "from-app-yaml"), "what the app set wins");
	ok(!strcmp(env("PORT"), "(unset)") && skipped.n == 1 &&
	   !strcmp(skipped.v[0], "ENV: PORT"), "PORT is berth's: skipped");
	strv_release(&skipped);
	BAD(manifest_parse_env_file(&m, "A=1\nnot a setting\n", 18, "ENV", NULL),
	    "ENV:2:1: expected NAME=value", "no '='");
	BAD(manifest_parse_env_file(&m, "  1A=x\n", 7, ".env", NULL),
	    ".env:1:3: invalid variable name '1A'", "bad name");
	BAD(manifest_parse_env_file(&m, "A=\"open\n", 8, ".env", NULL),
	    ".env:1:3: quote is not closed", "open quote");
}

static void test_crons_formation(void)
{
	const char *pf =
		"web: ./server\n"
		"cron: */5 * * * * python3 batch.py   # every five minutes\n"
		"cron2: @daily ./cleanup\n"
		"cronometer: ./measure --forever\n"
		"worker: ./work\n";

	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_parse_procfile(&m, pf, strlen(pf), "Procfile") == 0 &&
	   manifest_take_crons(&m, "Procfile") == 0, "Piku crons: %s",
	   error_last());
	ok(m.nprocs == 3 && manifest_proc(&m, "web") &&
	   manifest_proc(&m, "cronometer") && manifest_proc(&m, "worker") &&
	   !manifest_proc(&m, "cron"), "cron types left the processes");
	ok(m.ncrons == 2 && !strcmp(m.crons[0].schedule, "*/5 * * * *") &&
	   !strcmp(m.crons[0].cmd, "python3 batch.py") &&
	   !strcmp(m.crons[0].origin, "Procfile 'cron'") &&
	   !strcmp(m.crons[1].schedule, "@daily"), "cron entries: '%s' '%s'",
	   m.ncrons ? m.crons[0].schedule : "", m.ncrons ? m.crons[0].cmd : "");
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_parse_procfile(&m, "cron: */5 * * * python3 x.py\n", 29,
				   "Procfile") == 0, "a bad schedule parses as a command");
	BAD(manifest_take_crons(&m, "Procfile"),
	    "Procfile: process type 'cron': day of week 'python3' is not a "
	    "number or a name", "and is refused as a cron entry");
}

static void put(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *slash = strrchr(path, '/');

	*slash = '\0';
	mkdir_p(path, 0755);
	*slash = '/';
	if (write_file_atomic(path, text, strlen(text), 0644) < 0)
		abort();
	free(path);
}

static void test_load(void)
{
	char tmpl[] = "/tmp/berth-appjson-XXXXXX";
	char *dir = mkdtemp(tmpl), *d2;
	const struct proc_spec *p;

	if (!dir)
		abort();
	put(dir, "Procfile", "web: ./server\nworker: ./work\nclock: ./clock\n"
	    "cron: 0 * * * * ./hourly\n");
	put(dir, "app.json", "{\"env\": {\"A\": \"json\", \"B\": \"json\"},"
	    " \"formation\": {\"worker\": {\"quantity\": 3}, \"ghost\": {\"quantity\": 1}},"
	    " \"healthchecks\": {\"web\": [{\"path\": \"/json\", \"attempts\": 2}]},"
	    " \"cron\": [{\"command\": \"./nightly\", \"schedule\": \"@daily\"}],"
	    " \"scripts\": {\"dokku\": {\"predeploy\": \"./pre\"}}}");
	put(dir, "ENV", "B=env\nC=env\nD=env\n");
	put(dir, ".env", "D=dotenv\nE=dotenv\n");
	put(dir, MANIFEST_BUILDPACK_CONFIG,
	    "config_vars:\n  E: pack\n  F: pack\n  PORT: '1'\n");
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_load(&m, dir) == 0, "Procfile, app.json, ENV, config: %s",
	   error_last());
	ok(!strcmp(env("A"), "json") && !strcmp(env("B"), "json") &&
	   !strcmp(env("C"), "env") && !strcmp(env("D"), "env") &&
	   !strcmp(env("E"), "pack") && !strcmp(env("F"), "pack") &&
	   !strcmp(env("PORT"), "(unset)"),
	   "defaults in order: app.json, ENV, buildpacks (.env not asked)");
	p = manifest_proc(&m, "worker");
	ok(p && p->scale == 3 && p->scale_set, "formation sets worker's scale");
	p = manifest_proc(&m, "clock");
	ok(p && p->scale == 0 && !p->scale_set,
	   "clock starts at 0: beside web, Procfile types wait to be scaled");
	p = manifest_proc(&m, "web");
	ok(p && p->scale == 1 && !p->scale_set, "web starts once");
	ok(m.ncrons == 2 && !strcmp(m.crons[0].cmd, "./hourly") &&
	   !strcmp(m.crons[1].cmd, "./nightly"), "crons from both");
	ok(!strcmp(m.health_path, "/json") && m.health_attempts == 2 &&
	   m.predeploy_cmd && !strcmp(m.predeploy_cmd, "./pre"),
	   "health check and predeploy from app.json");

	d2 = xasprintf("%s/with-yaml", dir);
	put(d2, "app.yaml", "dotenv: true\nhealthcheck: /yaml\nenv: {A: yaml}\n"
	    "processes:\n  web: ./server\n  worker: {command: ./w, scale: 0}\n");
	put(d2, "app.json", "{\"env\": {\"A\": \"json\"}, \"formation\": "
	    "{\"worker\": {\"quantity\": 2}, \"web\": {\"quantity\": 4}},"
	    " \"healthchecks\": {\"web\": [{\"path\": \"/json\"}]}}");
	put(d2, ".env", "E=dotenv\n");
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_load(&m, d2) == 0, "app.yaml with app.json: %s", error_last());
	ok(!strcmp(env("A"), "yaml") && !strcmp(env("E"), "dotenv") &&
	   !strcmp(m.health_path, "/yaml"), "app.yaml wins; .env when asked");
	p = manifest_proc(&m, "worker");
	ok(p && p->scale == 0 && p->scale_set, "app.yaml's scale wins");
	p = manifest_proc(&m, "web");
	ok(p && p->scale == 4 && p->scale_set, "formation for web");
	put(d2, "app.json", "{\"formation\": {\"web\": {\"quantity\": \"1\"}}}");
	manifest_release(&m);
	manifest_init(&m);
	BAD(manifest_load(&m, d2), "app.json:1:36: 'formation.web.quantity' "
	    "must be a whole number from 0 to 100", "a bad app.json fails the load");
	free(d2);

	d2 = xasprintf("%s/cron-only", dir);
	put(d2, "Procfile", "cron: @hourly ./tick\n");
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_load(&m, d2) == 0 && m.nprocs == 0 && m.ncrons == 1,
	   "a cron-only app loads: %s", error_last());
	free(d2);
	rm_rf(dir);
}

static void test_app_yaml_keys(void)
{
	const char *scaled = "processes:\n  web: ./s\n  w: {command: ./w, scale: 2}\n";
	const char *keter = "stanzas:\n  - {type: background, exec: ../w}\n";

	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_parse_app_yaml(&m, "buildpacks: [node, 'https://x/y.git#main']\n"
				   "dotenv: yes\n", 55, "app.yaml") == 0 &&
	   m.buildpacks.n == 2 && m.dotenv == 1, "buildpacks and dotenv: %s",
	   error_last());
	manifest_release(&m);
	manifest_init(&m);
	BAD(manifest_parse_app_yaml(&m, "buildpack: node\nbuildpacks: [python]\n",
				    37, "app.yaml"),
	    "app.yaml:2:1: use 'buildpack' or 'buildpacks', not both", "both");
	manifest_release(&m);
	manifest_init(&m);
	BAD(manifest_parse_app_yaml(&m, "buildpacks: [Node]\n", 19, "app.yaml"),
	    "app.yaml:1:14: buildpack 'Node' is not a name ([a-z0-9-]), an "
	    "absolute path or a git URL", "bad name");
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_parse_app_yaml(&m, scaled, strlen(scaled), "app.yaml") == 0 &&
	   !manifest_proc(&m, "web")->scale_set &&
	   manifest_proc(&m, "w")->scale_set && manifest_proc(&m, "w")->scale == 2,
	   "scale_set only where app.yaml gives a scale: %s", error_last());
	manifest_release(&m);
	manifest_init(&m);
	ok(manifest_parse_keter(&m, keter, strlen(keter), "config/keter.yaml",
				"/rel") == 0 &&
	   manifest_proc(&m, "background1") &&
	   manifest_proc(&m, "background1")->scale_set,
	   "Keter's stanzas always run: %s", error_last());
	manifest_release(&m);
	manifest_init(&m);
	BAD(manifest_parse_app_yaml(&m, "env:\n  PORT: 80\n", 16, "app.yaml"),
	    "app.yaml:2:3: 'env' cannot set PORT (berth sets it for each "
	    "process)", "PORT in env");
}

int main(void)
{
	manifest_init(&m);
	test_json();
	test_dokku();
	test_heroku();
	test_errors();
	test_env_file();
	test_crons_formation();
	test_load();
	test_app_yaml_keys();
	manifest_release(&m);
	return tap_done();
}
