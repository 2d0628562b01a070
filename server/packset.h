/*
 * packset: the buildpacks an app is set to build with (Dokku's
 * buildpacks:set, buildpacks:add, buildpacks:remove, buildpacks:clear,
 * buildpacks), kept in ROOT/apps/NAME/buildpacks in the .buildpacks
 * format (buildpack.h: one spec a line, a name or a git URL with an
 * optional #ref).  The next push builds with them, in order; they win
 * over the app's own app.yaml, .buildpacks and app.json, and lose to
 * the BUILDPACK and BUILDPACK_URL config vars, as on Dokku.  Paths on
 * the host are refused: the command comes from a remote user too.
 */
#ifndef BERTH_PACKSET_H
#define BERTH_PACKSET_H

#include "util.h"

struct app;
struct client;

#define PACKSET_FILE "buildpacks"	/* in the app's folder */

/* Read the set list of app folder appdir into out (one spec each).
 * 0 with nothing pushed when there is none; ERR_INVALID (naming the
 * line) for a bad file. */
int packset_read(const char *appdir, struct strv *out);

/* "buildpacks APP", "buildpacks:set APP SPEC...", "buildpacks:add APP
 * SPEC...", "buildpacks:remove APP SPEC", "buildpacks:clear APP":
 * argv[0] names which; each answers c. */
void packset_cmd(struct app *a, int argc, char **argv, struct client *c);

#endif
