/*
 * oneoff: the command line of "run APP CMD..." as the shell command a
 * one-off process runs (app_cmd_run()).
 *
 * One word is taken as a shell command as typed, as Heroku's "run" does
 * ("run APP 'rake db:migrate && echo done'"); several words are each
 * quoted, so "run APP sh -c 'echo $X'" keeps its words as they arrived.
 * The command is the app owner's own and runs as the app, never as
 * berth: nothing else is pasted into it.
 */
#ifndef BERTH_ONEOFF_H
#define BERTH_ONEOFF_H

/* A fresh string the caller frees; NULL (error_last()) when argc is 0,
 * a word is empty or holds a NUL-free control byte other than tab. */
char *oneoff_command(int argc, char *const *argv);

/* 1 if term is a terminal type to pass on as TERM (the client's, from
 * its pty request or its environment): letters, digits and "-+._",
 * 1 to ONEOFF_TERM_MAX bytes. */
#define ONEOFF_TERM_MAX 63
int oneoff_term_valid(const char *term);

#endif
