/*
 * pipeline: turns a pushed commit into a running release.
 *
 * Runs in a child of the SSH session, never in the engine.  Steps
 * (default): pre-build hooks -> buildpack -> post-build hooks -> pack ->
 * deploy -> post-deploy hooks (docs/pipeline.md); app.yaml's "pipeline:"
 * may reorder, add or skip them.  "deploy" is a request to the engine
 * ("deploy NAME BUNDLE ..."), whose progress lines are passed on.
 *
 * All output for the person pushing is written, a line at a time, to
 * o->out (the session turns it into "remote:" lines).
 */
#ifndef BERTH_PIPELINE_H
#define BERTH_PIPELINE_H

struct config;

struct pipeline_opts {
	const struct config *cfg;
	const char *app;
	const char *repo;	/* bare repository */
	const char *commit;	/* hex id of the commit to build */
	const char *pusher;	/* who pushed (key name) */
	int skip_deploy;	/* push option skip-deploy: build nothing */
	int clean_cache;	/* push option clean-cache */
	int out;		/* fd for the user's output */
};

/* 0 if the new release is live; -1 with error_last() a one-line reason
 * (used for the ref's "ng" line). */
int pipeline_run(const struct pipeline_opts *o);

#endif
