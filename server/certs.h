/*
 * certs: HTTPS certificates of apps, owned by the engine (docs/https.md).
 *
 * Each app may have one certificate (its chain and key), kept in
 * ROOT/certs/APP/ (mode 0700: cert.pem, key.pem 0600, "source" acme or
 * manual, "auto" when ACME keeps it, "options" for https_redirect and
 * hsts, "error" the last ACME failure, acme.log the last ACME run).
 * nginx gets them without a reload: the engine writes the table
 * ROOT/nginx/certs that nginx loads at start and POSTs it to nginx's
 * control listener after every change (server/certs.lua picks the
 * certificate per TLS handshake from the server name).
 *
 * ACME: lego (Debian's package) runs as a child process, one at a time,
 * with an argv array (never a shell), for the app's hosts (APP.DOMAIN and
 * the hosts it claims; wildcards cannot use http-01 and are skipped).  Its
 * http-01 files land in ROOT/acme/.well-known/acme-challenge/, which
 * nginx serves for every host before routing.  A success installs the
 * certificate; a failure changes nothing (the app keeps what it had,
 * plain HTTP included) and leaves a one-line error in "certs APP",
 * "status" and the engine's log.  Auto certificates are renewed 30 days
 * before they expire (a third of the lifetime for certificates that live
 * 30 days or less), on a timer; with "acme: true" in berth.yaml every
 * app is auto.  Failed attempts of the timer back off (1 h doubling to
 * 24 h); certs:auto always tries at once.
 *
 * Every call runs in the engine's loop and blocks only for file writes:
 * the table goes to nginx in the router's queue (router_post(), after
 * the routing changes made before it), never waited for in the loop.
 * Commands that change the table (certs:add-staged, certs:remove,
 * certs:set, and an ACME certificate) answer their client once nginx
 * took it, or was not running (it loads the file when it starts); if
 * nginx refuses it or does not answer in ROUTER_TIMEOUT_MS, the client
 * gets that error (the files keep the change; the next push or nginx's
 * next start carries it).  certs:auto answers when lego is done.
 */
#ifndef BERTH_CERTS_H
#define BERTH_CERTS_H

#include <time.h>

struct certs;
struct engine;
struct client;
struct app;
struct backup_io;

/* Renew this long before a certificate expires. */
#define CERTS_RENEW_BEFORE_S (30L * 86400)

/*
 * When a certificate valid from not_before to not_after is due for
 * renewal: CERTS_RENEW_BEFORE_S before it expires, or, for a certificate
 * that lives that long or less (short-lived certificates), when a third of
 * its lifetime is left, so that it is not asked for again at every scan.
 * Pure; no I/O.
 */
time_t certs_renew_at(time_t not_before, time_t not_after);

/*
 * Write ROOT/nginx/certs from ROOT/certs (before nginx starts, so that
 * it loads them).  No timer yet.
 */
int certs_init(struct certs **out, struct engine *e);
/* The apps are loaded: start the renewal timer (the first look soon). */
void certs_start(struct certs *cs);
/* Stop lego if it runs (its clients get an error); free. */
void certs_free(struct certs *cs);

/* app is gone: its certificate goes with it (a new app of that name
 * must not inherit it).  cs may be NULL. */
void certs_app_removed(struct certs *cs, const char *app);

/*
 * apps:rename from to: certs_app_rename_check() before anything moves
 * (-1 while ACME runs for from, ERR_EXISTS when ROOT/certs/to is there;
 * error_last() says why); certs_app_rename() moves the folder (the
 * certificate, key, options and ACME state) and from's place in the
 * ACME queue and back-off, and serves the certificate under both names
 * until certs_app_rename_done(), called once the routing table has moved
 * the hosts: no handshake in between misses it.  cs may be NULL.
 */
int certs_app_rename_check(struct certs *cs, const char *from,
			   const char *to);
int certs_app_rename(struct certs *cs, const char *from, const char *to);
void certs_app_rename_done(struct certs *cs);

/* "certs APP", "certs:auto APP", "certs:remove APP",
 * "certs:set APP https_redirect|hsts VALUE",
 * "certs:add-staged APP DIR" (certs:add's engine side). */
void certs_cmd(struct engine *e, struct client *c, struct app *a, int argc,
	       char **argv);

/* "status": one line per certificate, "certificates: ..." first. */
void certs_status(struct engine *e, struct client *c);

/*
 * certs:add's client side (the local CLI or an SSH session): the
 * certificate and key from two files (local only) or from stdin (PEM
 * text holding both, or a tar of server.crt and server.key as Dokku
 * takes it), staged under ROOT/tmp and handed to the engine.  Exit
 * status as backup_command().
 */
int certs_add_command(const char *root, int argc, char **argv,
		      struct backup_io *io);

#endif
