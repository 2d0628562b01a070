/* config: defaults, berth.yaml loading with every error reported, and
 * config_set() checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "isolate.h"
#include "manifest.h"
#include "util.h"
#include "tap.h"
#include "banned.h"

static char root[] = "/tmp/berth-unit-config-XXXXXX";

static int load(struct config *c, const char *yaml)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/berth.yaml", root);
	if (write_file_atomic(path, yaml, strlen(yaml), 0600) < 0)
		abort();
	config_release(c);
	config_init(c, root);
	return config_load(c);
}

/* Messages may span lines: show them as TAP comments when wrong. */
#define BAD(yaml, msg, what) do {					\
		int r_ = load(&c, yaml), good_ = r_ < 0 && !strcmp(error_last(), msg); \
		ok(good_, "%s", what);					\
		if (!good_)						\
			diag(r_ < 0 ? error_last() : "success");	\
	} while (0)

static void diag(const char *text)
{
	const char *p = text, *nl;

	while (*p) {
		nl = strchrnul(p, '\n');
		printf("# got: %.*s\n", (int)(nl - p), p);
		p = *nl ? nl + 1 : nl;
	}
}

int main(void)
{
	struct config c;
	struct buf show = BUF_INIT;
	char path[300];

	if (!mkdtemp(root))
		return 1;
	config_init(&c, root);
	ok(!strcmp(c.root, root), "root copied");
	ok(!strcmp(c.ssh_listen, "0.0.0.0:2222") && !strcmp(c.http_listen, "127.0.0.1:8080") &&
	   !strcmp(c.domain, "localhost") && c.port_min == 20000 && c.port_max == 29999 &&
	   c.drain_ms == 2000 && c.stop_timeout_ms == 10000 &&
	   c.health_timeout_ms == 60000 && c.health_interval_ms == 50 &&
	   c.settle_ms == 1000 && !c.deploy_branch && c.max_pack_bytes == 1073741824L &&
	   c.build_timeout_ms == 900000 && c.keep_releases == 10 &&
	   c.log_max_bytes == 10485760 && c.max_sessions == 32 && !strcmp(c.nginx, "own") &&
	   !c.nginx_conf_dir && !strcmp(c.nginx_bin, "nginx") && !c.postgres && !c.webhook &&
	   !c.run_user, "defaults");
	ok(config_load(&c) == 0 && c.port_min == 20000, "no berth.yaml is fine");
	/* resources: the default limits of every app process (issue #12) */
	ok(c.res_memory == 1073741824L && !c.res_cpu && c.res_processes == 512,
	   "resources: 1G of memory, no CPU limit, 512 processes by default");
	ok(load(&c, "resources:\n  memory: 256M\n  cpu: 0.5\n"
		"  processes: 100\n") == 0 && c.res_memory == 256L << 20 &&
	   c.res_cpu && !strcmp(c.res_cpu, "0.5") && c.res_processes == 100,
	   "resources: set in berth.yaml");
	{
		struct cgroup_limits lim;
		struct manifest mf;

		manifest_init(&mf);
		isolate_limits(&lim, &c, &mf);
		ok(lim.memory == 256UL << 20 && lim.cpu_millis == 500 &&
		   lim.processes == 100,
		   "an app.yaml without resources gets berth.yaml's");
		mf.res_memory = 64L << 20;
		mf.res_processes = 30;
		isolate_limits(&lim, &c, &mf);
		ok(lim.memory == 64UL << 20 && lim.cpu_millis == 500 &&
		   lim.processes == 30, "app.yaml's win where set");
		manifest_release(&mf);
	}
	ok(load(&c, "resources:\n  cpu: lots\n") < 0 &&
	   strstr(error_last(), "resources.cpu"), "a bad cpu refused: %s",
	   error_last());
	ok(load(&c, "resources:\n  memory: 0\n") == 0 && c.res_memory == 0,
	   "memory: 0 is no limit");
	config_release(&c);
	config_init(&c, root);

	ok(load(&c, "# nothing\n") == 0, "comment-only file");
	ok(load(&c,
		"ssh_listen: \"[::]:2022\"\n"
		"http_listen: 127.0.0.1:18080\n"
		"domain: apps.example.com\n"
		"ports: 30000-30099\n"
		"drain: 500ms\n"
		"stop_timeout: 3s\n"
		"health_timeout: 1m\n"
		"health_interval: 100ms\n"
		"settle: 0\n"
		"deploy_branch: release/v2\n"
		"max_pack_size: 200M\n"
		"build_timeout: 30m\n"
		"keep_releases: 3\n"
		"log_max_size: 1MiB\n"
		"max_sessions: 4\n"
		"nginx: system\n"
		"nginx_conf_dir: /etc/nginx/conf.d\n"
		"nginx_bin: /usr/sbin/nginx\n"
		"postgres: host=/run/postgresql user=postgres\n"
		"webhook: https://hooks.example.com/x\n"
		"user: berth\n") == 0, "every key: %s", error_last());
	ok(!strcmp(c.ssh_listen, "[::]:2022") && !strcmp(c.http_listen, "127.0.0.1:18080") &&
	   !strcmp(c.domain, "apps.example.com"), "listen and domain");
	ok(c.port_min == 30000 && c.port_max == 30099, "ports range");
	ok(c.drain_ms == 500 && c.stop_timeout_ms == 3000 && c.health_timeout_ms == 60000 &&
	   c.health_interval_ms == 100 && c.settle_ms == 0 && c.build_timeout_ms == 1800000,
	   "durations");
	ok(!strcmp(c.deploy_branch, "release/v2"), "deploy_branch");
	ok(c.max_pack_bytes == 200L * 1024 * 1024 && c.log_max_bytes == 1024 * 1024,
	   "sizes");
	ok(c.keep_releases == 3 && c.max_sessions == 4, "numbers");
	ok(!strcmp(c.nginx, "system") && !strcmp(c.nginx_conf_dir, "/etc/nginx/conf.d") &&
	   !strcmp(c.nginx_bin, "/usr/sbin/nginx"), "nginx");
	ok(!strcmp(c.postgres, "host=/run/postgresql user=postgres") &&
	   !strcmp(c.webhook, "https://hooks.example.com/x") && !strcmp(c.run_user, "berth"),
	   "postgres, webhook, user");
	config_show(&c, &show);
	ok(strstr(show.data, "ports: 30000-30099\n") && strstr(show.data, "drain: 500ms\n") &&
	   strstr(show.data, "domain: \"apps.example.com\"\n"), "config_show");
	buf_release(&show);

	ok(load(&c, "port_min: 21000\nport_max: 21010\nuser: ~\nwebhook:\n") == 0 &&
	   c.port_min == 21000 && c.port_max == 21010 && !c.run_user && !c.webhook,
	   "port_min/port_max and null for unset settings");

	BAD("domain: x\nfoo: 1\n", "berth.yaml:2:1: unknown key 'foo'", "unknown key");
	BAD("drain: soon\nports: 5-4\nfoo: 1\nmax_sessions: 0\n",
	    "berth.yaml:1:8: 'drain' must be a duration like 2s or 500ms\n"
	    "berth.yaml:2:8: 'ports' must be a range like 20000-29999 within 1024-65535\n"
	    "berth.yaml:3:1: unknown key 'foo'\n"
	    "berth.yaml:4:15: 'max_sessions' must be a number from 1 to 10000",
	    "all errors reported, one per line");
	BAD("a: 1\nb: 1\nc: 1\nd: 1\ne: 1\nf: 1\ng: 1\nh: 1\ni: 1\nj: 1\n",
	    "berth.yaml:1:1: unknown key 'a'\nberth.yaml:2:1: unknown key 'b'\n"
	    "berth.yaml:3:1: unknown key 'c'\nberth.yaml:4:1: unknown key 'd'\n"
	    "berth.yaml:5:1: unknown key 'e'\nberth.yaml:6:1: unknown key 'f'\n"
	    "berth.yaml:7:1: unknown key 'g'\nberth.yaml:8:1: unknown key 'h'\n"
	    "berth.yaml: and 2 more errors", "error list capped");
	BAD("domain: \"bad host!\"\n",
	    "berth.yaml:1:9: 'domain' must be a host name like example.com", "bad domain");
	BAD("ssh_listen: 2222\n",
	    "berth.yaml:1:13: 'ssh_listen' must be ADDRESS:PORT like 127.0.0.1:8080",
	    "listen without address");
	BAD("http_listen: 127.0.0.1:99999\n",
	    "berth.yaml:1:14: 'http_listen' must be ADDRESS:PORT like 127.0.0.1:8080",
	    "port too big");
	BAD("http_listen: 0\n",
	    "berth.yaml:1:14: 'http_listen' must be ADDRESS:PORT like 127.0.0.1:8080, or a port",
	    "port 0");
	ok(load(&c, "http_listen: 8081\n") == 0 && !strcmp(c.http_listen, "8081"),
	   "http_listen may be a bare port (nginx listens on all addresses)");
	BAD("http_listen: \"::1:80\"\n",
	    "berth.yaml:1:14: 'http_listen': write an IPv6 address in brackets, like [::1]:8080",
	    "bare IPv6");
	BAD("port_min: 80\n", "berth.yaml:1:11: 'port_min' must be a number from 1024 to 65535",
	    "privileged port");
	BAD("port_min: 25000\nport_max: 24000\n",
	    "berth.yaml: 'port_min' (25000) is above 'port_max' (24000)", "min above max");
	BAD("max_pack_size: lots\n", "berth.yaml:1:16: 'max_pack_size' must be a size like 10M",
	    "bad size");
	BAD("deploy_branch: ../x\n",
	    "berth.yaml:1:16: 'deploy_branch' must be a branch name like main", "bad branch");
	BAD("nginx: apache\n", "berth.yaml:1:8: 'nginx' must be own or system", "bad nginx");
	BAD("nginx: system\n", "berth.yaml: 'nginx: system' needs 'nginx_conf_dir'",
	    "system nginx without conf dir");
	BAD("nginx_conf_dir: conf.d\n",
	    "berth.yaml:1:17: 'nginx_conf_dir' must be an absolute path", "relative conf dir");
	BAD("nginx_conf_dir: \"/etc/nginx;x\"\n",
	    "berth.yaml:1:17: 'nginx_conf_dir' has a character that is not allowed (';')",
	    "conf dir with ;");
	BAD("webhook: hooks.example.com\n",
	    "berth.yaml:1:10: 'webhook' must be an http:// or https:// URL", "bad webhook");
	BAD("user: Root\n", "berth.yaml:1:7: 'user' must be a user name like berth", "bad user");
	BAD("domain:\n", "berth.yaml:1:8: 'domain' needs a value", "null domain");
	BAD("domain: [a, b]\n", "berth.yaml:1:9: 'domain' must be a single value, not a list",
	    "list value");
	BAD("- a\n", "berth.yaml:1:1: expected a mapping of settings", "top-level list");
	BAD("drain: 1s\ndrain: 2s\n", "berth.yaml:2:1: duplicate key 'drain'", "duplicate key");
	BAD("drain: [1s\n", "berth.yaml:2:1: did not find expected ',' or ']' while parsing a flow sequence",
	    "YAML syntax error");

	/* a failed load leaves the config as it was */
	ok(load(&c, "drain: 7s\n") == 0 && c.drain_ms == 7000, "drain 7s");
	snprintf(path, sizeof(path), "%s/berth.yaml", root);
	write_file_atomic(path, "drain: 9s\nfoo: 1\n", 17, 0600);
	ok(config_load(&c) < 0 && c.drain_ms == 7000, "failed load changes nothing");

	/* secrets */
	write_file_atomic(path, "postgres: host=db password=hunter2\n", 35, 0644);
	ok(config_load(&c) < 0 &&
	   !strcmp(error_last(), "berth.yaml:1:11: 'postgres' holds a password but berth.yaml is readable by others (chmod 600 it)"),
	   "password in a readable file refused: %s", error_last());
	chmod(path, 0600);
	ok(config_load(&c) == 0 && strstr(c.postgres, "hunter2"), "same file at 0600 loads");
	config_show(&c, &show);
	ok(!strstr(show.data, "hunter2"), "config_show hides the password");
	buf_release(&show);

	/* config_set, as used for command-line overrides */
	ok(config_set(&c, "http_listen", "127.0.0.1:9999") == 0 &&
	   !strcmp(c.http_listen, "127.0.0.1:9999"), "config_set");
	ok(config_set(&c, "domain", "a..b") < 0 &&
	   !strcmp(error_last(), "'domain' must be a host name like example.com"),
	   "config_set checks: %s", error_last());
	ok(config_set(&c, "nope", "1") < 0 && !strcmp(error_last(), "unknown setting 'nope'"),
	   "config_set unknown key");

	config_release(&c);
	rm_rf(root);
	return tap_done();
}
