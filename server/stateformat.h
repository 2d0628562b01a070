/*
 * stateformat: the version of the state folder's layout, kept in
 * ROOT/state-format ("1\n").  The engine checks it before it touches
 * anything: an older format is upgraded in place (each step is listed in
 * stateformat.c and docs/operations.md), a newer one (written by a newer
 * berth) is refused, so a downgrade never misreads state.
 *
 * Format 0 is a folder from before the file was kept (berth 0.1.0): the
 * same files as format 1.
 */
#ifndef BERTH_STATEFORMAT_H
#define BERTH_STATEFORMAT_H

#define STATE_FORMAT 1

/*
 * Read ROOT/state-format (a missing file is format 0 when ROOT/apps
 * exists, else a fresh folder), upgrade older state to STATE_FORMAT and
 * write the file.  *found (if not NULL) gets the format found.  -1 with
 * error_last() when the folder is newer than this berth or the file is
 * not a format number; nothing is changed then.
 */
int stateformat_check(const char *root, int *found);
/* The format recorded in ROOT, -1 when unreadable (for "status"). */
int stateformat_read(const char *root);

#endif
