/*
 * startserver: "berth start-server" (also installed as "start_server"),
 * a drop-in for the start_server command of Perl's Server::Starter: the
 * same options, environment, status and pid files, messages and exit
 * statuses (docs/start-server.md lists where it differs on purpose).
 *
 * The superdaemon binds the listening sockets, runs COMMAND with them
 * in SERVER_STARTER_PORT (and, with --systemd, in LISTEN_FDS), and on
 * SIGHUP starts the next generation; only once that one has stayed up
 * --interval seconds does the old one get --signal-on-hup.  SIGTERM or
 * SIGINT passes a signal to every worker, waits for them, and exits.
 * --restart and --stop are small clients of a running superdaemon
 * through its pid and status files.
 *
 * It needs no engine and no state directory.
 */
#ifndef BERTH_STARTSERVER_H
#define BERTH_STARTSERVER_H

/*
 * Run start_server with argv[1..] as its arguments (argv[0] is only a
 * name).  Returns the exit status; messages go to stderr (to --log-file
 * once the sockets are bound), --help and --version to stdout.  Installs
 * signal handlers and forks; with --daemonize the calling process exits
 * in here.  Blocks until the superdaemon is told to stop.
 */
int startserver_main(int argc, char **argv);

#endif
