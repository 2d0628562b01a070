/*
 * dashboard: the web dashboard, in three parts.
 *
 * 1. Logins (engine side, for the "dashboard" command).  A login is a
 *    one-time token of 32 random bytes, written as a file named by its
 *    SHA-256 under ROOT/run/dashboard/login/ (0700) with the key it was
 *    made for and an expiry.  Opening the link trades the token for a
 *    session (the file is unlinked first: one use), kept the same way
 *    under ROOT/run/dashboard/sessions/.  run/ is wiped when the engine
 *    starts, so an engine restart ends every session.
 *
 * 2. The server (the "dashboard-serve" child).  GNU libmicrohttpd, one
 *    thread per connection, on a unix socket the engine binds and hands
 *    over; nginx proxies the dashboard host to it.  It never calls into
 *    the engine's code: app data and actions go through the provider's
 *    callbacks (in berth, the control socket: the same command table as
 *    SSH), and each request is checked against the session's key first.
 *
 * 3. Supervision (engine side): start the child, restart it if it dies.
 *
 * What a key may reach: what it reaches over SSH (access.h: the apps it
 * owns, those shared with it, every app for an admin key); a local
 * login (root at the host) reaches every app.  dashboard_may_reach()
 * decides.
 * Actions a session may run: restart, stop, start, scale, rollback, and
 * reading config values one by one.  Never keys, rm or deploy.
 */
#ifndef BERTH_DASHBOARD_H
#define BERTH_DASHBOARD_H

#include <stddef.h>
#include <stdint.h>

#include "control.h"
#include "util.h"

struct config;
struct loop;

#define DASHBOARD_SOCKET "run/dashboard.sock"	/* under the state directory */
#define DASHBOARD_DIR "run/dashboard"
#define DASHBOARD_LOGIN_TTL_MS (5 * 60 * 1000L)	/* a login link lives 5 min */
#define DASHBOARD_LOCAL_KEY "local"		/* "berth dashboard" as root */
#define DASHBOARD_TOKEN_HEX 64

/* --- logins and sessions (engine side and server side) --- */

/* The dashboard's host for cfg ("berth.DOMAIN" unless dashboard_host is
 * set), or NULL when dashboard_host is "off".  Fresh string. */
char *dashboard_host(const struct config *cfg);
/* The login link to print: "http://HOST[:PORT]/login?token=T". */
char *dashboard_login_url(const struct config *cfg, const char *token);

/*
 * Make a one-time login for key 'key' (admin: the key is an admin; local:
 * root at the host's CLI).  *token gets the token (hex, caller frees).
 * Expired logins and sessions are swept on the way.
 */
int dashboard_login_new(const char *root, const char *key, int admin,
			int local, char **token);
/*
 * End the sessions and unused logins of 'key' (NULL: of every key).
 * *count gets how many sessions ended.
 */
int dashboard_revoke(const char *root, const char *key, int *count);

/* One session, as read back. */
struct dashboard_session {
	char key[80];
	int admin;
	int local;
	int64_t expires_ms;	/* CLOCK_MONOTONIC (now_ms()): the stores
				 * live in run/, which no boot outlives */
	char csrf[DASHBOARD_TOKEN_HEX + 1];
};
/*
 * Trade a login token for a new session that lasts ttl_ms: *sid gets the
 * cookie value (caller frees).  ERR_NOTFOUND for an unknown, used or
 * expired token.
 */
int dashboard_login_claim(const char *root, const char *token, long ttl_ms,
			  char **sid, struct dashboard_session *out);
/* The session whose cookie value is sid; ERR_NOTFOUND if none or expired
 * (an expired one is deleted). */
int dashboard_session_get(const char *root, const char *sid,
			  struct dashboard_session *out);

/* May this session see and act on app 'name'? */
int dashboard_may_reach(const char *root, const struct dashboard_session *s,
			const char *name);

/*
 * Find 'key' in an application/x-www-form-urlencoded body (or a query
 * string) and decode its value into out (at most outlen - 1 bytes).
 * 0 when found, ERR_NOTFOUND when absent, ERR_INVALID when malformed or
 * too long.  Outside input: fuzzed (tests/fuzz/fuzz-dashform.c).
 */
int dashboard_form_get(const char *body, size_t len, const char *key,
		       char *out, size_t outlen);

/* --- the server --- */

struct dashboard_provider {
	void *ctx;
	/* Run one command to its end; fn gets each line.  As
	 * control_call_result(): 0 ok (res->fields), 1 an error
	 * (res->message, and res->code if it has one), -1 not reachable;
	 * the caller releases res, also on failure. */
	int (*call)(void *ctx, int argc, char *const *argv,
		    control_line_fn fn, void *arg,
		    struct control_result *res);
	/* Send one command and return a blocking fd to read its response
	 * from (control protocol), or -1.  The caller closes it. */
	int (*open)(void *ctx, int argc, char *const *argv);
	/* Does key still exist (not removed since login)?  1 yes, 0 no,
	 * -1 could not ask (the engine is not reachable). */
	int (*key_exists)(void *ctx, const char *key);
};

struct dashboard_opts {
	const struct config *cfg;
	int listen_fd;			/* bound, listening unix socket */
	const struct dashboard_provider *provider;
};

/* Serve until SIGTERM or SIGINT (blocked and waited for here).
 * Returns the exit code. */
int dashboard_serve(const struct dashboard_opts *o);

/* --- supervision (engine side) --- */

struct dashboard;
/*
 * Bind ROOT/run/dashboard.sock and start "SELF dashboard-serve" with it
 * as fd 3; restart it (at most once a second) when it exits.  *out is
 * NULL (and 0 returned) when the dashboard is off.
 */
int dashboard_start(struct dashboard **out, const struct config *cfg,
		    struct loop *l, const char *self_exe);
struct nginx;
/* Route the dashboard host to its socket in nginx (or remove the route
 * when the dashboard is off).  Before nginx_start(): no reload. */
int dashboard_route(struct nginx *ng, const struct config *cfg);
/* TERM the child, wait for it (at most 5 s, then KILL and wait) and
 * free d (NULL is fine).  At the engine's exit, after its loop ended. */
void dashboard_stop(struct dashboard *d);

#endif
