/*
 * commands: the one command table (commands.c), seen from where no
 * engine runs: the CLI (main.c) answers "help", "COMMAND --help" and
 * usage errors with it before it reaches the engine, and SSH sessions
 * refuse what is not theirs to ask.  The engine's side (dispatch) is in
 * engine.h.
 */
#ifndef BERTH_COMMANDS_H
#define BERTH_COMMANDS_H

#include "util.h"

/* Append one "  USAGE  HELP" line per command (aliases and internal
 * commands left out). */
void commands_describe(struct buf *out);
/* 0 if argv is a known command (or alias) with a fitting number of
 * words; else ERR_NOTFOUND and "unknown command ..." in why, or
 * ERR_USAGE and the command's usage line ("logs NAME ...") in why. */
int commands_check(int argc, char **argv, struct buf *why);
/* A command's usage line, and its help line in *help; NULL if unknown. */
const char *commands_usage(const char *name, const char **help);
/* 1 for commands that only the host itself may send (not over SSH). */
int commands_local_only(const char *name);
/*
 * argv as the engine will see it, Dokku's and Piku's spellings turned
 * into berth's (config:set --no-restart APP K=V is config APP set
 * --no-restart K=V), into out (a copy when nothing changes): what an
 * SSH session checks access against, the app being out.v[1].
 */
void commands_expand(int argc, char **argv, struct strv *out);

#endif
