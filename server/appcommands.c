/* appcommands: see appcommands.h. */
#include "appcommands.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "access.h"
#include "applife.h"
#include "deploy.h"
#include "deployout.h"
#include "engine.h"
#include "isolate.h"
#include "liveroute.h"
#include "log.h"
#include "logger.h"
#include "loop.h"
#include "postgres.h"
#include "release.h"
#include "releases.h"
#include "runner.h"
#include "runs.h"
#include "banned.h"

static void run_stopped_exit(struct proc *p, void *arg)
{
	cron_run_exited(p, "stopped: its client hung up");
}

/* The client of an attached run went away: so does the run. */
static void run_client_gone(struct client *c, void *arg)
{
	struct proc *p = arg;

	p->client = NULL;
	client_unref(c);
	if (p->state == PROC_STARTING) {
		/* it waited for its app's user: it never runs now */
		cron_run_exited(p, NULL);
		return;
	}
	if (p->pid <= 0)
		return;
	p->on_exit = run_stopped_exit;
	p->on_exit_arg = NULL;
	proc_stop(p, p->app->eng->cfg->stop_timeout_ms);
}

void app_cmd_run(struct app *a, const char *cmd, int detached,
		 const char *term, struct client *c)
{
	struct run *r = a->live;
	struct proc_spec *spec;
	struct proc *p;
	int fds[CLIENT_MAX_FDS];
	size_t nfds = 0, i;

	if (!detached)
		nfds = client_take_fds(c, fds, CLIENT_MAX_FDS);
	if (!detached && nfds != 3) {
		client_error(c, "run needs the caller's stdin, stdout and stderr: use 'berth run' or ssh (or run:detached)");
		goto out;
	}
	if (a->removing) {
		client_error(c, "'%s' is being removed", a->name);
		goto out;
	}
	if (!r || !a->release) {
		client_error(c, "'%s' has no live release yet: push it first",
			     a->name);
		goto out;
	}
	spec = xcalloc(1, sizeof(*spec));
	spec->type = xstrdup("run");
	spec->cmd = xstrdup(cmd);
	p = proc_new(r, spec, ++a->run_seq, 0);
	p->own_spec = spec;
	p->oneoff = 1;
	if (!detached) {
		p->attached = 1;
		for (i = 0; i < 3; i++) {
			p->stdio[i] = fds[i];
			fds[i] = -1;
		}
		nfds = 0;
		p->tty = isatty(p->stdio[0]);
		if (term)
			snprintf(p->term, sizeof(p->term), "%s", term);
	}
	logger_linef(a->log, "berth", "%s: running %s%s", p->name, cmd,
		     detached ? " (detached)" : "");
	if (proc_spawn(p) < 0) {
		client_error(c, "cannot start %s: %s", p->name, error_last());
		cron_run_exited(p, NULL);
		goto out;
	}
	if (detached && p->state == PROC_STARTING) {
		client_data(c, "-----> Starting %s once its user is made: ssh HOST logs %s -p %s",
			    p->name, a->name, p->name);
		client_ok(c);
		goto out;
	}
	if (detached) {
		client_data(c, "-----> Started %s (pid %d): ssh HOST logs %s -p %s",
			    p->name, (int)p->pid, a->name, p->name);
		client_ok(c);
		goto out;
	}
	p->client = c;
	client_ref(c);
	client_on_close(c, run_client_gone, p);
out:
	for (i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

void app_cmd_create(struct engine *e, const char *name, struct client *c)
{
	struct app *a;

	if (!app_name_valid(name)) {
		client_error(c, "invalid app name '%s' (use a-z, 0-9 and '-', at most %d characters)",
			     name, APP_NAME_MAX);
		return;
	}
	if (app_find(e, name)) {
		client_error(c, "app '%s' already exists", name);
		return;
	}
	if (app_make(e, name, &a) < 0) {
		client_error(c, "%s", error_last());
		return;
	}
	logger_linef(a->log, "berth", "created %s", name);
	client_data(c, "-----> Created %s: push to it, or set its config first", name);
	client_ok(c);
}

void app_cmd_url(struct app *a, struct client *c)
{
	char *url = app_url(a);
	struct strv hosts = STRV_INIT;
	size_t i;

	client_data(c, "%s", url);
	free(url);
	/* then its other hosts: app.yaml's, and domains:add's */
	app_hosts_list(a, &hosts);
	for (i = 0; i < hosts.n; i++) {
		url = app_host_url(a, hosts.v[i]);
		client_data(c, "%s", url);
		free(url);
	}
	strv_release(&hosts);
	client_ok(c);
}

static const char *proc_state_name(const struct proc *p)
{
	switch (p->state) {
	case PROC_UP:
		return "up";
	case PROC_BACKOFF:
		return "restarting";
	case PROC_STOPPING:
		return "stopping";
	case PROC_DEAD:
		return "stopped";
	case PROC_STARTING:
		return "starting";
	}
	return "?";
}

void app_cmd_build_log(struct engine *e, const char *name, struct client *c)
{
	struct app *a;

	if (!app_name_valid(name)) {
		client_error(c, "invalid app name '%s'", name);
		return;
	}
	a = app_find(e, name);
	if (!a) {
		/* A first push: the app exists from now on, deploy or not. */
		if (app_make(e, name, &a) < 0) {
			client_error(c, "%s", error_last());
			return;
		}
		logger_linef(a->log, "berth", "created %s by a push", name);
	}
	build_log_open(e, a, c);
}

void app_cmd_apps(struct engine *e, struct client *c, const char *key)
{
	struct app *a;

	client_data(c, "%-24s %-10s %-8s %s", "NAME", "STATUS", "RELEASE",
		    "PROCESSES");
	for (a = e->apps; a; a = a->next) {
		struct buf procs = BUF_INIT;
		struct proc *p;
		char rel[16];

		if (a->removing ||
		    (key && access_check(e->cfg->root, a->name, key, 0) != 0))
			continue;
		if (a->live)
			for (p = a->live->procs; p; p = p->next)
				buf_addf(&procs, "%s%s", procs.len ? " " : "",
					 p->name);
		snprintf(rel, sizeof(rel), a->release ? "v%d" : "-", a->release);
		if (a->deploy) {
			buf_addstr(&procs, procs.len ? "  (deploying: " :
				   "-  (deploying: ");
			app_deploy_describe(a, &procs);
			buf_addstr(&procs, ")");
		} else if (a->note && a->retry_timer)
			buf_addf(&procs, "%s(%s; next try in %lld s)",
				 procs.len ? "  " : "-  ", a->note,
				 (long long)((a->retry_at - now_ms() + 999) / 1000));
		else if (a->note)
			buf_addf(&procs, "%s(%s)", procs.len ? "  " : "-  ",
				 a->note);
		client_data(c, "%-24s %-10s %-8s %s", a->name, app_status(a), rel,
			    procs.len ? procs.data : "-");
		/* for programs (the dashboard): the same, typed */
		buf_reset(&procs);
		if (a->live)
			for (p = a->live->procs; p; p = p->next)
				buf_addf(&procs, "%s%s", procs.len ? "," : "",
					 p->name);
		client_fields(c, "app=%s status=%s release=%d processes=%s result=%s",
			      a->name, app_status(a), a->release,
			      procs.len ? procs.data : "-",
			      a->last_result ? a->last_result : "-");
		buf_release(&procs);
	}
	client_ok(c);
}

void app_cmd_ps(struct app *a, struct client *c)
{
	struct proc *p;
	int64_t now = now_ms();

	if (a->deploy) {
		struct buf step = BUF_INIT;

		app_deploy_describe(a, &step);
		client_data(c, "%s: %s: %s, release %d", a->name, app_status(a),
			    step.data, a->release);
		buf_release(&step);
	} else {
		client_data(c, "%s: %s, release %d", a->name, app_status(a),
			    a->release);
	}
	client_data(c, "%-12s %-8s %-6s %-11s %-9s %-8s %-8s %s", "PROCESS",
		    "PID", "PORT", "STATE", "UPTIME", "RESTARTS", "MEMORY",
		    "CPU");
	if (a->live) {
		for (p = a->live->procs; p; p = p->next) {
			char port[12] = "-", up[24] = "-", mem[24] = "-",
			     cpu[24] = "-";
			uint64_t bytes, usec;

			if (p->port)
				snprintf(port, sizeof(port), "%d",
					 proc_http_port(p));
			if (p->state == PROC_UP)
				snprintf(up, sizeof(up), "%llds",
					 (long long)((now - p->started_ms) / 1000));
			if (p->pid > 0 &&
			    isolate_usage(a->eng->iso, p->pid, &bytes, &usec) == 0) {
				snprintf(mem, sizeof(mem), "%.1fM",
					 (double)bytes / (1024.0 * 1024.0));
				snprintf(cpu, sizeof(cpu), "%.2fs",
					 (double)usec / 1e6);
			}
			client_data(c, "%-12s %-8d %-6s %-11s %-9s %-8d %-8s %s",
				    p->name, (int)p->pid, port,
				    proc_state_name(p), up, p->restarts, mem, cpu);
			client_fields(c, "process=%s pid=%d port=%s state=%s uptime=%s restarts=%d",
				      p->name, (int)p->pid, port,
				      proc_state_name(p), up, p->restarts);
		}
	}
	client_ok_fields(c, "status=%s release=%d", app_status(a), a->release);
}

/* Keep the last n lines of out whose source want takes. */
static void logs_filter(struct buf *out, const char *want, long n)
{
	struct buf keep = BUF_INIT;
	char *line, *save = NULL;
	struct strv lines = STRV_INIT;
	size_t i, from;

	if (!out->len)
		return;
	for (save = out->data, line = str_token(&save, "\n"); line;
	     line = str_token(&save, "\n")) {
		size_t len;
		const char *src = logger_line_source(line, &len);

		if (src && logger_source_matches(want, src, len))
			strv_push(&lines, line);
	}
	from = lines.n > (size_t)n ? lines.n - (size_t)n : 0;
	for (i = from; i < lines.n; i++)
		buf_addf(&keep, "%s\n", lines.v[i]);
	strv_release(&lines);
	buf_release(out);
	*out = keep;
}

/* One data line per line of out. */
static void send_lines(struct client *c, struct buf *out)
{
	char *line, *save;

	if (out->len)
		for (save = out->data, line = str_token(&save, "\n"); line;
		     line = str_token(&save, "\n"))
			client_data(c, "%s", line);
}

/*
 * A long tail (over LOGS_IN_LOOP lines, or a filter, which reads back
 * 100000 lines) is read by a child: "logs -n 100000" of a 10 MiB log
 * held the loop 1.2 s, a filter of 100000 lines 0.1 s.  The child also
 * says where its tail ended (logger_tail_at()): with -f, the lines
 * written since are read from there, LOGS_CATCH_UP_BYTES a turn
 * (logger_read_after()), and the follow starts in the turn that reaches
 * the end, so that no line falls between the tail and the follow and
 * none comes twice.  The lines are sent from the loop, LOGS_LINES_A_TURN
 * a turn.  One engine a process: the jobs in flight are this file's
 * (app_cmd_logs_cancel_all()).
 */
#define LOGS_IN_LOOP 1000
#define LOGS_OUT_MAX (64UL * 1024 * 1024)	/* a client takes no more */

#define LOGS_LINES_A_TURN 2000	/* then the loop runs again */
#define LOGS_CATCH_UP_BYTES (256 * 1024)
/* while the client has this much to read, the catch-up waits for it */
#define LOGS_CATCH_UP_PENDING (4 * 1024 * 1024)
#define LOGS_CATCH_UP_WAIT_MS 50

struct logs_job {
	struct logs_job *next;
	struct runner r;
	struct engine *e;
	struct loop *loop;
	struct client *c;
	char *name;
	char *dir;
	char *want;
	long n;
	int follow;
	int following;			/* the tail is sent: catching up */
	struct logger_pos pos;		/* where the tail ended */
	struct buf out, err;
	char *next_line;		/* the lines not sent yet */
	uint64_t timer;
};

static struct logs_job *logs_jobs;

static int logs_child(void *arg, int out, int err)
{
	struct logs_job *j = arg;
	struct buf b = BUF_INIT;
	struct logger_pos end;
	const char *msg;
	char head[80];
	int ret = 0;

	/* a tail nobody waits for ends with the engine */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (logger_tail_at(j->dir, j->want ? 100000 : j->n, &b, &end) < 0) {
		msg = error_last();
		if (write_all(err, msg, strlen(msg)) < 0)
			ret = 2;
		ret = ret ? ret : 1;
	} else {
		if (j->want)
			logs_filter(&b, j->want, j->n);
		/* first line: where the tail ended */
		snprintf(head, sizeof(head), "%llu %llu %lld\n",
			 (unsigned long long)end.dev,
			 (unsigned long long)end.ino, (long long)end.off);
		if (write_all(out, head, strlen(head)) < 0 ||
		    write_all(out, b.data, b.len) < 0)
			ret = 1;
	}
	buf_release(&b);
	return ret;
}

static void logs_job_free(struct logs_job *j)
{
	struct logs_job **jp;

	for (jp = &logs_jobs; *jp; jp = &(*jp)->next)
		if (*jp == j) {
			*jp = j->next;
			break;
		}
	if (j->timer)
		loop_del_timer(j->loop, j->timer);
	client_unref(j->c);
	buf_release(&j->out);
	buf_release(&j->err);
	free(j->name);
	free(j->dir);
	free(j->want);
	free(j);
}

/* The lines of the log written since the tail, LOGS_CATCH_UP_BYTES a
 * turn; in the turn that reaches the end, the follow starts. */
static void logs_catch_up(struct loop *l, void *arg)
{
	struct logs_job *j = arg;
	struct app *a = app_find(j->e, j->name);
	char *line, *save;
	int r;

	j->timer = 0;
	if (!a || !a->log || client_gone(j->c)) {
		client_ok(j->c);	/* as logger_free() ends followers */
		logs_job_free(j);
		return;
	}
	if (client_pending(j->c) > LOGS_CATCH_UP_PENDING) {
		j->timer = loop_add_timer(l, LOGS_CATCH_UP_WAIT_MS,
					  logs_catch_up, j);
		return;
	}
	buf_reset(&j->out);
	r = logger_read_after(a->log, &j->pos, LOGS_CATCH_UP_BYTES, &j->out);
	if (r < 0) {
		client_error(j->c, "%s", error_last());
		logs_job_free(j);
		return;
	}
	if (j->out.len)
		for (save = j->out.data, line = str_token(&save, "\n"); line;
		     line = str_token(&save, "\n")) {
			size_t len;
			const char *src = logger_line_source(line, &len);

			if (!j->want || (src && logger_source_matches(
						     j->want, src, len)))
				client_data(j->c, "%s", line);
		}
	if (r == 1) {
		logger_follow(a->log, j->c, j->want);
		logs_job_free(j);
		return;
	}
	j->timer = loop_add_timer(l, 0, logs_catch_up, j);
}

/* The lines go LOGS_LINES_A_TURN at a time: 100000 of them in one go
 * held the loop 0.3 s. */
static void logs_send_some(struct loop *l, void *arg)
{
	struct logs_job *j = arg;
	char *line;
	int i;

	j->timer = 0;
	for (i = 0; i < LOGS_LINES_A_TURN; i++) {
		line = str_token(&j->next_line, "\n");
		if (line && !client_gone(j->c)) {
			client_data(j->c, "%s", line);
			continue;
		}
		if (j->follow && !client_gone(j->c)) {
			j->following = 1;
			logs_catch_up(l, j);
			return;
		}
		client_ok(j->c);
		logs_job_free(j);
		return;
	}
	j->timer = loop_add_timer(l, 0, logs_send_some, j);
}

/* "DEV INO OFF\n" at *p: where the child's tail ended */
static int logs_parse_pos(char **p, struct logger_pos *pos)
{
	unsigned long long dev, ino;
	long long off;
	char *s = *p, *end;

	errno = 0;
	dev = strtoull(s, &end, 10);
	if (end == s || *end != ' ')
		return -1;
	s = end + 1;
	ino = strtoull(s, &end, 10);
	if (end == s || *end != ' ')
		return -1;
	s = end + 1;
	off = strtoll(s, &end, 10);
	if (end == s || *end != '\n' || errno || off < 0)
		return -1;
	pos->dev = (dev_t)dev;
	pos->ino = (ino_t)ino;
	pos->off = (off_t)off;
	*p = end + 1;
	return 0;
}

static void logs_done(struct runner *r, int result, void *arg)
{
	struct logs_job *j = arg;

	if (result < 0) {
		client_error(j->c, "%s", error_last());
	} else if (!WIFEXITED(r->status) || WEXITSTATUS(r->status)) {
		client_error(j->c, "%s", j->err.len ? j->err.data :
			     "cannot read the log");
	} else {
		j->next_line = j->out.data;
		if (logs_parse_pos(&j->next_line, &j->pos) < 0) {
			client_error(j->c, "cannot read the log (its tail was cut short)");
			logs_job_free(j);
			return;
		}
		logs_send_some(j->loop, j);
		return;
	}
	logs_job_free(j);
}

static int logs_start(struct engine *e, const char *name, const char *dir,
		      long n, int follow, const char *want,
		      struct client *c)
{
	struct logs_job *j = xcalloc(1, sizeof(*j));

	j->c = c;
	client_ref(c);
	j->e = e;
	j->name = xstrdup(name);
	j->dir = xstrdup(dir);
	j->want = want ? xstrdup(want) : NULL;
	j->n = n;
	j->follow = follow;
	j->loop = e->loop;
	buf_init(&j->out, 0);
	buf_init(&j->err, 0);
	runner_init(&j->r);
	j->r.child_main = logs_child;
	j->r.child_arg = j;
	j->r.capture[RUNNER_OUT] = &j->out;
	j->r.capture[RUNNER_ERR] = &j->err;
	j->r.capture_max = LOGS_OUT_MAX;
	if (runner_start(&j->r, e->loop, logs_done, j) == 0) {
		j->next = logs_jobs;
		logs_jobs = j;
		return 0;
	}
	log_warnx("logs: %s; reading the tail in the engine",
		  error_last());
	j->c = NULL;
	logs_job_free(j);
	client_unref(c);
	return -1;
}

void app_cmd_logs_cancel_all(void)
{
	struct logs_job *j;

	while ((j = logs_jobs)) {
		if (runner_running(&j->r))
			runner_cancel(&j->r);
		if (j->following)
			client_ok(j->c);	/* as the followers get */
		else
			client_error(j->c, "the engine is stopping");
		logs_job_free(j);
	}
}

void app_cmd_logs(struct engine *e, const char *name, long n, int follow,
		  const char *want, struct client *c)
{
	struct app *a = app_find(e, name);
	char *dir = engine_path(e, "logs/%s", name);
	struct buf out = BUF_INIT;

	if (!a) {
		client_error_code(c, CONTROL_ERR_NOTFOUND,
				  "app '%s' does not exist", name);
		goto out;
	}
	if ((want || n > LOGS_IN_LOOP) &&
	    logs_start(e, name, dir, n, follow && a->log, want, c) == 0)
		goto out;
	if (logger_tail(dir, want ? 100000 : n, &out) < 0) {
		client_error(c, "%s", error_last());
		goto out;
	}
	if (want)
		logs_filter(&out, want, n);
	send_lines(c, &out);
	if (follow && a->log)
		logger_follow(a->log, c, want);
	else
		client_ok(c);
out:
	buf_release(&out);
	free(dir);
}

static void stop_done(void *arg)
{
	struct client *c = arg;

	if (c) {
		client_ok(c);
		client_unref(c);
	}
}

/* Not being stopped already (by a stop before this one: its group keeps
 * it, and answers its own client). */
static int not_stopping(const struct proc *p, const void *arg)
{
	(void)arg;
	return p->state != PROC_STOPPING;
}

/*
 * nginx has the stopped route (or the deadline passed): no new request
 * reaches the processes any more, so they get TERM now.  c (ref'd, may be
 * NULL) hears the count, then ok once they exited.
 */
static void stop_routed(struct app *a, const struct router_done *res,
			void *arg)
{
	struct client *c = arg;
	struct proc **ps = NULL;
	size_t n;

	if (!res) {
		/* the app went away meanwhile: its processes with it */
		if (c) {
			client_error(c, "app '%s' was removed before it stopped",
				     a->name);
			client_unref(c);
		}
		return;
	}
	if (!res->ok) {
		logger_linef(a->log, "berth", "nginx did not take the stopped route (%s); stopping anyway",
			     res->error ? res->error : "no answer");
		if (c)
			client_data(c, "       nginx did not take the stopped route (%s); stopping anyway",
				    res->error ? res->error : "no answer");
	}
	if (!a->stopped || a->deploy || a->removing) {
		/* started again (or deployed, or being removed: rm stops
		 * them) before nginx answered */
		if (c) {
			client_data(c, a->removing ?
				    "-----> %s is being removed meanwhile" :
				    "-----> %s was started again meanwhile: nothing stopped",
				    a->name);
			client_ok(c);
			client_unref(c);
		}
		return;
	}
	if (a->live)
		a->live->supervised = 0;
	n = run_procs(a->live, &ps, not_stopping, NULL);
	if (c)
		client_data(c, "-----> Stopping %zu process%s of %s", n,
			    n == 1 ? "" : "es", a->name);
	stop_procs(ps, n, a->eng->cfg->stop_timeout_ms, stop_done, c);
	free(ps);
}

/*
 * The route goes first (503 "app is stopped"); the processes get TERM once
 * nginx has it, so no request reaches a process that is stopping (it
 * would get 502).  Meanwhile the loop serves others.
 */
void app_cmd_stop(struct app *a, struct client *c)
{
	if (a->deploy) {
		client_error(c, "a deploy of '%s' is running; try again when it ends",
			     a->name);
		return;
	}
	if (a->removing) {
		client_error(c, "'%s' is being removed", a->name);
		return;
	}
	a->stopped = 1;
	app_save(a);
	restore_retry_cancel(a);
	logger_linef(a->log, "berth", "stopping %s", a->name);
	if (liveroute_state(a->eng, a, ROUTE_STOPPED, 0) < 0)
		log_warnx("%s: %s", a->name, error_last());
	/* no restart from now on: a process that exits stays down (its
	 * restart would route to it again) */
	if (a->live)
		a->live->supervised = 0;
	if (c)
		client_ref(c);
	liveroute_when_applied(a->eng, a, stop_routed, c);
}

/* Restart a's release; config saved since it went live (set
 * --no-restart, or set while stopped) makes a new release of the live
 * bundle instead. */
static void restart_with_saved_config(struct app *a, struct client *c)
{
	struct strv renv = STRV_INIT;
	struct deploy_opts o;

	if (a->release &&
	    release_env_read(a->dir, a->release, &renv) == 0 &&
	    !env_equal(&renv, &a->env)) {
		memset(&o, 0, sizeof(o));
		o.source = "config";
		o.from_live = 1;
		app_deploy(a->eng, a->name, DEPLOY_NEW, &o, c);
	} else {
		app_deploy(a->eng, a->name, DEPLOY_RESTART, NULL, c);
	}
	strv_release(&renv);
}

/* An explicit restart applies config saved with set --no-restart (as
 * Dokku's ps:restart does); crash restarts and restores never do. */
void app_cmd_restart(struct app *a, struct client *c)
{
	restart_with_saved_config(a, c);
}

/* ps:restart APP PROC: the processes restarted together. */
struct proc_restart {
	struct client *c;
	size_t left;
	struct buf failed;
	char *what;
	/* until nginx has the route without them: their run and names */
	struct run *run;
	struct strv names;
};

static void proc_restart_exit(struct proc *p, void *arg)
{
	struct proc_restart *pr = arg;

	p->on_exit = NULL;
	p->on_exit_arg = NULL;
	if (!p->app->eng->stopping && p->run == p->app->live &&
	    proc_spawn(p) < 0) {
		buf_addf(&pr->failed, "%s%s: %s", pr->failed.len ? "; " : "",
			 p->name, error_last());
		logger_linef(p->app->log, "berth", "cannot restart %s: %s",
			     p->name, error_last());
	}
	live_route_changed(p);
	if (--pr->left)
		return;
	if (pr->failed.len)
		client_error(pr->c, "%s", pr->failed.data);
	else {
		client_data(pr->c, "-----> Restarted %s", pr->what);
		client_ok(pr->c);
	}
	client_unref(pr->c);
	buf_release(&pr->failed);
	free(pr->what);
	strv_release(&pr->names);
	free(pr);
}

/*
 * nginx has the route without the processes (or its deadline passed):
 * they get TERM now, so no request reaches one that is going.  Those
 * still of pr (a deploy may have replaced the run meanwhile: then its
 * own stop has them).
 */
static void restart_routed(struct app *a, const struct router_done *res,
			   void *arg)
{
	struct proc_restart *pr = arg;
	struct proc *p;
	size_t i, found = 0;

	if (!res) {
		/* the app went away, its processes with it */
		client_error(pr->c, "app '%s' was removed meanwhile", a->name);
		client_unref(pr->c);
		buf_release(&pr->failed);
		free(pr->what);
		strv_release(&pr->names);
		free(pr);
		return;
	}
	if (!res->ok)
		client_data(pr->c, "       nginx did not take the route without %s (%s); restarting anyway",
			    pr->what, res->error ? res->error : "no answer");
	for (i = 0; i < pr->names.n; i++)
		for (p = a->live == pr->run ? a->live->procs : NULL; p;
		     p = p->next)
			if (!strcmp(p->name, pr->names.v[i]) &&
			    p->on_exit == proc_restart_exit &&
			    p->on_exit_arg == pr)
				found++;
	if (found != pr->left) {
		/* some were taken by another stop meanwhile: theirs ends
		 * them, and this restart cannot count them */
		pr->left = 0;
		client_error(pr->c, "'%s' changed before %s could restart (a deploy or a stop): see ps %s",
			     a->name, pr->what, a->name);
		client_unref(pr->c);
		buf_release(&pr->failed);
		free(pr->what);
		strv_release(&pr->names);
		for (p = a->live ? a->live->procs : NULL; p; p = p->next)
			if (p->on_exit == proc_restart_exit &&
			    p->on_exit_arg == pr) {
				p->on_exit = NULL;
				p->on_exit_arg = NULL;
			}
		free(pr);
		return;
	}
	for (p = a->live->procs; p; p = p->next)
		if (p->on_exit == proc_restart_exit && p->on_exit_arg == pr)
			proc_stop(p, a->eng->cfg->stop_timeout_ms);
}

/* "web" takes web.1, web.2...; "web.2" only itself. */
static int proc_picked(const struct proc *p, const void *arg)
{
	const char *want = arg;
	size_t k = strlen(p->spec->type);

	if (p->oneoff)
		return 0;
	if (!strcmp(p->name, want))
		return 1;
	return !strchr(want, '.') && !strncmp(want, p->name, k) &&
	       !want[k];
}

static int web_left_up(const struct run *r, const char *want)
{
	const struct proc *p;

	for (p = r->procs; p; p = p->next)
		if (p->port && p->state == PROC_UP && !proc_picked(p, want))
			return 1;
	return 0;
}

void app_cmd_restart_proc(struct app *a, const char *want,
			  struct client *c)
{
	struct proc **ps = NULL;
	struct proc_restart *pr;
	size_t n, i;
	int web = 0;

	if (a->deploy) {
		client_error(c, "'%s' is deploying; try again when it is done",
			     a->name);
		return;
	}
	if (!a->live) {
		client_error(c, "'%s' has no running release", a->name);
		return;
	}
	n = run_procs(a->live, &ps, proc_picked, want);
	if (!n) {
		client_error(c, "'%s' has no process '%s' (see ps %s)", a->name,
			     want, a->name);
		goto out;
	}
	for (i = 0; i < n; i++)
		web |= ps[i]->port != 0;
	if (web && !web_left_up(a->live, want)) {
		/* every web process: the zero-downtime restart of the app */
		client_data(c, "-----> %s is every web process of %s: restarting the app with no downtime",
			    want, a->name);
		app_cmd_restart(a, c);
		goto out;
	}
	pr = xcalloc(1, sizeof(*pr));
	pr->c = c;
	pr->left = n;
	pr->what = xstrdup(want);
	client_ref(c);
	logger_linef(a->log, "berth", "restarting %s", want);
	for (i = 0; i < n; i++) {
		ps[i]->on_exit = proc_restart_exit;
		ps[i]->on_exit_arg = pr;
	}
	pr->run = a->live;
	for (i = 0; i < n; i++) {
		/* out of the route first: the other web processes answer */
		ps[i]->state = ps[i]->pid > 0 ? PROC_STOPPING : ps[i]->state;
		if (ps[i]->port)
			live_route_changed(ps[i]);
		if (ps[i]->state == PROC_STOPPING)
			ps[i]->state = PROC_UP;
		strv_push(&pr->names, ps[i]->name);
	}
	/* TERM once nginx has that route (at once without web ones: no
	 * route changed, and the wait is only for what is queued) */
	liveroute_when_applied(a->eng, a, restart_routed, pr);
out:
	free(ps);
}

void app_cmd_start(struct app *a, struct client *c)
{
	if (!a->release) {
		client_error(c, "'%s' has no release yet", a->name);
		return;
	}
	a->stopped = 0;
	app_save(a);
	/* config set while it was stopped makes a new release */
	restart_with_saved_config(a, c);
}

void app_cmd_scale(struct app *a, int argc, char **argv, struct client *c)
{
	struct strv changes = STRV_INIT;
	struct deploy_opts o;
	int i;

	if (!a->live && (a->release || a->deploy)) {
		client_error(c, "'%s' is not running a release", a->name);
		goto out;
	}
	for (i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '='), *type;
		long n;

		if (!eq) {
			client_error_code(c, CONTROL_ERR_USAGE,
					  "usage: scale NAME TYPE=N...");
			goto out;
		}
		type = xstrndup(argv[i], (size_t)(eq - argv[i]));
		n = parse_long(eq + 1, 100);
		if (n < 0) {
			client_error(c, "bad count '%s' (0 to 100)", eq + 1);
			free(type);
			goto out;
		}
		if (a->live ? !manifest_proc(&a->live->m, type) :
		    !proc_type_valid(type)) {
			client_error(c, a->live ?
				     "no process type '%s' in release %d of '%s'" :
				     "invalid process type '%s'",
				     type, a->release, a->name);
			free(type);
			goto out;
		}
		strv_pushf(&changes, "%s=%ld", type, n);
		free(type);
	}
	if (!a->live) {
		/* before the first deploy: kept, and the first deploy
		 * starts with it (over app.json's formation) */
		scale_merge(&a->scale, &changes);
		if (app_save(a) < 0) {
			client_error(c, "%s", error_last());
			goto out;
		}
		for (i = 0; i < (int)changes.n; i++)
			client_data(c, "-----> %s: kept for the first deploy of %s",
				    changes.v[i], a->name);
		client_ok(c);
		goto out;
	}
	/* a->scale changes only when the new processes are live; the
	 * changes apply to the scale of that moment (see deploy_start()). */
	memset(&o, 0, sizeof(o));
	o.scale = &changes;
	app_deploy(a->eng, a->name, DEPLOY_RESTART, &o, c);
out:
	strv_release(&changes);
}

/* Its user is gone too: only now is the app removed. */
static void rm_done(void *arg)
{
	struct client *c = arg;

	if (c) {
		client_data(c, "-----> Removed %s", "app");
		client_ok(c);
		client_unref(c);
	}
}

static void rm_finish(void *arg)
{
	struct app *a = arg;
	struct client *c = a->rm_client;

	a->rm_client = NULL;
	app_remove(a, rm_done, c);
}

/* nginx has the app's stopped route (or the deadline passed): TERM its
 * processes, then rm_finish(). */
static void rm_routed(struct app *a, const struct router_done *res,
		      void *arg)
{
	struct proc **ps = NULL;
	size_t n;

	(void)arg;
	if (!res)
		return;		/* going already (its rm_client with it) */
	if (!res->ok && a->rm_client)
		client_data(a->rm_client, "       nginx did not take the stopped route (%s); removing anyway",
			    res->error ? res->error : "no answer");
	n = run_procs(a->live, &ps, NULL, NULL);
	stop_procs(ps, n, 3000, rm_finish, a);
	free(ps);
}

/* The database is dealt with: the route goes (503 "app is stopped"), the
 * processes get TERM once nginx has it, then rm_finish().  c is
 * a->rm_client, ref'd. */
static void rm_stop(struct app *a, struct client *c)
{
	if (a->waiting)
		deploy_drop_waiting(a, "app '%s' was removed", a->name);
	a->removing = 1;
	client_data(c, "-----> Removing %s", a->name);
	if (a->live)
		a->live->supervised = 0;
	if (a->live && liveroute_state(a->eng, a, ROUTE_STOPPED, 0) < 0)
		log_warnx("%s: %s", a->name, error_last());
	liveroute_when_applied(a->eng, a, rm_routed, NULL);
}

/* The database's drop is done (off the loop: the engine served others
 * meanwhile, with the app marked removing so that nobody deploys it). */
static void rm_dropped(void *arg, int result, const char *out)
{
	struct app *a = arg;
	struct client *c = a->rm_client;

	(void)out;
	if (result < 0) {
		a->removing = 0;
		a->rm_client = NULL;
		client_error(c, "cannot drop the database of '%s': %s",
			     a->name, error_last());
		client_unref(c);
		return;
	}
	client_data(c, "-----> Dropped the database of %s", a->name);
	rm_stop(a, c);
}

void app_cmd_rm(struct app *a, int drop_db, struct client *c)
{
	int has_db = strv_env_get(&a->env, "DATABASE_URL") != NULL;

	if (a->deploy) {
		client_error(c, "a deploy of '%s' is running; try again when it ends",
			     a->name);
		return;
	}
	if (a->renaming) {
		client_error(c, "'%s' is being renamed; try again when that is done",
			     a->name);
		return;
	}
	if (has_db && drop_db && !a->eng->pg) {
		client_error(c, "cannot drop the database of '%s': %s",
			     a->name, "PostgreSQL is not available");
		return;
	}
	client_ref(c);
	a->rm_client = c;
	if (has_db && drop_db) {
		/* no deploy, rename or second rm meanwhile; undone if the
		 * drop fails */
		a->removing = 1;
		postgres_drop_async(a->eng->pg, a->name, rm_dropped, a);
		return;
	}
	if (has_db)
		client_data(c, "-----> Kept the database of %s (use --drop-database to remove it)",
			    a->name);
	rm_stop(a, c);
}

/* Apply "KEY=VALUE" sets and "KEY" unsets to env. */
static void env_apply(struct strv *env, const struct strv *changes)
{
	size_t i;

	for (i = 0; i < changes->n; i++) {
		const char *ch = changes->v[i], *eq = strchr(ch, '=');

		if (eq) {
			char *k = xstrndup(ch, (size_t)(eq - ch));

			strv_env_set(env, k, eq + 1);
			free(k);
		} else {
			strv_env_unset(env, ch);
		}
	}
}

/* Check "set K=V..." or "unset K..." words into changes; -1 after
 * answering c. */
static int config_changes(struct strv *changes, int set, int argc,
			  char **argv, struct client *c)
{
	int i;

	for (i = 0; i < argc; i++) {
		char *eq = set ? strchr(argv[i], '=') : NULL, *k;
		const char *v;

		if (set && !eq) {
			client_error(c, "config set: expected KEY=VALUE, got '%s'",
				     argv[i]);
			return -1;
		}
		k = set ? xstrndup(argv[i], (size_t)(eq - argv[i])) :
			xstrdup(argv[i]);
		if (!env_key_valid(k)) {
			client_error(c, "invalid config var name '%s'", k);
			free(k);
			return -1;
		}
		for (v = set ? eq + 1 : ""; *v; v++)
			if ((unsigned char)*v < 0x20 && *v != '\t') {
				client_error(c, "the value of '%s' holds a control character%s",
					     k, *v == '\n' ?
					     " (a new line: multi-line values are not supported yet)" : "");
				free(k);
				return -1;
			}
		free(k);
		strv_push(changes, argv[i]);
	}
	return 0;
}

void app_cmd_config(struct app *a, int argc, char **argv, struct client *c)
{
	struct strv changes = STRV_INIT, env = STRV_INIT, words = STRV_INIT;
	struct buf dec = BUF_INIT;
	int i, first = 1, no_restart = 0, encoded = 0;
	size_t j;
	struct deploy_opts o;
	char *path = NULL;

	if (argc == 0) {
		/* people read the lines, programs (a push's build, the
		 * dashboard) a "fields var=KEY=VALUE" line each (control.h) */
		for (j = 0; j < a->env.n; j++) {
			client_data(c, "%s", a->env.v[j]);
			buf_reset(&dec);
			control_field_encode(&dec, a->env.v[j]);
			client_fields(c, "var=%s", dec.data);
		}
		buf_release(&dec);
		client_ok(c);
		return;
	}
	if (!strcmp(argv[0], "get")) {
		const char *v;

		if (argc != 2) {
			client_error_code(c, CONTROL_ERR_USAGE,
					  "usage: config NAME get KEY");
			return;
		}
		v = strv_env_get(&a->env, argv[1]);
		if (!v) {
			client_error(c, "'%s' has no config var '%s'", a->name, argv[1]);
			return;
		}
		client_data(c, "%s", v);
		client_ok(c);
		return;
	}
	/* Dokku's flags: --no-restart (saved, applied at the next deploy or
	 * restart), --encoded (set: values in base64) */
	for (; first < argc && !strncmp(argv[first], "--", 2); first++) {
		if (!strcmp(argv[first], "--no-restart"))
			no_restart = 1;
		else if (!strcmp(argv[first], "--encoded") &&
			 !strcmp(argv[0], "set"))
			encoded = 1;
		else
			break;
	}
	if ((strcmp(argv[0], "set") && strcmp(argv[0], "unset")) ||
	    argc <= first) {
		client_error_code(c, CONTROL_ERR_USAGE,
				  "usage: config NAME [set [--no-restart] [--encoded] K=V... | unset [--no-restart] K... | get K]");
		return;
	}
	for (i = first; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!encoded || !eq) {
			strv_push(&words, argv[i]);
			continue;
		}
		buf_reset(&dec);
		if (base64_decode(&dec, eq + 1) < 0 ||
		    (dec.len && memchr(dec.data, '\0', dec.len))) {
			client_error(c, "the value of '%.*s' is not base64 of a text",
				     (int)(eq - argv[i]), argv[i]);
			goto out;
		}
		strv_pushf(&words, "%.*s=%s", (int)(eq - argv[i]), argv[i],
			   dec.data ? dec.data : "");
	}
	if (config_changes(&changes, !strcmp(argv[0], "set"), (int)words.n,
			   words.v, c) < 0)
		goto out;
	if (a->live && !a->stopped && !no_restart) {
		/*
		 * A config change is a new release of the same bundle.  The
		 * app's config changes only if it goes live: until then (and
		 * if it fails) a->env and ROOT/apps/NAME/env are as they were.
		 */
		memset(&o, 0, sizeof(o));
		o.source = "config";
		o.from_live = 1;
		o.env_changes = &changes;
		app_deploy(a->eng, a->name, DEPLOY_NEW, &o, c);
		goto out;
	}
	/* Nothing runs: the config is what the next release will get. */
	strv_copy(&env, &a->env);
	env_apply(&env, &changes);
	path = xasprintf("%s/env", a->dir);
	if (env_file_write(path, &env) < 0) {
		client_error(c, "cannot save the config of '%s': %s", a->name,
			     error_last());
		goto out;
	}
	strv_release(&a->env);
	a->env = env;
	memset(&env, 0, sizeof(env));
	client_data(c, "-----> Config of %s saved; it applies at the next %s",
		    a->name, no_restart && a->live && !a->stopped ?
		    "deploy or restart" : a->release ? "start" : "deploy");
	client_ok(c);
out:
	free(path);
	strv_release(&changes);
	strv_release(&words);
	strv_release(&env);
	buf_release(&dec);
}

static void releases_answer(struct app *a, struct client *c, int newest)
{
	char *st = newest ? release_meta_get(a->dir, newest, "status") : NULL;

	client_ok_fields(c, "live=%d newest=%d status=%s", a->release, newest,
			 newest == a->release && newest ? "live" :
			 st && *st && !strpbrk(st, " =\n") ? st : "none");
	free(st);
}

void app_cmd_releases(struct app *a, struct client *c)
{
	int *nums;
	size_t n = release_list(a->dir, &nums), i;

	client_data(c, "%-8s %-11s %-12s %-21s %-10s %s", "RELEASE", "STATUS",
		    "COMMIT", "TIME", "BUILDPACK", "SOURCE");
	for (i = n; i-- > 0;) {
		char *st = release_meta_get(a->dir, nums[i], "status");
		char *commit = release_meta_get(a->dir, nums[i], "commit");
		char *t = release_meta_get(a->dir, nums[i], "time");
		char *bp = release_meta_get(a->dir, nums[i], "buildpack");
		char *src = release_meta_get(a->dir, nums[i], "source");
		char *conf = release_meta_get(a->dir, nums[i], "config");
		char rel[16];

		snprintf(rel, sizeof(rel), "v%d%s", nums[i],
			 nums[i] == a->release ? "*" : "");
		if (conf)
			client_data(c, "%-8s %-11s %-12.10s %-21s %-10s %-9s config: %s",
				    rel, nums[i] == a->release ? "live" :
				    (st ? st : "?"), commit ? commit : "-",
				    t ? t : "-", bp ? bp : "-", src ? src : "-",
				    conf);
		else
			client_data(c, "%-8s %-11s %-12.10s %-21s %-10s %s", rel,
				    nums[i] == a->release ? "live" :
				    (st ? st : "?"), commit ? commit : "-",
				    t ? t : "-", bp ? bp : "-", src ? src : "-");
		/* the same for programs, typed: one line a release */
		{
			struct buf f = BUF_INIT;

			buf_addf(&f, "release=%d live=%d", nums[i],
				 nums[i] == a->release);
			control_field_add(&f, "status", nums[i] == a->release ?
				  "live" : st ? st : "?");
			control_field_add(&f, "commit", commit);
			control_field_add(&f, "time", t);
			control_field_add(&f, "buildpack", bp);
			control_field_add(&f, "source", src);
			control_field_add(&f, "config", conf);
			client_fields(c, "%s", f.data);
			buf_release(&f);
		}
		free(st);
		free(commit);
		free(t);
		free(bp);
		free(src);
		free(conf);
	}
	/* for programs: what is live, and what became of the newest */
	releases_answer(a, c, n ? nums[n - 1] : 0);
	free(nums);
}

static void output_list(struct app *a, struct client *c)
{
	int *nums;
	size_t n = deployout_list(a->dir, &nums), i;

	client_data(c, "%-7s %-8s %-10s %-9s %-21s %s", "DEPLOY", "RELEASE",
		    "STATUS", "KIND", "TIME", "COMMIT");
	for (i = n; i-- > 0;) {
		struct deployout_info in;
		char rel[16];

		if (deployout_info_read(a->dir, nums[i], &in) < 0)
			continue;
		snprintf(rel, sizeof(rel), in.release ? "v%d" : "-",
			 in.release);
		client_data(c, "%-7d %-8s %-10s %-9s %-21s %.10s", in.deploy,
			    rel, in.status, in.kind, in.time,
			    in.commit[0] ? in.commit : "-");
		/* the same for programs, typed: one line a deploy */
		{
			struct buf f = BUF_INIT;

			buf_addf(&f, "deploy=%d release=%d", in.deploy,
				 in.release);
			control_field_add(&f, "status", in.status);
			control_field_add(&f, "kind", in.kind);
			control_field_add(&f, "time", in.time);
			control_field_add(&f, "commit", in.commit);
			client_fields(c, "%s", f.data);
			buf_release(&f);
		}
	}
	free(nums);
	client_ok(c);
}

void app_cmd_releases_output(struct app *a, int argc, char **argv,
			     struct client *c)
{
	struct buf b = BUF_INIT;
	struct deployout *open_rec;
	int release = 0, deploy = 0, follow = 1, i, r;
	char *line, *nl;

	for (i = 2; i < argc; i++) {
		long v;

		if (!strcmp(argv[i], "--list")) {
			output_list(a, c);
			return;
		} else if (!strcmp(argv[i], "--no-follow")) {
			follow = 0;
		} else if (!strcmp(argv[i], "--deploy") && i + 1 < argc &&
			   (v = parse_long(argv[i + 1], 1L << 30)) > 0) {
			deploy = (int)v;
			i++;
		} else if (!release && !deploy &&
			   (v = parse_long(argv[i][0] == 'v' ? argv[i] + 1 :
					   argv[i], 1L << 30)) > 0) {
			release = (int)v;
		} else {
			client_error_code(c, CONTROL_ERR_USAGE,
					  "usage: releases:output NAME [N]");
			return;
		}
	}
	if (!deploy) {
		r = deployout_find(a->dir, release, &deploy);
		if (r == ERR_NOTFOUND && !release) {
			client_error(c, "'%s' has no deploy output kept yet",
				     a->name);
			return;
		}
		if (r == ERR_NOTFOUND) {
			char *dir = release_path(a->dir, release, NULL);
			int known = path_exists(dir);

			free(dir);
			if (known)
				client_error(c, "release %d of '%s' has no output kept (made before berth kept deploy output)",
					     release, a->name);
			else
				client_error(c, "'%s' has no release %d",
					     a->name, release);
			return;
		}
	}
	r = deployout_read(a->dir, deploy, &b);
	if (r == ERR_NOTFOUND) {
		client_error(c, "'%s' has no deploy %d output kept", a->name,
			     deploy);
		goto out;
	}
	if (r < 0) {
		client_error(c, "%s", error_last());
		goto out;
	}
	/* The engine is one thread: what the file holds now and what the
	 * record writes from here on are the whole output, in order. */
	for (line = b.data; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		client_data(c, "%s", line);
	}
	open_rec = deployout_find_open(a->dir, deploy);
	if (open_rec && follow)
		deployout_follow(open_rec, c);
	else
		client_ok(c);
out:
	buf_release(&b);
}

void app_cmd_rollback(struct app *a, int number, struct client *c)
{
	int *nums;
	size_t n = release_list(a->dir, &nums), i;
	struct deploy_opts o;
	char *bundle = NULL, *bp, *commit, *intro;

	if (number == 0) {
		/* The newest release before the live one that went live. */
		for (i = n; i-- > 0;) {
			if (nums[i] >= a->release)
				continue;
			if (release_went_live(a->dir, nums[i])) {
				number = nums[i];
				break;
			}
		}
		if (!number) {
			client_error(c, "'%s' has no earlier release to roll back to",
				     a->name);
			goto out;
		}
	}
	bundle = release_path(a->dir, number, "bundle.tar.gz");
	if (!path_exists(bundle)) {
		char *dir = release_path(a->dir, number, NULL);

		if (path_exists(dir))
			client_error(c, "release %d of '%s' never went live: nothing to roll back to",
				     number, a->name);
		else
			client_error(c, "release %d of '%s' does not exist",
				     number, a->name);
		free(dir);
		goto out;
	}
	/* Its code and its config: a release is both. */
	memset(&o, 0, sizeof(o));
	o.source = "rollback";
	o.from_release = number;
	bp = release_meta_get(a->dir, number, "buildpack");
	commit = release_meta_get(a->dir, number, "commit");
	o.buildpack = bp;
	o.commit = commit;
	intro = xasprintf("-----> Rolling back %s to release %d", a->name,
			  number);
	o.intro = intro;
	app_deploy(a->eng, a->name, DEPLOY_NEW, &o, c);
	free(intro);
	free(bp);
	free(commit);
out:
	free(bundle);
	free(nums);
}

/* pg:info's answer, from the loop: the app may be gone by now, c is
 * ours. */
static void pg_info_done(void *arg, int result, const char *out)
{
	struct client *c = arg;
	char *copy, *line, *save = NULL;

	if (result < 0) {
		client_error(c, "%s", error_last());
		client_unref(c);
		return;
	}
	copy = xstrdup(out);
	for (save = copy, line = str_token(&save, "\n"); line;
	     line = str_token(&save, "\n"))
		client_data(c, "%s", line);
	free(copy);
	client_ok(c);
	client_unref(c);
}

void app_cmd_pg(struct app *a, struct client *c)
{
	if (!strv_env_get(&a->env, "DATABASE_URL")) {
		client_error(c, "'%s' has no database (add 'postgres: true' to app.yaml)",
			     a->name);
		return;
	}
	if (!a->eng->pg) {
		client_error(c, "%s", "PostgreSQL is not available");
		return;
	}
	/* asked off the loop: the engine serves others meanwhile */
	client_ref(c);
	postgres_info_async(a->eng->pg, a->name, pg_info_done, c);
}
