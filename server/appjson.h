/*
 * appjson: Heroku's and Dokku's app.json, read into berth's manifest
 * (manifest.h), for apps that bring one (docs/manifest.md, "app.json").
 *
 * What berth takes from it:
 *   scripts.dokku.predeploy    -> m->predeploy_cmd
 *   scripts.dokku.postdeploy   -> m->postdeploy_cmd
 *   scripts.postdeploy         -> m->first_deploy_cmd (Heroku's: once,
 *                                 after the app's first deploy; a string
 *                                 or {"command": ...})
 *   healthchecks.web[]         -> the first check of type startup (or
 *                                 none) with a path: health_path,
 *                                 health_attempts, _attempt_timeout_ms
 *                                 ("timeout", seconds), _wait_ms,
 *                                 _initial_delay_ms ("initialDelay"),
 *                                 health_content, and health_timeout_ms
 *                                 = initialDelay + attempts x (timeout +
 *                                 wait) when any of those is given
 *                                 (Dokku's defaults 3, 5 s, 5 s, 0)
 *   formation.TYPE.quantity    -> m->formation (0 to 100)
 *   env.NAME                   -> m->env, from a string (or a number or
 *                                 boolean, as written) or {"value": ...};
 *                                 no value and "required" not false ->
 *                                 m->env_required; "generator": "secret"
 *                                 -> m->env_generate
 *   cron[]                     -> m->crons: command, schedule (cron.h),
 *                                 maintenance (paused), concurrency_policy
 *                                 (forbid, the default, or replace)
 *   buildpacks[].url           -> m->buildpacks (buildpack.h specs)
 * Labels (name, description, keywords, website, repository, logo and a
 * check's or variable's name and description) are read and dropped.
 * Everything else it meets (addons, image, stack, formation sizes,
 * liveness checks, ...) is not an error: app.json is shared by many
 * tools.  It is listed in m->ignored, one entry per key with its path
 * ("addons", "formation.web.size", "healthchecks.web[1]"), for the push
 * output to say once.
 *
 * Values of the wrong kind are errors at their position:
 * "app.json:7:19: 'formation.web.quantity' must be a whole number from 0
 * to 100".  Nothing blocks; the caller bounds the input (1 MiB).
 */
#ifndef BERTH_APPJSON_H
#define BERTH_APPJSON_H

#include <stddef.h>

struct manifest;

/* Dokku's defaults for a check's numbers */
#define APPJSON_ATTEMPTS 3
#define APPJSON_TIMEOUT_S 5
#define APPJSON_WAIT_S 5

/*
 * Parse app.json text into m, which holds nothing from app.json yet
 * (usually fresh from manifest_init(); manifest_merge_defaults() puts it
 * under the app's own app.yaml or Procfile).  0, or -1 with error_last()
 * "FNAME:LINE:COL: msg"; on failure m is partly filled: release it.
 */
int appjson_parse(struct manifest *m, const char *buf, size_t len,
		  const char *fname);

#endif
