/*
 * pgresolve: the host names of a libpq conninfo looked up in a child, so
 * that a connection started from the engine's loop never resolves a name
 * there.
 *
 * libpq resolves each host name with getaddrinfo() inside
 * PQconnectStartParams() and PQconnectPoll(): blocking, for as long as
 * the resolver takes (seconds for each DNS server that does not answer).
 * Here a child (runner_start()) runs getaddrinfo() for the names, and the
 * caller connects with their addresses in libpq's "hostaddr", keeping
 * "host": TLS verify-full, .pgpass and libpq's own messages still use
 * the name.  Each call looks up anew (no cache): an address that changed
 * is used at the next connection.
 *
 * The hosts are the conninfo's host, hostaddr and port (each, when the
 * conninfo has none, from PGHOST, PGHOSTADDR and PGPORT, as libpq does).
 * A unix socket path, a numeric address, a host with its hostaddr, or no
 * host at all needs no lookup.  A name with several addresses becomes
 * one host per address, in getaddrinfo()'s order, which libpq tries one
 * after the other as it would have; a name that does not resolve is left
 * out while another host is left (libpq skips it the same way), and is
 * the error when none is.
 *
 * A conninfo that names a service (service=, or PGSERVICE) may take its
 * hosts from the service file, which only libpq reads: the child reads
 * it (PQconndefaults()) and looks up what it names, so such a conninfo
 * always takes a child.
 *
 * Runs in the engine; the lookup is a forked child of it, its own process
 * group, KILLed at the deadline or on pgresolve_cancel().
 */
#ifndef BERTH_PGRESOLVE_H
#define BERTH_PGRESOLVE_H

struct loop;
struct pgresolve;

/*
 * What to add after the conninfo's keywords in PQconnectStartParams()
 * (with expand_dbname, later keywords win): host and hostaddr, lists of
 * the same length, and port.  NULL: the conninfo's stands (all three
 * NULL: a service whose hosts need no lookup).
 */
struct pgresolve_hosts {
	const char *host;
	const char *hostaddr;
	const char *port;
};

/* result 0 with h (borrowed for the call), or -1 with error_last() and h
 * NULL. */
typedef void (*pgresolve_fn)(void *arg, int result,
			     const struct pgresolve_hosts *h);

/*
 * Look up the host names of conninfo (a connection string or URI, as
 * libpq takes it).
 *
 * 1: nothing to look up: connect with conninfo as it is; fn is never
 * called and *out is NULL.
 * 0: a child looks them up; fn(arg, result, h) is called once, from the
 * loop, never from inside this call.  A failure is one line naming the
 * host: "cannot resolve 'db.example.com': Name or service not known",
 * or, when the child runs past timeout_ms (0: no deadline), "cannot
 * resolve 'db.example.com': no answer within 10 s".  *out is the lookup
 * until fn is called, for pgresolve_cancel(); once fn was called it is
 * gone: forget it there.
 * -1 with error_last(): a conninfo libpq cannot parse, or the child could
 * not start.
 *
 * Needs the reaper (runner.h: the process calls reaper_reap() on
 * SIGCHLD).  conninfo is needed only during the call.
 */
int pgresolve_start(struct pgresolve **out, struct loop *l,
		    const char *conninfo, long timeout_ms, pgresolve_fn fn,
		    void *arg);
/* fn will not be called, and the child is KILLed (NULL: nothing). */
void pgresolve_cancel(struct pgresolve *r);

#endif
