/*
 * cluster: many hosts, one source of truth (docs/cluster.md).
 *
 * With "cluster: CONNINFO" in berth.yaml the engine keeps one libpq
 * connection to that PostgreSQL, non-blocking and watched by the loop
 * (nothing here waits for the database's answers).  Its host name is
 * looked up anew at each connect and reconnect by a child (pgresolve.h:
 * at most 10 s, then "cannot resolve 'NAME': ..." and a retry as for any
 * failed connect), and libpq connects to the addresses (hostaddr=): the
 * loop never waits for DNS (a service file's hosts too: the child reads
 * it).  An address or a socket path needs no lookup.  A release's bundle
 * (up to hundreds of MB) is read from disk by a child to be published,
 * and comes over a pipe; a fetched one is written to disk by a child,
 * and its deploy starts from the child's exit; its chunks are sent and
 * received without blocking.
 * clusterjobs.c and clusterroute.c ask through this connection only.
 * On connect it creates or
 * migrates the berth_* tables (under an advisory lock, so hosts joining
 * at once do not race), LISTENs on "berth_cluster", registers this host
 * (name, address, groups, version) and heartbeats every 2 s.
 *
 * The tables are the truth; a NOTIFY only says "look again".  A host
 * reconciles on connect, on every notification and every 5 s: for each
 * app of its groups it brings the cluster's release and config here,
 * through the normal deploy (app_deploy(), source "cluster"), fetching
 * the bundle from the database.  Rollouts go host by host in name order:
 * a host waits while a live host of the group before it has not run the
 * release yet, and stops when any host failed it.
 *
 * What goes live here from a push, "deploy", "incoming", "rollback" or a
 * config change is published through the engine's on_deploy_end hook:
 * one transaction, then NOTIFY.  A publish cut by a lost connection is
 * made again when the database is back, within cluster_wait; else this
 * host goes back to the release before it.  A command that changes what
 * the cluster runs waits for an unreachable database first
 * (cluster_gate()).
 *
 * A host is who its host id file says (STATE/cluster/host-id, made on
 * the first start): a live host's name is never taken by another id; a
 * host removed by "cluster rm" stays out across restarts
 * (STATE/cluster/removed) until "cluster join".
 *
 * Without "cluster:" cluster_start() sets *out to NULL and nothing of
 * this runs.  Errors of the database are logged, never fatal: the host
 * keeps serving what it runs, retrying the connection with a back-off.
 */
#ifndef BERTH_CLUSTER_H
#define BERTH_CLUSTER_H

struct engine;
struct client;
struct cluster;
struct app;

/* A host counts as down when its heartbeat is older than this. */
#define CLUSTER_DOWN_AFTER_S 10

/* Start joining (returns at once; the connection is made by the loop).
 * Sets e->on_deploy_end.  -1 only for a bad conninfo or host name. */
int cluster_start(struct cluster **out, struct engine *e);
/* Close the connection and free everything (engine exit).  NULL is
 * fine.  Clients still waiting get an error. */
void cluster_free(struct cluster *cl);

/* "cluster status": hosts, groups, heartbeat age, up/down, version and
 * the apps each runs (release), answered from the database. */
void cluster_cmd_status(struct cluster *cl, struct client *c);
/* "apps:set-group APP GROUP": which hosts run the app.  The app must
 * exist here or in the cluster. */
void cluster_cmd_set_group(struct cluster *cl, const char *app,
			   const char *group, struct client *c);

/* "ps APP" and "logs APP" (the last n lines) in a cluster: each host of
 * the app's group answers through the database; ps gets a HOST column,
 * logs are merged by time with the host after the time.  Hosts that do
 * not answer within 5 s are named.  -1 (nothing said) when the database
 * is not reachable: the caller answers with this host's alone. */
int cluster_cmd_ps(struct cluster *cl, struct app *a, struct client *c);
int cluster_cmd_logs(struct cluster *cl, const char *app, long n,
		     struct client *c);

/* "logs -f APP [-n N]" in a cluster: the last N lines of every host of
 * the app's group, then their new lines as they come, each with its
 * host after the time, until the client hangs up.  -1 (nothing said)
 * when the database is not reachable: the caller follows this host's
 * log alone.  (clusterjobs.c) */
int cluster_cmd_logs_follow(struct cluster *cl, const char *app, long n,
			    struct client *c);

/* "cluster rm HOST": that host stops the apps the cluster placed there,
 * then deletes its row and stays out, across restarts (a file
 * STATE/cluster/removed), until "cluster join" is run on it; the client
 * hears when it left (or that it is down and leaves when it comes
 * back).  Not the host that answers. */
void cluster_cmd_rm(struct cluster *cl, const char *host, struct client *c);
/* "cluster join": a host removed by "cluster rm" joins again (its groups'
 * apps start again).  An error on a host that is in the cluster. */
void cluster_cmd_join(struct cluster *cl, struct client *c);

/* 1 when this host is in the cluster and its database answers. */
int cluster_joined(const struct cluster *cl);

/*
 * A start, stop, restart or scale ("TYPE=N" in argv) done here by a
 * command: stored as the state every host of the app's group converges
 * to (restarts roll, host by host).  Nothing without a cluster, or for
 * an app the cluster does not know; an error is logged.
 *
 * With c (only when cluster_joined()): the command's client hears each
 * host of the group as it applies it (done, failed and why, down) and
 * the answer fails if a live host failed.  For "stop" the caller has
 * stopped the app here without c; for the others the deploy started
 * here with c hands c over when it ends (on_deploy_end); a failed one
 * answers c itself.
 */
void cluster_app_op(struct cluster *cl, const char *app, const char *op,
		    int argc, char **argv, struct client *c);

/*
 * Before a command that changes what the cluster runs (deploy, config
 * set/unset, start, stop, restart, scale, rollback) while the database
 * is unreachable: 1 if the command waits here (its client hears why,
 * and progress), at most cluster_wait; then it runs, through
 * redo(arg, c, argc, argv), or fails with nothing changed.  0: run it
 * now (no cluster, joined, or an other command).
 */
int cluster_gate(struct cluster *cl, struct client *c, int argc,
		 char **argv,
		 void (*redo)(void *arg, struct client *c, int argc,
			      char **argv),
		 void *arg);

#endif
