/*
 * export: one app as one file, to move it to another host.
 *
 *   export APP [FILE|-]    a tar.gz: the repository, the live release's
 *                          bundle, every release's metadata, the config
 *                          vars and the scale
 *   import NAME FILE|-     the app NAME made from such a file on this
 *                          engine, brought up on the exported release
 *
 * Both run on the client side (the local CLI as root, or the SSH
 * session), through a folder under ROOT/tmp, so that no archive passes
 * through the engine's loop.  Import unpacks with bundle_unpack()'s
 * checks (as root: in a child that is berth-ssh, chrooted in a folder
 * holding only the spooled archive; root then takes the tree by
 * descriptors: made root's, no link leading out, berth-export read
 * without following a link; berth-ssh must exist, the engine makes it),
 * then hands the folder to the engine ("import-staged NAME DIR",
 * which only takes folders made there and is refused over SSH), which
 * moves it into ROOT/apps/NAME at once and starts the app as an engine
 * restart would.  DATABASE_URL is not carried over: the other host's
 * database is not this one's (an app with "postgres: true" gets a new
 * one; move the data with pg:backup and pg:restore).
 *
 * The archive: berth-export (format line, app, live release, scale
 * lines), env, releases/N/meta, releases/LIVE/bundle.tar.gz, repo.git/.
 */
#ifndef BERTH_EXPORT_H
#define BERTH_EXPORT_H

#include <stddef.h>

#include "util.h"

struct backup_io;
struct engine;
struct client;

/* 1 if cmd is "export" or "import". */
int export_is_command(const char *cmd);
/* Exit status as backup_command(). */
int export_command(const char *root, int argc, char **argv,
		   struct backup_io *io);

/*
 * The berth-export file of an archive (outside input): the format line
 * first, then "release N" (the live release, required) and "scale
 * TYPE=N" lines (kept in scale when well formed); other lines are
 * ignored.  ERR_INVALID with error_last() saying why.
 */
int export_parse_header(const char *text, size_t len, long *release,
			struct buf *scale);

/* Engine side of import: argv is "import-staged NAME DIR". */
void export_cmd_import_staged(struct engine *e, struct client *c, int argc,
			      char **argv);

#endif
