/*
 * appfiles: what an app's checkout says besides app.yaml, read and checked
 * at build time before anything runs, so a mistake fails the push with
 * its file, line and column and nothing is deployed: Heroku's and Dokku's
 * app.json (appjson.h), a .buildpacks file (buildpack.h), Piku's ENV, a
 * .env (read only with "dotenv: true" in app.yaml), the Procfile's Piku
 * cron: types, and a Dockerfile (which berth does not use).
 *
 * Each is read as root from the pusher's tree by descriptors, never
 * through a link (safefs.h): a symbolic link in their place is an error.
 * What berth will do with them, and what it ignores, is said to the user
 * through say(), a line at a time ("-----> ..." or " !     ...").
 * Blocks on the file system only.
 */
#ifndef BERTH_APPFILES_H
#define BERTH_APPFILES_H

#include "manifest.h"

struct appfiles {
	struct manifest json;	/* app.json's settings; empty without one */
	int has_json;
	struct strv buildpacks;	/* .buildpacks, each spec checked */
	int has_buildpacks_file;
};

void appfiles_init(struct appfiles *af);
void appfiles_release(struct appfiles *af);

/*
 * Read and check the files of the checkout 'dir'.  'app' is its app.yaml
 * (NULL without one: for "dotenv" and whether it lists processes);
 * 'config' the app's config vars (KEY=VALUE, NULL-terminated, may be
 * NULL), to say which variables app.json needs that are not set.  0, or
 * -1 with error_last() one line naming the file.
 */
int appfiles_read(struct appfiles *af, const char *dir,
		  const struct manifest *app, char *const *config,
		  void (*say)(void *arg, const char *line), void *arg);

#endif
