/* privenv: the allow-listed environment of programs that run as root. */
#include <stdlib.h>
#include <string.h>

#include "privenv.h"
#include "runner.h"
#include "spawn.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

static const char *get(const struct strv *sv, const char *key)
{
	long i = strv_env_find(sv, key);

	return i < 0 ? NULL : strchr(sv->v[i], '=') + 1;
}

int main(void)
{
	char *from[] = {
		"LD_PRELOAD=/tmp/evil.so",
		"LD_LIBRARY_PATH=/tmp",
		"LD_AUDIT=/tmp/a.so",
		"GCONV_PATH=/tmp",
		"GLIBC_TUNABLES=glibc.malloc.check=3",
		"MALLOC_TRACE=/etc/passwd",
		"LOCPATH=/tmp",
		"NLSPATH=/tmp/%N",
		"HOSTALIASES=/tmp/h",
		"RES_OPTIONS=debug",
		"TMPDIR=/tmp/x",
		"TZDIR=/tmp",
		"BASH_ENV=/tmp/evil.sh",
		"ENV=/tmp/evil.sh",
		"SHELLOPTS=xtrace",
		"BASHOPTS=extdebug",
		"PS4=$(id>/tmp/pwned)",
		"IFS=/",
		"CDPATH=/tmp",
		"BASH_FUNC_ls%%=() { id; }",
		"PERL5OPT=-Mevil",
		"PERL5LIB=/tmp",
		"PYTHONPATH=/tmp",
		"PYTHONSTARTUP=/tmp/x.py",
		"NODE_OPTIONS=--require /tmp/x.js",
		"RUBYOPT=-r/tmp/x",
		"GIT_SSH_COMMAND=touch /tmp/pwned",
		"OPENSSL_CONF=/tmp/x.cnf",
		"PATH=/tmp/evil:/usr/bin",
		"HOME=/tmp/evil",
		"LANG=xx",
		"SHELL=/tmp/sh",
		"USER=alice",
		"DATABASE_URL=postgres://secret",
		"BERTH_EVIL=1",
		"berth_app=lower",
		"BERTH_APP=myapp",
		"BERTH_STEP=pre-build",
		"BERTH_COMMIT=0123abcd",
		"BERTH_PUSHER=alice",
		"BERTH_RELEASE=7",
		"BERTH_BUILD_DIR=/b",
		"BERTH_CACHE_DIR=/c",
		"SOURCE_VERSION=0123abcd",
		"STACK=berth",
		"BERTH_APP=second",
		"BERTH_PUSHER=a\nLD_PRELOAD=/tmp/evil.so",
		"NOEQUALS",
		NULL,
	};
	struct strv env = STRV_INIT;
	struct buf out = BUF_INIT;
	size_t i;
	int leaked = 0, r;
	char *argv[] = { "/usr/bin/env", NULL };

	ok(!privenv_name_allowed("LD_PRELOAD"), "LD_PRELOAD not allowed");
	ok(!privenv_name_allowed("BERTH_"), "no prefix rule");
	ok(!privenv_name_allowed("BERTH_APPX"), "exact names only");
	ok(privenv_name_allowed("BERTH_APP"), "BERTH_APP allowed");

	strv_push(&env, "STALE=1");
	privenv_build(&env, from);
	ok(!strcmp(get(&env, "PATH"), PRIVENV_PATH), "fixed PATH");
	ok(!strcmp(get(&env, "HOME"), "/root"), "fixed HOME");
	ok(!strcmp(get(&env, "LANG"), "C.UTF-8"), "fixed LANG");
	ok(!strcmp(get(&env, "SHELL"), "/bin/sh"), "fixed SHELL");
	ok(!strcmp(get(&env, "USER"), "root") &&
	   !strcmp(get(&env, "LOGNAME"), "root"), "USER and LOGNAME root");
	ok(!strcmp(get(&env, "BERTH_APP"), "second"), "later duplicate wins");
	ok(!strcmp(get(&env, "BERTH_PUSHER"), "alice"),
	   "value with a newline dropped, earlier one kept");
	ok(get(&env, "SOURCE_VERSION") && get(&env, "STACK") &&
	   get(&env, "BERTH_RELEASE") && get(&env, "BERTH_CACHE_DIR"),
	   "berth's own variables pass");
	ok(!get(&env, "STALE"), "out is released first");
	for (i = 0; i < env.n; i++) {
		const char *eq = strchr(env.v[i], '=');
		char *name = xstrndup(env.v[i], (size_t)(eq - env.v[i]));

		if (!privenv_name_allowed(name) && strcmp(name, "PATH") &&
		    strcmp(name, "HOME") && strcmp(name, "LANG") &&
		    strcmp(name, "SHELL") && strcmp(name, "USER") &&
		    strcmp(name, "LOGNAME"))
			leaked++;
		free(name);
	}
	ok(leaked == 0 && env.n == 15, "nothing else gets through (%zu vars)",
	   env.n);

	/* What a program really receives. */
	r = runner_capture(argv, env.v, NULL, &out, 65536, 10000);
	ok(r == 0, "env runs");
	ok(out.data && !strstr(out.data, "LD_PRELOAD") &&
	   !strstr(out.data, "LD_LIBRARY_PATH") && !strstr(out.data, "GCONV") &&
	   !strstr(out.data, "BASH_FUNC") && !strstr(out.data, "DATABASE_URL") &&
	   strstr(out.data, "BERTH_APP=second\n"),
	   "the child sees only the allow-list");

	privenv_build(&env, NULL);
	ok(env.n == 6, "no input: the fixed six");
	strv_release(&env);
	buf_release(&out);
	return tap_done();
}
