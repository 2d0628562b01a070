/*
 * certs: see certs.h.  Why lego and why ssl_certificate_by_lua: see
 * docs/https.md.
 */
#include "certs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "app.h"
#include "appuser.h"
#include "backup.h"
#include "config.h"
#include "control.h"
#include "engine.h"
#include "log.h"
#include "loop.h"
#include "manifest.h"
#include "nginx.h"
#include "privsep.h"
#include "reaper.h"
#include "router.h"
#include "safefs.h"
#include "spawn.h"
#include "tlscert.h"
#include "util.h"
#include "banned.h"

#define CERTS_LEGO_TIMEOUT_MS (10L * 60 * 1000)
#define CERTS_FIRST_SCAN_MS 1000
#define CERTS_SCAN_MAX_S 3600L
#define CERTS_BACKOFF_MIN_S 3600L
#define CERTS_BACKOFF_MAX_S 86400L
#define CERTS_ERROR_MAX 400
#define CERTS_LOG_MAX (1024 * 1024)
#define CERTS_HSTS_DEFAULT 31536000L
#define CERTS_STDIN_MAX (1024 * 1024)
/* What the splitter hands back: tlscert_split() takes at most
 * TLSCERT_PEM_MAX and adds one newline per block of 20 bytes or more */
#define CERTS_SPLIT_MAX (2 * TLSCERT_PEM_MAX)
#define CERTS_PATH_ENV \
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct job {
	char *app;
	struct client *c;	/* certs:auto waiting, or NULL (the timer) */
	struct job *next;
};

/* A failed attempt of the timer: not again before next_try. */
struct backoff {
	char *app;
	time_t next_try;
	long delay;
	struct backoff *next;
};

struct certs;
typedef void (*push_fn)(struct certs *cs, int rc, void *arg);

struct certs {
	struct engine *e;
	char *dir;		/* ROOT/certs */
	char *lego;		/* ROOT/certs/.lego: lego's account and output */
	char *webroot;		/* ROOT/acme */
	char *table;		/* ROOT/nginx/certs */
	struct job *queue;
	struct job *running;
	pid_t pid;
	uint64_t kill_timer;
	uint64_t scan_timer;
	struct backoff *fails;
	struct pushing *pushing;	/* pushes nginx has not answered */
	int freeing;		/* certs_free() runs */
	/* apps:rename between certs_app_rename() and ..._done(): the
	 * certificate is in the table under both names */
	char *renamed_from, *renamed_to;
};

struct opts {
	int redirect;		/* https_redirect: default on */
	long hsts;		/* max-age, 0: off (the default) */
};

static char *app_file(const struct certs *cs, const char *app,
		      const char *name)
{
	return xasprintf("%s/%s/%s", cs->dir, app, name);
}

static int https_on(const struct certs *cs)
{
	return cs->e->nginx && nginx_https_addr(cs->e->nginx) != NULL;
}

static void read_opts(const struct certs *cs, const char *app,
		      struct opts *o)
{
	char *path = app_file(cs, app, "options");
	struct buf b = BUF_INIT;
	char *line, *save = NULL;

	o->redirect = 1;
	o->hsts = 0;
	if (read_file(&b, path, 4096) == 0 && b.len) {
		for (save = b.data, line = str_token(&save, "\n"); line;
		     line = str_token(&save, "\n")) {
			long v;

			if (sscanf(line, "https_redirect %ld", &v) == 1)
				o->redirect = v != 0;
			else if (sscanf(line, "hsts %ld", &v) == 1 && v >= 0)
				o->hsts = v;
		}
	}
	error_clear();
	buf_release(&b);
	free(path);
}

static int write_opts(const struct certs *cs, const char *app,
		      const struct opts *o)
{
	char *path = app_file(cs, app, "options");
	char text[64];
	int n = snprintf(text, sizeof(text), "https_redirect %d\nhsts %ld\n",
			 o->redirect, o->hsts);
	int ret = write_file_atomic(path, text, (size_t)n, 0600);

	free(path);
	return ret;
}

/* The app's certificate: 0 with info, ERR_NOTFOUND, or -1 (unusable). */
static int load_cert(const struct certs *cs, const char *app,
		     struct tlscert_info *info)
{
	char *cp = app_file(cs, app, "cert.pem");
	char *kp = app_file(cs, app, "key.pem");
	struct buf c = BUF_INIT, k = BUF_INIT;
	int ret;

	memset(info, 0, sizeof(*info));
	if (!path_exists(cp) || !path_exists(kp)) {
		ret = ERR_NOTFOUND;
		goto out;
	}
	if (read_file(&c, cp, TLSCERT_PEM_MAX) < 0 ||
	    read_file(&k, kp, TLSCERT_PEM_MAX) < 0) {
		ret = -1;
		goto out;
	}
	ret = tlscert_check(c.data, c.len, k.data, k.len, info) < 0 ? -1 : 0;
out:
	buf_release(&c);
	buf_release(&k);
	free(cp);
	free(kp);
	return ret;
}

static int has_file(const struct certs *cs, const char *app,
		    const char *name)
{
	char *p = app_file(cs, app, name);
	int ret = path_exists(p);

	free(p);
	return ret;
}

/* "acme" or "manual" */
static int is_acme(const struct certs *cs, const char *app)
{
	char *p = app_file(cs, app, "source");
	struct buf b = BUF_INIT;
	int ret = read_file(&b, p, 64) == 0 && !strncmp(b.data, "acme", 4);

	error_clear();
	buf_release(&b);
	free(p);
	return ret;
}

static int is_auto(const struct certs *cs, const char *app)
{
	return config_acme_all(cs->e->cfg) || has_file(cs, app, "auto");
}

static int name_covered(const struct strv *names, const char *host)
{
	const char *dot = strchr(host, '.');
	size_t i;

	for (i = 0; i < names->n; i++) {
		const char *n = names->v[i];

		if (!strcmp(n, host))
			return 1;
		if (dot && n[0] == '*' && !strcmp(n + 1, dot))
			return 1;
	}
	return 0;
}

/* The hosts ACME can ask for: the app's, wildcards left out. */
static int acme_hosts(const struct certs *cs, const char *app,
		      struct strv *out)
{
	struct strv all = STRV_INIT;
	size_t i;

	if (!cs->e->nginx ||
	    router_app_host_list(nginx_router(cs->e->nginx), app, &all) < 0) {
		strv_release(&all);
		error_set("app '%s' has no hosts yet", app);
		return ERR_NOTFOUND;
	}
	for (i = 0; i < all.n; i++)
		if (all.v[i][0] != '*' && all.v[i][0] != '-' &&
		    host_name_valid(all.v[i]))
			strv_push(out, all.v[i]);
	strv_release(&all);
	if (!out->n) {
		error_set("app '%s' has no host ACME can check (wildcards need dns-01)",
			  app);
		return ERR_NOTFOUND;
	}
	return 0;
}

/* --- the table nginx loads ------------------------------------------ */

/* PEM text as lines of the table (tlscert_check() parsed it: base64 and
 * BEGIN/END lines, none of them "key", "end" or "cert ..."). */
static void pem_lines(struct buf *out, const struct buf *pem)
{
	const char *line = pem->data, *end = pem->data + pem->len;

	while (line && line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);

		if (n && line[n - 1] == '\r')
			n--;
		/* base64 (lines of 4k characters) and the BEGIN/END lines */
		if (n && ((n >= 5 && !strncmp(line, "-----", 5)) ||
			  strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkl"
				 "mnopqrstuvwxyz0123456789+/=") == n)) {
			buf_add(out, line, n);
			buf_addstr(out, "\n");
		}
		line = nl ? nl + 1 : NULL;
	}
}

/* The line of app's certificate, named as (app itself, or its old name
 * while apps:rename moves its hosts). */
static void table_line(const struct certs *cs, const char *app,
		       const char *as, struct buf *out)
{
	struct tlscert_info info;
	struct buf c = BUF_INIT, k = BUF_INIT;
	struct opts o;
	struct stat st;
	char *cp, *kp = NULL;
	size_t i;

	if (load_cert(cs, app, &info) < 0) {
		if (!path_exists(cs->dir))
			return;
		error_clear();
		tlscert_info_release(&info);
		return;
	}
	if (!info.names.n) {
		tlscert_info_release(&info);
		return;
	}
	cp = app_file(cs, app, "cert.pem");
	if (stat(cp, &st) < 0) {
		free(cp);
		tlscert_info_release(&info);
		return;
	}
	free(cp);
	cp = NULL;
	read_opts(cs, app, &o);
	cp = app_file(cs, app, "cert.pem");
	kp = app_file(cs, app, "key.pem");
	if (read_file(&c, cp, TLSCERT_PEM_MAX) < 0 ||
	    read_file(&k, kp, TLSCERT_PEM_MAX) < 0) {
		error_clear();
		goto out;
	}
	/* a new file is a new inode and mtime: the worker parses it again */
	buf_addf(out, "cert %s %llu%09ld %d %ld", as,
		 (unsigned long long)st.st_ino, (long)st.st_mtim.tv_nsec,
		 o.redirect, o.hsts);
	for (i = 0; i < info.names.n; i++)
		buf_addf(out, " %s", info.names.v[i]);
	buf_addstr(out, "\n");
	pem_lines(out, &c);
	buf_addstr(out, "key\n");
	pem_lines(out, &k);
	buf_addstr(out, "end\n");
out:
	buf_release(&c);
	buf_release(&k);
	free(cp);
	free(kp);
	tlscert_info_release(&info);
}

/*
 * A push nginx has not answered yet: done(cs, rc, arg) once it did (rc 0,
 * or -1 with error_last()), or at certs_free() (-1, cs->freeing set).
 */
struct pushing {
	struct pushing *next;
	struct certs *cs;
	uint64_t wait;		/* router_post()'s, 0 while it runs */
	push_fn done;
	void *arg;
};

static void push_logged(struct certs *cs, int rc, void *arg)
{
	(void)cs;
	(void)arg;
	if (rc < 0)
		log_warnx("certs: %s", error_last());
}

static void pushing_unlink(struct certs *cs, struct pushing *p)
{
	struct pushing **pp;

	for (pp = &cs->pushing; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			return;
		}
}

static void pushed(void *arg, const struct router_done *res)
{
	struct pushing *p = arg;
	struct certs *cs = p->cs;
	int rc = 0;

	pushing_unlink(cs, p);
	if (!res->ok && res->status)
		rc = error_set("nginx refused the certificates (%d): %.*s",
			       res->status,
			       (int)strcspn(res->answer ? res->answer : "",
					    "\n"),
			       res->answer ? res->answer : "");
	else if (!res->ok)
		rc = error_set("%s", res->error ? res->error :
			       "nginx does not answer");
	p->done(cs, rc, p->arg);
	free(p);
}

/*
 * Write the table and hand it to nginx (if it runs), in the router's
 * queue after every routing change made so far: done (NULL: a failure
 * is logged) once nginx answered (200, or not running: it loads the
 * file when it starts), from the loop; without one, before this
 * returns.  -1 (done not called) if the file could not be written.
 */
static int push(struct certs *cs, push_fn done, void *arg)
{
	struct buf t = BUF_INIT;
	DIR *d;
	struct dirent *de;
	struct pushing *p;
	uint64_t id;
	int ret = -1;

	if (!done)
		done = push_logged;
	buf_addstr(&t, "# berth certificates: written by the engine, "
		   "loaded by nginx\n");
	d = opendir(cs->dir);
	while (d && (de = readdir(d)))
		if (app_name_valid(de->d_name))
			table_line(cs, de->d_name, de->d_name, &t);
	if (d)
		closedir(d);
	if (cs->renamed_from)
		table_line(cs, cs->renamed_to, cs->renamed_from, &t);
	/* it holds the keys: root's (nginx's master reads it at start) */
	if (write_file_atomic(cs->table, t.data, t.len, 0600) < 0)
		goto out;
	ret = 0;
	if (!cs->e->nginx) {
		done(cs, 0, arg);
		goto out;
	}
	p = xcalloc(1, sizeof(*p));
	p->cs = cs;
	p->done = done;
	p->arg = arg;
	p->next = cs->pushing;
	cs->pushing = p;
	/* without a loop, pushed() ran already and p is gone (id 0) */
	id = router_post(nginx_router(cs->e->nginx), "/certs", t.data, t.len,
			 pushed, p);
	if (id)
		p->wait = id;
out:
	buf_release(&t);
	return ret;
}

/* A command that answers once nginx has the table: its lines, then ok. */
struct push_answer {
	struct client *c;
	struct strv lines;
};

static void push_answered(struct certs *cs, int rc, void *arg)
{
	struct push_answer *pa = arg;
	size_t i;

	(void)cs;
	if (rc < 0) {
		client_error(pa->c, "%s", error_last());
	} else {
		for (i = 0; i < pa->lines.n; i++)
			client_data(pa->c, "%s", pa->lines.v[i]);
		client_ok(pa->c);
	}
	client_unref(pa->c);
	strv_release(&pa->lines);
	free(pa);
}

/* push(), then c gets lines (taken) and ok, or the error. */
static void push_and_answer(struct certs *cs, struct client *c,
			    struct strv *lines)
{
	struct push_answer *pa = xcalloc(1, sizeof(*pa));

	pa->c = c;
	pa->lines = *lines;
	*lines = (struct strv)STRV_INIT;
	client_ref(c);
	if (push(cs, push_answered, pa) < 0) {
		client_error(c, "%s", error_last());
		client_unref(c);
		strv_release(&pa->lines);
		free(pa);
	}
}

/* --- installing ----------------------------------------------------- */

static int install(struct certs *cs, const char *app, const char *chain,
		   size_t chain_len, const char *key, size_t key_len,
		   const char *source, struct tlscert_info *info)
{
	char *dir = xasprintf("%s/%s", cs->dir, app);
	char *cp = app_file(cs, app, "cert.pem");
	char *kp = app_file(cs, app, "key.pem");
	char *sp = app_file(cs, app, "source");
	char *ep = app_file(cs, app, "error");
	int ret = -1;

	if (tlscert_check(chain, chain_len, key, key_len, info) < 0) {
		ret = ERR_INVALID;
		goto out;
	}
	if (!info->names.n) {
		error_set("the certificate names no DNS host");
		ret = ERR_INVALID;
		goto out;
	}
	if (info->not_after <= time(NULL)) {
		char when[32];

		time_iso(when, sizeof(when), info->not_after);
		error_set("the certificate expired at %s", when);
		ret = ERR_INVALID;
		goto out;
	}
	if (mkdir_p(dir, 0700) < 0 ||
	    write_file_atomic(kp, key, key_len, 0600) < 0 ||
	    write_file_atomic(cp, chain, chain_len, 0644) < 0 ||
	    write_file_atomic(sp, source, strlen(source), 0600) < 0)
		goto out;
	unlink(ep);
	ret = 0;
out:
	free(dir);
	free(cp);
	free(kp);
	free(sp);
	free(ep);
	return ret;
}

/* --- ACME through lego ---------------------------------------------- */

static struct backoff *fail_find(struct certs *cs, const char *app)
{
	struct backoff *f;

	for (f = cs->fails; f; f = f->next)
		if (!strcmp(f->app, app))
			return f;
	return NULL;
}

static void fail_clear(struct certs *cs, const char *app)
{
	struct backoff **pp, *f;

	for (pp = &cs->fails; (f = *pp); pp = &f->next)
		if (!strcmp(f->app, app)) {
			*pp = f->next;
			free(f->app);
			free(f);
			return;
		}
}

static void fail_note(struct certs *cs, const char *app)
{
	struct backoff *f = fail_find(cs, app);

	if (!f) {
		f = xcalloc(1, sizeof(*f));
		f->app = xstrdup(app);
		f->next = cs->fails;
		cs->fails = f;
		f->delay = CERTS_BACKOFF_MIN_S;
	} else {
		f->delay = f->delay * 2 > CERTS_BACKOFF_MAX_S ?
			CERTS_BACKOFF_MAX_S : f->delay * 2;
	}
	f->next_try = time(NULL) + f->delay;
}

static int queued(const struct certs *cs, const char *app)
{
	const struct job *j;

	if (cs->running && !strcmp(cs->running->app, app))
		return 1;
	for (j = cs->queue; j; j = j->next)
		if (!strcmp(j->app, app))
			return 1;
	return 0;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	if (j->c)
		client_unref(j->c);
	free(j->app);
	free(j);
}

/*
 * lego's complaint as one line: the last "acme: error" line (the CA's
 * answer for a host), else its last line, without the time stamp lego
 * puts in front.
 */
static void lego_error(const char *log, int status, char *out, size_t len)
{
	const char *best = NULL, *last = NULL, *line = log;
	size_t blen = 0, llen = 0;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);

		if (memmem(line, n, "acme: error", 11)) {
			best = line;
			blen = n;
		}
		if (n && strspn(line, " \t\r") < n) {
			last = line;
			llen = n;
		}
		line = end ? end + 1 : NULL;
	}
	if (!best) {
		best = last;
		blen = llen;
	}
	if (!best) {
		char why[64];

		snprintf(out, len, "lego %s", spawn_describe_status(status,
				why, sizeof(why)));
		return;
	}
	/* "2026/11/30 05:20:00 " */
	if (blen > 20 && best[4] == '/' && best[7] == '/' && best[13] == ':') {
		best += 20;
		blen -= 20;
	}
	while (blen && (*best == ' ' || *best == '\t')) {
		best++;
		blen--;
	}
	if (blen >= len)
		blen = len - 1;
	memcpy(out, best, blen);
	out[blen] = '\0';
	for (line = out; *line; line++)
		if ((unsigned char)*line < 0x20)
			out[line - out] = ' ';
}

static void start_next(struct certs *cs);
static void schedule_scan(struct certs *cs, long ms);

static void job_done(struct certs *cs, struct job *j, int ok,
		     const char *msg, const struct tlscert_info *info)
{
	char when[32], due[32];

	if (ok) {
		fail_clear(cs, j->app);
		time_iso(when, sizeof(when), info->not_after);
		time_iso(due, sizeof(due),
			 certs_renew_at(info->not_before, info->not_after));
		log_info("certs: '%s' has a new certificate from %s, "
			 "expiring %s", j->app, info->issuer, when);
		if (j->c) {
			client_data(j->c, "-----> Certificate installed: %s",
				    info->issuer);
			client_data(j->c, "       expires %s; renewed from %s",
				    when, due);
			client_ok(j->c);
		}
	} else {
		char *ep = app_file(cs, j->app, "error");
		char *text;

		fail_note(cs, j->app);
		time_iso(when, sizeof(when), time(NULL));
		text = xasprintf("%s %s\n", when, msg);
		if (path_exists(cs->dir) && has_file(cs, j->app, "."))
			write_file_atomic(ep, text, strlen(text), 0600);
		free(text);
		free(ep);
		log_warnx("certs: ACME failed for '%s': %s", j->app, msg);
		if (j->c)
			client_error(j->c, "ACME failed for '%s' (it keeps "
				     "what it served): %s", j->app, msg);
	}
	job_free(j);
}

static void kill_lego(struct loop *l, void *arg)
{
	struct certs *cs = arg;

	cs->kill_timer = 0;
	if (cs->pid > 0) {
		log_warnx("certs: lego (pid %d) ran too long; killing it",
			  (int)cs->pid);
		kill(-cs->pid, SIGKILL);
	}
}

/* A certificate from lego, installed: its job ends once nginx has it. */
struct acme_push {
	struct job *j;
	struct tlscert_info info;
};

static void acme_pushed(struct certs *cs, int rc, void *arg)
{
	struct acme_push *ap = arg;
	char msg[CERTS_ERROR_MAX];

	if (rc < 0 && cs->freeing) {
		if (ap->j->c)
			client_error(ap->j->c, "%s", error_last());
		job_free(ap->j);
	} else {
		snprintf(msg, sizeof(msg), "%s", rc < 0 ? error_last() : "");
		job_done(cs, ap->j, rc == 0, msg, &ap->info);
	}
	tlscert_info_release(&ap->info);
	free(ap);
}

static void on_lego_exit(pid_t pid, int status, void *arg)
{
	struct certs *cs = arg;
	struct job *j = cs->running;
	struct tlscert_info info;
	struct buf log = BUF_INIT, c = BUF_INIT, k = BUF_INIT;
	char msg[CERTS_ERROR_MAX];
	char *lp = NULL, *cp = NULL, *kp = NULL;
	struct strv hosts = STRV_INIT;
	struct acme_push *ap;
	int ok = 0;

	memset(&info, 0, sizeof(info));
	if (pid != cs->pid || !j)
		return;
	cs->pid = -1;
	cs->running = NULL;
	if (cs->kill_timer) {
		loop_del_timer(cs->e->loop, cs->kill_timer);
		cs->kill_timer = 0;
	}
	lp = app_file(cs, j->app, "acme.log");
	if (read_file(&log, lp, CERTS_LOG_MAX) < 0)
		error_clear();
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		lego_error(log.data ? log.data : "", status, msg, sizeof(msg));
		goto done;
	}
	/* the app may have gone, or been given a certificate by hand */
	if (!app_find(cs->e, j->app) || !is_auto(cs, j->app)) {
		snprintf(msg, sizeof(msg), "the app's certificate changed "
			 "meanwhile; nothing installed");
		goto done;
	}
	if (acme_hosts(cs, j->app, &hosts) < 0) {
		snprintf(msg, sizeof(msg), "%s", error_last());
		goto done;
	}
	cp = xasprintf("%s/certificates/%s.crt", cs->lego, hosts.v[0]);
	kp = xasprintf("%s/certificates/%s.key", cs->lego, hosts.v[0]);
	if (read_file(&c, cp, TLSCERT_PEM_MAX) < 0 ||
	    read_file(&k, kp, TLSCERT_PEM_MAX) < 0 ||
	    install(cs, j->app, c.data, c.len, k.data, k.len, "acme",
		    &info) < 0) {
		snprintf(msg, sizeof(msg), "%s", error_last());
		goto done;
	}
	/* the job ends once nginx has the table (acme_pushed()) */
	ap = xcalloc(1, sizeof(*ap));
	ap->j = j;
	ap->info = info;
	memset(&info, 0, sizeof(info));
	j = NULL;
	if (push(cs, acme_pushed, ap) < 0) {
		snprintf(msg, sizeof(msg), "%s", error_last());
		j = ap->j;
		tlscert_info_release(&ap->info);
		free(ap);
	}
done:
	if (j)
		job_done(cs, j, ok, msg, &info);
	tlscert_info_release(&info);
	strv_release(&hosts);
	buf_release(&log);
	buf_release(&c);
	buf_release(&k);
	free(lp);
	free(cp);
	free(kp);
	start_next(cs);
	schedule_scan(cs, 0);
}

static int start_lego(struct certs *cs, struct job *j)
{
	const struct config *cfg = cs->e->cfg;
	struct strv argv = STRV_INIT, env = STRV_INIT, hosts = STRV_INIT;
	struct spawn s;
	char *lp = NULL, *dir = NULL;
	int fd = -1, ret = -1;
	size_t i;

	if (acme_hosts(cs, j->app, &hosts) < 0)
		goto out;
	dir = xasprintf("%s/%s", cs->dir, j->app);
	if (mkdir_p(dir, 0700) < 0 || mkdir_p(cs->lego, 0700) < 0)
		goto out;
	lp = app_file(cs, j->app, "acme.log");
	fd = open(lp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		error_setsys("cannot create '%s'", lp);
		goto out;
	}
	strv_push(&argv, "lego");
	strv_push(&argv, "--accept-tos");
	strv_pushf(&argv, "--email=%s", cfg->acme_email);
	strv_pushf(&argv, "--server=%s", cfg->acme_directory);
	strv_pushf(&argv, "--path=%s", cs->lego);
	strv_push(&argv, "--http");
	strv_pushf(&argv, "--http.webroot=%s", cs->webroot);
	strv_push(&argv, "--key-type=ec256");
	for (i = 0; i < hosts.n; i++)
		strv_pushf(&argv, "--domains=%s", hosts.v[i]);
	strv_push(&argv, "run");
	strv_push(&env, CERTS_PATH_ENV);
	strv_pushf(&env, "HOME=%s", cs->lego);
	if (cfg->acme_ca)
		strv_pushf(&env, "LEGO_CA_CERTIFICATES=%s", cfg->acme_ca);
	spawn_init(&s);
	s.argv = argv.v;
	s.envp = env.v;
	s.dir = cs->lego;
	s.out = fd;
	s.err = fd;
	s.flags = SPAWN_NEW_PGRP;
	if (spawn_start(&s) < 0) {
		error_set("cannot run lego (Debian: apt-get install lego): %s",
			  error_last());
		goto out;
	}
	cs->pid = s.pid;
	cs->running = j;
	reaper_watch(s.pid, on_lego_exit, cs);
	cs->kill_timer = loop_add_timer(cs->e->loop, CERTS_LEGO_TIMEOUT_MS,
					kill_lego, cs);
	log_info("certs: asking %s for a certificate of '%s' (%zu host%s)",
		 cfg->acme_directory, j->app, hosts.n,
		 hosts.n == 1 ? "" : "s");
	if (j->c) {
		struct buf h = BUF_INIT;

		for (i = 0; i < hosts.n; i++)
			buf_addf(&h, "%s%s", i ? ", " : "", hosts.v[i]);
		client_data(j->c, "-----> Asking %s for a certificate",
			    cfg->acme_directory);
		client_data(j->c, "       hosts: %s", h.data);
		buf_release(&h);
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	strv_release(&argv);
	strv_release(&env);
	strv_release(&hosts);
	free(lp);
	free(dir);
	return ret;
}

static void start_next(struct certs *cs)
{
	while (!cs->running && cs->queue) {
		struct job *j = cs->queue;

		cs->queue = j->next;
		j->next = NULL;
		if (start_lego(cs, j) < 0) {
			char msg[CERTS_ERROR_MAX];

			snprintf(msg, sizeof(msg), "%s", error_last());
			job_done(cs, j, 0, msg, NULL);
		}
	}
}

static void enqueue(struct certs *cs, const char *app, struct client *c)
{
	struct job *j = xcalloc(1, sizeof(*j)), **pp;

	j->app = xstrdup(app);
	if (c) {
		client_ref(c);
		j->c = c;
	}
	for (pp = &cs->queue; *pp; pp = &(*pp)->next)
		;
	*pp = j;
	start_next(cs);
}

/* --- the renewal timer ---------------------------------------------- */

time_t certs_renew_at(time_t not_before, time_t not_after)
{
	time_t life = not_after - not_before;

	if (life > 0 && life <= CERTS_RENEW_BEFORE_S)
		return not_after - life / 3;
	return not_after - CERTS_RENEW_BEFORE_S;
}

/* 1 if app (auto) needs a new certificate now; else *due when it will. */
static int needs_acme(struct certs *cs, const char *app, time_t *due)
{
	struct tlscert_info info;
	struct strv hosts = STRV_INIT;
	int rc = load_cert(cs, app, &info), need = 0;
	size_t i;

	*due = 0;
	if (rc < 0) {
		error_clear();
		need = 1;
		goto out;
	}
	if (!is_acme(cs, app)) {
		/* a certificate added by hand stays until certs:auto */
		if (has_file(cs, app, "auto")) {
			need = 1;
		} else {
			*due = time(NULL) + CERTS_SCAN_MAX_S;
		}
		goto out;
	}
	if (acme_hosts(cs, app, &hosts) < 0) {
		error_clear();
		*due = time(NULL) + CERTS_SCAN_MAX_S;
		goto out;
	}
	for (i = 0; i < hosts.n; i++)
		if (!name_covered(&info.names, hosts.v[i]))
			need = 1;
	*due = certs_renew_at(info.not_before, info.not_after);
	if (*due <= time(NULL))
		need = 1;
out:
	tlscert_info_release(&info);
	strv_release(&hosts);
	return need;
}

/* Certificates of apps that are gone. */
static void purge_removed(struct certs *cs)
{
	DIR *d = opendir(cs->dir);
	struct dirent *de;
	int changed = 0;

	while (d && (de = readdir(d))) {
		char *p;

		if (!app_name_valid(de->d_name) || app_find(cs->e, de->d_name) ||
		    queued(cs, de->d_name))
			continue;
		p = xasprintf("%s/%s", cs->dir, de->d_name);
		log_info("certs: removing the certificate of '%s' (the app "
			 "is gone)", de->d_name);
		rm_rf(p);
		free(p);
		changed = 1;
	}
	if (d)
		closedir(d);
	if (changed && push(cs, NULL, NULL) < 0)
		log_warnx("certs: %s", error_last());
}

static void scan(struct loop *l, void *arg)
{
	struct certs *cs = arg;
	struct app *a;
	time_t now = time(NULL);
	long next = CERTS_SCAN_MAX_S;

	cs->scan_timer = 0;
	purge_removed(cs);
	if (!https_on(cs) || !cs->e->cfg->acme_email)
		goto out;
	for (a = cs->e->apps; a; a = a->next) {
		struct backoff *f;
		time_t due;

		if (a->removing || !is_auto(cs, a->name) ||
		    queued(cs, a->name))
			continue;
		if (!needs_acme(cs, a->name, &due)) {
			if (due - now < next)
				next = (long)(due - now);
			continue;
		}
		f = fail_find(cs, a->name);
		if (f && f->next_try > now) {
			if (f->next_try - now < next)
				next = (long)(f->next_try - now);
			continue;
		}
		enqueue(cs, a->name, NULL);
	}
out:
	if (next < 1)
		next = 1;
	schedule_scan(cs, next * 1000);
}

static void schedule_scan(struct certs *cs, long ms)
{
	if (cs->scan_timer)
		loop_del_timer(cs->e->loop, cs->scan_timer);
	cs->scan_timer = loop_add_timer(cs->e->loop, ms, scan, cs);
}

/* --- life ------------------------------------------------------------- */

int certs_init(struct certs **out, struct engine *e)
{
	struct certs *cs = xcalloc(1, sizeof(*cs));

	*out = NULL;
	cs->e = e;
	cs->pid = -1;
	cs->dir = engine_path(e, "certs");
	cs->lego = engine_path(e, "certs/.lego");
	cs->webroot = engine_path(e, "acme");
	cs->table = engine_path(e, "nginx/certs");
	if (mkdir_p(cs->dir, 0700) < 0 || chmod(cs->dir, 0700) < 0) {
		error_setsys("cannot make '%s'", cs->dir);
		certs_free(cs);
		return -1;
	}
	/* nginx may not run yet: the file is what it will load */
	if (push(cs, NULL, NULL) < 0)
		log_warnx("certs: %s", error_last());
	*out = cs;
	return 0;
}

void certs_start(struct certs *cs)
{
	if (cs)
		schedule_scan(cs, CERTS_FIRST_SCAN_MS);
}

void certs_free(struct certs *cs)
{
	struct job *j;

	if (!cs)
		return;
	if (cs->scan_timer)
		loop_del_timer(cs->e->loop, cs->scan_timer);
	if (cs->kill_timer)
		loop_del_timer(cs->e->loop, cs->kill_timer);
	if (cs->pid > 0) {
		reaper_forget(cs->pid);
		kill(-cs->pid, SIGKILL);
		waitpid(cs->pid, NULL, 0);
	}
	/* pushes nginx did not answer: their callers hear it now */
	cs->freeing = 1;
	while (cs->pushing) {
		struct pushing *p = cs->pushing;

		cs->pushing = p->next;
		if (cs->e->nginx)
			router_wait_cancel(nginx_router(cs->e->nginx),
					   p->wait);
		error_set("the engine is stopping");
		p->done(cs, -1, p->arg);
		free(p);
	}
	if (cs->running) {
		if (cs->running->c)
			client_error(cs->running->c, "the engine is stopping");
		job_free(cs->running);
	}
	while ((j = cs->queue)) {
		cs->queue = j->next;
		if (j->c)
			client_error(j->c, "the engine is stopping");
		job_free(j);
	}
	while (cs->fails)
		fail_clear(cs, cs->fails->app);
	free(cs->renamed_from);
	free(cs->renamed_to);
	free(cs->dir);
	free(cs->lego);
	free(cs->webroot);
	free(cs->table);
	free(cs);
}

void certs_app_removed(struct certs *cs, const char *app)
{
	struct job **pp, *j;
	char *p;

	if (!cs || !app_name_valid(app))
		return;
	pp = &cs->queue;
	while ((j = *pp)) {
		if (strcmp(j->app, app)) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		if (j->c)
			client_error(j->c, "app '%s' was removed", app);
		job_free(j);
	}
	fail_clear(cs, app);
	p = xasprintf("%s/%s", cs->dir, app);
	if (!path_exists(p)) {
		free(p);
		return;
	}
	rm_rf(p);
	free(p);
	if (push(cs, NULL, NULL) < 0)
		log_warnx("certs: %s", error_last());
}

int certs_app_rename_check(struct certs *cs, const char *from,
			   const char *to)
{
	char *p;
	int r;

	if (!cs)
		return 0;
	if (cs->running && !strcmp(cs->running->app, from))
		return error_set("an ACME order for '%s' is running: rename it "
				 "when it is done (certs %s)", from, from);
	p = xasprintf("%s/%s", cs->dir, to);
	r = path_exists(p);
	if (r)
		error_set("'%s' is in the way of the new name", p);
	free(p);
	return r ? ERR_EXISTS : 0;
}

int certs_app_rename(struct certs *cs, const char *from, const char *to)
{
	struct backoff *f;
	struct job *j;
	char *src, *dst;
	int ret = 0;

	if (!cs)
		return 0;
	src = xasprintf("%s/%s", cs->dir, from);
	dst = xasprintf("%s/%s", cs->dir, to);
	if (path_exists(src) && rename(src, dst) < 0) {
		ret = error_setsys("cannot rename '%s'", src);
		goto out;
	}
	/* its place in the queue and its back-off follow */
	for (j = cs->queue; j; j = j->next)
		if (!strcmp(j->app, from)) {
			free(j->app);
			j->app = xstrdup(to);
		}
	for (f = cs->fails; f; f = f->next)
		if (!strcmp(f->app, from)) {
			free(f->app);
			f->app = xstrdup(to);
		}
	if (!path_exists(dst))
		goto out;
	free(cs->renamed_from);
	free(cs->renamed_to);
	cs->renamed_from = xstrdup(from);
	cs->renamed_to = xstrdup(to);
	if (push(cs, NULL, NULL) < 0)
		log_warnx("certs: %s", error_last());
out:
	free(src);
	free(dst);
	return ret;
}

void certs_app_rename_done(struct certs *cs)
{
	if (!cs || !cs->renamed_from)
		return;
	FREE_AND_NULL(cs->renamed_from);
	FREE_AND_NULL(cs->renamed_to);
	if (push(cs, NULL, NULL) < 0)
		log_warnx("certs: %s", error_last());
	/* its hosts changed: ACME may have a new name to ask for */
	schedule_scan(cs, CERTS_FIRST_SCAN_MS);
}

/* --- commands --------------------------------------------------------- */

static void show(struct certs *cs, struct client *c, const char *app)
{
	struct tlscert_info info;
	struct buf b = BUF_INIT;
	struct opts o;
	char when[32];
	char *ep;
	int rc = load_cert(cs, app, &info);
	size_t i;

	if (rc == ERR_NOTFOUND) {
		client_data(c, "%s: no certificate (plain HTTP only)", app);
	} else if (rc < 0) {
		client_data(c, "%s: unusable certificate: %s", app,
			    error_last());
	} else {
		long days = (long)((info.not_after - time(NULL)) / 86400);

		client_data(c, "%s: certificate %s", app, is_acme(cs, app) ?
			    "from ACME" : "added by hand");
		for (i = 0; i < info.names.n; i++)
			buf_addf(&b, "%s%s", i ? ", " : "", info.names.v[i]);
		client_data(c, "  hosts:   %s", b.data);
		client_data(c, "  issuer:  %s", info.issuer);
		time_iso(when, sizeof(when), info.not_after);
		client_data(c, "  expires: %s (%s%ld days)", when,
			    days < 0 ? "expired " : "in ", labs(days));
		/* the same for programs (the dashboard), typed */
		{
			struct buf f = BUF_INIT;
			char *exp = xasprintf("%s (%s%ld days)", when,
					      days < 0 ? "expired " : "in ",
					      labs(days));

			buf_addf(&f, "app=%s hosts=", app);
			control_field_encode(&f, b.data ? b.data : "");
			buf_addstr(&f, " issuer=");
			control_field_encode(&f, info.issuer);
			buf_addstr(&f, " expires=");
			control_field_encode(&f, exp);
			client_fields(c, "%s", f.data);
			free(exp);
			buf_release(&f);
		}
	}
	client_data(c, "  auto:    %s", is_auto(cs, app) ?
		    (config_acme_all(cs->e->cfg) ? "yes (acme: true)" :
		     "yes (renewed 30 days before expiry, or with a third "
		     "of a short lifetime left)") : "no");
	read_opts(cs, app, &o);
	client_data(c, "  https_redirect: %s", o.redirect ? "on" : "off");
	if (o.hsts)
		client_data(c, "  hsts:    max-age=%ld", o.hsts);
	else
		client_data(c, "  hsts:    off");
	ep = app_file(cs, app, "error");
	buf_reset(&b);
	if (read_file(&b, ep, 4096) == 0 && b.len) {
		b.data[strcspn(b.data, "\n")] = '\0';
		client_data(c, "  last ACME error: %s", b.data);
	}
	error_clear();
	if (queued(cs, app))
		client_data(c, "  ACME: asking now");
	free(ep);
	buf_release(&b);
	tlscert_info_release(&info);
}

static void cmd_auto(struct certs *cs, struct client *c, const char *app)
{
	const struct config *cfg = cs->e->cfg;
	struct strv hosts = STRV_INIT;
	char *p;

	if (!https_on(cs)) {
		client_error(c, "HTTPS is off: set https_listen (or acme_email, as root) in berth.yaml and restart berth");
		return;
	}
	if (!cfg->acme_email) {
		client_error(c, "set acme_email in berth.yaml first (the ACME account's contact) and restart berth");
		return;
	}
	if (acme_hosts(cs, app, &hosts) < 0) {
		client_error(c, "%s", error_last());
		return;
	}
	strv_release(&hosts);
	if (queued(cs, app)) {
		client_error(c, "a certificate for '%s' is being asked for already",
			     app);
		return;
	}
	p = xasprintf("%s/%s", cs->dir, app);
	if (mkdir_p(p, 0700) < 0) {
		free(p);
		client_error(c, "%s", error_last());
		return;
	}
	free(p);
	p = app_file(cs, app, "auto");
	if (write_file_atomic(p, "", 0, 0600) < 0) {
		free(p);
		client_error(c, "%s", error_last());
		return;
	}
	free(p);
	fail_clear(cs, app);
	enqueue(cs, app, c);
}

static void cmd_remove(struct certs *cs, struct client *c, const char *app)
{
	struct strv lines = STRV_INIT;
	char *p;

	if (!has_file(cs, app, "cert.pem") && !has_file(cs, app, "auto")) {
		client_error(c, "app '%s' has no certificate", app);
		return;
	}
	if (cs->running && !strcmp(cs->running->app, app)) {
		client_error(c, "a certificate for '%s' is being asked for: try again when it is done",
			     app);
		return;
	}
	p = xasprintf("%s/%s", cs->dir, app);
	rm_rf(p);
	free(p);
	fail_clear(cs, app);
	strv_pushf(&lines, "-----> Removed the certificate of '%s': it serves plain HTTP%s",
		   app, config_acme_all(cs->e->cfg) ?
		   " (acme: true in berth.yaml asks for a new one)" : "");
	push_and_answer(cs, c, &lines);
}

static int parse_switch(const char *v, long on, long *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "yes")) {
		*out = on;
		return 0;
	}
	if (!strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "no")) {
		*out = 0;
		return 0;
	}
	return -1;
}

static void cmd_set(struct certs *cs, struct client *c, const char *app,
		    const char *key, const char *value)
{
	struct opts o;
	struct strv lines = STRV_INIT;
	char *dir;
	long v;

	read_opts(cs, app, &o);
	if (!strcmp(key, "https_redirect")) {
		if (parse_switch(value, 1, &v) < 0) {
			client_error(c, "https_redirect must be true or false");
			return;
		}
		o.redirect = (int)v;
	} else if (!strcmp(key, "hsts")) {
		if (parse_switch(value, CERTS_HSTS_DEFAULT, &v) < 0) {
			v = parse_long(value, 2L * CERTS_HSTS_DEFAULT);
			if (v < 0) {
				client_error(c, "hsts must be true, false or a max-age in seconds (up to 2 years)");
				return;
			}
		}
		o.hsts = v;
	} else {
		client_error_code(c, CONTROL_ERR_USAGE,
				  "usage: certs:set APP https_redirect|hsts VALUE");
		return;
	}
	dir = xasprintf("%s/%s", cs->dir, app);
	if (mkdir_p(dir, 0700) < 0 || write_opts(cs, app, &o) < 0) {
		free(dir);
		client_error(c, "%s", error_last());
		return;
	}
	free(dir);
	strv_pushf(&lines, "-----> %s: https_redirect %s, hsts %s%ld", app,
		   o.redirect ? "on" : "off", o.hsts ? "max-age=" : "",
		   o.hsts);
	push_and_answer(cs, c, &lines);
}

/* Only folders that certs:add made: ROOT/tmp/certs.XXXXXX. */
static int staged_ok(const struct certs *cs, const char *dir)
{
	char *prefix = engine_path(cs->e, "tmp/certs.");
	size_t n = strlen(prefix);
	struct stat st;
	int ok = !strncmp(dir, prefix, n) && strlen(dir + n) == 6 &&
		 strspn(dir + n, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"abcdefghijklmnopqrstuvwxyz0123456789") == 6 &&
		 lstat(dir, &st) == 0 && S_ISDIR(st.st_mode);

	free(prefix);
	return ok;
}

static void cmd_add_staged(struct certs *cs, struct client *c,
			   const char *app, const char *dir)
{
	struct buf cb = BUF_INIT, kb = BUF_INIT;
	struct tlscert_info info;
	char *cp = NULL, *kp = NULL, *ap;
	char when[32];
	struct strv hosts = STRV_INIT, lines = STRV_INIT;
	size_t i;
	int rc;

	memset(&info, 0, sizeof(info));
	if (!staged_ok(cs, dir)) {
		client_error(c, "certs:add-staged takes only folders that certs:add made");
		return;
	}
	if (cs->running && !strcmp(cs->running->app, app)) {
		client_error(c, "a certificate for '%s' is being asked for: try again when it is done",
			     app);
		return;
	}
	cp = xasprintf("%s/cert.pem", dir);
	kp = xasprintf("%s/key.pem", dir);
	if (read_file(&cb, cp, TLSCERT_PEM_MAX) < 0 ||
	    read_file(&kb, kp, TLSCERT_PEM_MAX) < 0) {
		client_error(c, "%s", error_last());
		goto out;
	}
	rc = install(cs, app, cb.data, cb.len, kb.data, kb.len, "manual",
		     &info);
	if (rc < 0) {
		client_error(c, "%s", error_last());
		goto out;
	}
	/* a certificate by hand ends ACME for this app */
	ap = app_file(cs, app, "auto");
	unlink(ap);
	free(ap);
	fail_clear(cs, app);
	time_iso(when, sizeof(when), info.not_after);
	strv_pushf(&lines, "-----> Installed the certificate of '%s' (%s, expires %s)",
		   app, info.issuer, when);
	if (acme_hosts(cs, app, &hosts) == 0) {
		for (i = 0; i < hosts.n; i++)
			if (!name_covered(&info.names, hosts.v[i]))
				strv_pushf(&lines, "       warning: it does not name host '%s' (served there without it)",
					   hosts.v[i]);
	}
	error_clear();
	/* answered once nginx has it (or refused it) */
	push_and_answer(cs, c, &lines);
out:
	strv_release(&lines);
	strv_release(&hosts);
	tlscert_info_release(&info);
	buf_release(&cb);
	buf_release(&kb);
	free(cp);
	free(kp);
}

void certs_cmd(struct engine *e, struct client *c, struct app *a, int argc,
	       char **argv)
{
	struct certs *cs = e->certs;
	const char *cmd = argv[0];

	if (!cs) {
		client_error(c, "certificates are not available");
		return;
	}
	if (!strcmp(cmd, "certs") && argc == 2) {
		show(cs, c, a->name);
		client_ok(c);
	} else if (!strcmp(cmd, "certs:auto") && argc == 2) {
		cmd_auto(cs, c, a->name);
	} else if (!strcmp(cmd, "certs:remove") && argc == 2) {
		cmd_remove(cs, c, a->name);
	} else if (!strcmp(cmd, "certs:set") && argc == 4) {
		cmd_set(cs, c, a->name, argv[2], argv[3]);
	} else if (!strcmp(cmd, "certs:add-staged") && argc == 3) {
		cmd_add_staged(cs, c, a->name, argv[2]);
	} else {
		client_error_code(c, CONTROL_ERR_USAGE, "usage: %s APP", cmd);
	}
}

void certs_status(struct engine *e, struct client *c)
{
	struct certs *cs = e->certs;
	struct app *a;
	int n = 0;

	if (!cs || !https_on(cs)) {
		client_data(c, "certificates: none (HTTPS is off: https_listen)");
		return;
	}
	for (a = e->apps; a; a = a->next)
		if (has_file(cs, a->name, "cert.pem") ||
		    has_file(cs, a->name, "error"))
			n++;
	client_data(c, "certificates: %d (https %s)", n,
		    nginx_https_addr(e->nginx));
	for (a = e->apps; a; a = a->next) {
		struct tlscert_info info;
		struct buf err = BUF_INIT;
		char when[32];
		char *ep = app_file(cs, a->name, "error");
		int rc = load_cert(cs, a->name, &info);

		if (read_file(&err, ep, 4096) == 0 && err.len)
			err.data[strcspn(err.data, "\n")] = '\0';
		error_clear();
		if (rc == 0) {
			time_iso(when, sizeof(when), info.not_after);
			client_data(c, "  %s expires %s (%s, %s)%s%s", a->name,
				    when, is_acme(cs, a->name) ? "acme" :
				    "manual", info.issuer,
				    err.len ? "; last ACME error: " : "",
				    err.len ? err.data : "");
		} else if (err.len) {
			client_data(c, "  %s none; last ACME error: %s",
				    a->name, err.data);
		}
		error_clear();
		tlscert_info_release(&info);
		buf_release(&err);
		free(ep);
	}
}

/* --- certs:add, client side ------------------------------------------ */

/* Every regular file of a tar, one after the other (bounded). */
static int untar(const char *data, size_t len, struct buf *out)
{
	struct archive *ar = archive_read_new();
	struct archive_entry *ent;
	char chunk[8192];
	int r, ret = -1;

	archive_read_support_format_tar(ar);
	archive_read_support_format_gnutar(ar);
	archive_read_support_filter_gzip(ar);
	if (archive_read_open_memory(ar, data, len) != ARCHIVE_OK) {
		error_set("not PEM text nor a tar of the certificate and key");
		goto out;
	}
	while ((r = archive_read_next_header(ar, &ent)) == ARCHIVE_OK) {
		la_ssize_t n;

		if (archive_entry_filetype(ent) != AE_IFREG)
			continue;
		while ((n = archive_read_data(ar, chunk, sizeof(chunk))) > 0)
			if (buf_add(out, chunk, (size_t)n) < 0) {
				error_set("the tar holds too much");
				goto out;
			}
		if (n < 0)
			break;
		buf_addstr(out, "\n");
	}
	if (r != ARCHIVE_EOF) {
		error_set("not PEM text nor a tar of the certificate and key");
		goto out;
	}
	ret = 0;
out:
	archive_read_free(ar);
	return ret;
}

/*
 * PEM text, else a tar (Dokku's certs:add < cert-key.tar), split into the
 * certificates and the key; in may be replaced by the tar's files.  The
 * client's bytes: as root, parsed only in split_jailed()'s jail.
 */
static int split_input(struct buf *in, struct buf *chain, struct buf *key)
{
	struct buf flat;
	int ret = -1;

	buf_init(&flat, CERTS_STDIN_MAX);
	if (!in->len || !memmem(in->data, in->len, "-----BEGIN ", 11)) {
		if (untar(in->data ? in->data : "", in->len, &flat) < 0)
			goto out;
		buf_reset(in);
		if (buf_add(in, flat.data ? flat.data : "", flat.len) < 0) {
			error_set("the tar holds too much");
			goto out;
		}
	}
	if (tlscert_split(in->data ? in->data : "", in->len, chain, key) < 0)
		goto out;
	ret = 0;
out:
	buf_release(&flat);
	return ret;
}

/* In the jail, as berth-ssh: /in split into /cert.pem and /key.pem. */
static int split_jailed(void *arg)
{
	struct buf raw, c = BUF_INIT, k = BUF_INIT;
	int ret = -1;

	(void)arg;
	buf_init(&raw, CERTS_STDIN_MAX + 1);
	if (read_file(&raw, "/in", CERTS_STDIN_MAX + 1) == 0 &&
	    split_input(&raw, &c, &k) == 0 &&
	    write_file_atomic("/cert.pem", c.data, c.len, 0600) == 0 &&
	    write_file_atomic("/key.pem", k.data, k.len, 0600) == 0)
		ret = 0;
	buf_release(&raw);
	buf_release(&c);
	buf_release(&k);
	return ret;
}

/*
 * As root: split the client's bytes without parsing them as root.  They
 * are spooled unread to STAGE/u/in (STAGE/u is berth-ssh's, STAGE root's
 * 0700); split_jailed() untars and splits them in a jail there, as
 * berth-ssh (privsep_call_jailed()), and leaves cert.pem and key.pem;
 * root reads them back by descriptors (a link, a fifo, a device refused,
 * never followed; each at most CERTS_SPLIT_MAX) and removes STAGE/u.  0,
 * or -1 with error_last() (the splitter's own error when it failed, as
 * one line).
 */
static int split_unprivileged(const char *root, const char *stage,
			      const struct buf *in, struct buf *chain,
			      struct buf *key)
{
	char *top = xasprintf("%s/u", stage), *spool = NULL;
	int ufd = -1, ret = -1;
	struct appuser u;

	if (privsep_user(root, &u) < 0)
		goto out;
	if (mkdir(top, 0700) < 0 || chown(top, u.uid, u.gid) < 0) {
		error_setsys("cannot make a folder in '%s'", stage);
		goto out;
	}
	/* nothing of berth-ssh's runs yet: top is root's to write into */
	spool = xasprintf("%s/in", top);
	if (write_file_atomic(spool, in->data ? in->data : "", in->len,
			      0600) < 0)
		goto out;
	if (chown(spool, u.uid, u.gid) < 0) {
		error_setsys("cannot hand '%s' over", spool);
		goto out;
	}
	if (privsep_call_jailed(&u, top, split_jailed, NULL, "the splitter",
				"cannot start the splitter") < 0)
		goto out;
	ufd = safefs_open_top(top);
	if (ufd < 0 ||
	    safefs_read(chain, ufd, "cert.pem", CERTS_SPLIT_MAX) < 0 ||
	    safefs_read(key, ufd, "key.pem", CERTS_SPLIT_MAX) < 0)
		goto out;
	ret = 0;
out:
	if (ufd >= 0)
		close(ufd);
	rm_rf(top);
	free(spool);
	free(top);
	return ret;
}

static int relay(void *arg, enum control_kind kind, const char *text)
{
	struct backup_io *io = arg;

	if (kind == CONTROL_DATA) {
		io->write(io->ctx, text, strlen(text));
		io->write(io->ctx, "\n", 1);
	}
	return 0;
}

int certs_add_command(const char *root, int argc, char **argv,
		      struct backup_io *io)
{
	struct buf in, chain = BUF_INIT, key = BUF_INIT, flat;
	char *stage = NULL, *p = NULL, *err = NULL;
	char *req[4] = { "certs:add-staged", NULL, NULL, NULL };
	int ret = 1, r;

	buf_init(&in, CERTS_STDIN_MAX);
	buf_init(&flat, CERTS_STDIN_MAX);
	if (argc != 2 && argc != 4) {
		backup_say_error(io, "usage: certs:add APP CRT KEY (or the certificate and key on stdin: PEM, or a tar of server.crt and server.key)");
		ret = 100;
		goto out;
	}
	if (!app_name_valid(argv[1])) {
		backup_say_error(io, "invalid app name '%s'", argv[1]);
		goto out;
	}
	if (argc == 4) {
		if (!io->local) {
			backup_say_error(io, "certs:add over ssh reads stdin: ssh HOST certs:add %s < cert-and-key.pem (or < cert-key.tar)",
					 argv[1]);
			goto out;
		}
		if (read_file(&in, argv[2], CERTS_STDIN_MAX / 2) < 0 ||
		    buf_addstr(&in, "\n") < 0 ||
		    read_file(&flat, argv[3], CERTS_STDIN_MAX / 2) < 0) {
			backup_say_error(io, "%s", error_last());
			goto out;
		}
		buf_add(&in, flat.data, flat.len);
		buf_reset(&flat);
	} else {
		r = backup_read_all(io, &in);
		if (r == ERR_INVALID) {
			backup_say_error(io, "certs:add: the input is larger than 1 MiB");
			goto out;
		}
		if (r < 0) {
			backup_say_error(io, "certs:add: %s", error_last());
			goto out;
		}
		if (!in.len) {
			backup_say_error(io, "certs:add: nothing on stdin (give CRT KEY, or pipe PEM text or a tar of server.crt and server.key)");
			goto out;
		}
	}
	stage = xasprintf("%s/tmp/certs.XXXXXX", root);
	if (!mkdtemp(stage)) {
		backup_say_error(io, "cannot make a folder in '%s/tmp': %s",
				 root, strerror(errno));
		FREE_AND_NULL(stage);
		goto out;
	}
	/* as root, the input is untarred and split by berth-ssh in a jail */
	if (geteuid() == 0)
		r = split_unprivileged(root, stage, &in, &chain, &key);
	else
		r = split_input(&in, &chain, &key);
	/* OpenSSL's check stays root's: nginx's master loads them as root */
	if (r < 0 || tlscert_check(chain.data, chain.len, key.data, key.len,
				   NULL) < 0) {
		backup_say_error(io, "certs:add: %s", error_last());
		goto out;
	}
	p = xasprintf("%s/cert.pem", stage);
	r = write_file_atomic(p, chain.data, chain.len, 0600);
	free(p);
	p = xasprintf("%s/key.pem", stage);
	if (r < 0 || write_file_atomic(p, key.data, key.len, 0600) < 0) {
		backup_say_error(io, "%s", error_last());
		goto out;
	}
	req[1] = argv[1];
	req[2] = stage;
	r = control_call(root, 3, req, relay, io, &err);
	if (r < 0) {
		backup_say_error(io, "the server is not running (cannot reach the engine)");
		ret = 111;
	} else if (r > 0) {
		backup_say_error(io, "%s", err ? err : "failed");
	} else {
		ret = 0;
	}
out:
	if (stage)
		rm_rf(stage);
	free(stage);
	free(p);
	free(err);
	buf_release(&in);
	buf_release(&flat);
	buf_release(&chain);
	buf_release(&key);
	return ret;
}
