/* dashboard: one-time logins, sessions, revocation and the form parser. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

static int count_files(const char *root, const char *kind)
{
	char *path = xasprintf("%s/run/dashboard/%s", root, kind);
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	free(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

int main(void)
{
	char tmpl[] = "/tmp/berth-unit-dashboard.XXXXXX";
	char *root = mkdtemp(tmpl), *tok = NULL, *tok2 = NULL, *sid = NULL;
	char *sid2 = NULL, out[16];
	struct dashboard_session s, g;
	int n;

	ok(root != NULL, "a temporary root");
	ok(dashboard_login_new(root, "alice", 0, 0, &tok) == 0 &&
	   strlen(tok) == DASHBOARD_TOKEN_HEX, "a login token of 64 hex digits");
	ok(dashboard_login_new(root, "../x", 0, 0, &tok2) < 0 && !tok2,
	   "a key name that could reach a path is refused");
	ok(dashboard_login_new(root, "bob", 1, 0, &tok2) == 0,
	   "a second login");
	ok(count_files(root, "login") == 2, "stored as two files");
	ok(dashboard_login_claim(root, tok, 60000, &sid, &s) == 0 && sid &&
	   !strcmp(s.key, "alice") && !s.admin && strlen(s.csrf) == 64,
	   "the token buys a session for its key, with a CSRF token");
	ok(dashboard_login_claim(root, tok, 60000, &sid2, &g) == ERR_NOTFOUND &&
	   !sid2, "a token works once");
	ok(dashboard_login_claim(root, "zz", 60000, &sid2, &g) == ERR_NOTFOUND,
	   "a malformed token is unknown");
	ok(dashboard_session_get(root, sid, &g) == 0 && !strcmp(g.key, "alice")
	   && !strcmp(g.csrf, s.csrf), "the session is found by its cookie");
	ok(dashboard_session_get(root, tok, &g) == ERR_NOTFOUND,
	   "the login token is no session cookie");
	ok(dashboard_login_claim(root, tok2, 60000, &sid2, &g) == 0 && g.admin,
	   "bob's session is an admin's");
	ok(dashboard_revoke(root, "alice", &n) == 0 && n == 1,
	   "revoke ends alice's one session");
	ok(dashboard_session_get(root, sid, &g) == ERR_NOTFOUND,
	   "alice's session is gone");
	ok(dashboard_session_get(root, sid2, &g) == 0, "bob's is not");
	ok(dashboard_revoke(root, NULL, &n) == 0 && n == 1 &&
	   dashboard_session_get(root, sid2, &g) == ERR_NOTFOUND,
	   "revoke with no key ends every session");
	free(sid);
	free(sid2);
	sid = sid2 = NULL;
	free(tok);
	ok(dashboard_login_claim(root, tok2, 60000, &sid, &g) == ERR_NOTFOUND,
	   "a used token stays used after a revoke");
	free(tok2);
	ok(dashboard_login_new(root, "carol", 0, 0, &tok) == 0 &&
	   dashboard_login_claim(root, tok, 1, &sid, &g) == 0, "a short session");
	{
		int64_t until = now_ms() + 20;

		while (now_ms() < until)
			;
	}
	ok(dashboard_session_get(root, sid, &g) == ERR_NOTFOUND,
	   "an expired session is refused");
	ok(count_files(root, "sessions") == 0, "and deleted");
	free(tok);
	free(sid);

	ok(dashboard_form_get("a=1&csrf=ab%2Fc+d", 17, "csrf", out,
			      sizeof(out)) == 0 && !strcmp(out, "ab/c d"),
	   "form: a value decoded");
	ok(dashboard_form_get("csrfx=1&xcsrf=2", 15, "csrf", out,
			      sizeof(out)) == ERR_NOTFOUND, "form: whole names only");
	ok(dashboard_form_get("csrf=%zz", 8, "csrf", out, sizeof(out)) ==
	   ERR_INVALID, "form: a bad escape");
	ok(dashboard_form_get("csrf=%00", 8, "csrf", out, sizeof(out)) ==
	   ERR_INVALID, "form: no NUL in a value");
	ok(dashboard_form_get("csrf=%4", 7, "csrf", out, sizeof(out)) ==
	   ERR_INVALID, "form: a cut escape");
	ok(dashboard_form_get("csrf=0123456789abcdef", 21, "csrf", out,
			      sizeof(out)) == ERR_INVALID, "form: too long");
	ok(dashboard_form_get("csrf", 4, "csrf", out, sizeof(out)) == 0 &&
	   !out[0], "form: a name without a value is empty");
	rm_rf(root);
	return tap_done();
}
