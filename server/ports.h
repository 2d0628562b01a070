/*
 * ports: the pool of loopback TCP ports for app processes.  Each app owns
 * two ports per web process (its nginx slots), kept for the app's life so
 * its upstream never changes on a routine deploy.
 */
#ifndef BERTH_PORTS_H
#define BERTH_PORTS_H

struct ports {
	int min, max;
	unsigned char *used;	/* one byte per port in [min, max] */
};

void ports_init(struct ports *p, int min, int max);
void ports_release(struct ports *p);
/* A port not in use by berth and bindable on 127.0.0.1 now; -1 if none. */
int ports_take(struct ports *p);
/* Reserve a port from saved state (ignored if outside the pool). */
void ports_mark(struct ports *p, int port);
void ports_put(struct ports *p, int port);
/* 1 if nothing listens on 127.0.0.1:port (we could bind it). */
int port_bindable(int port);

#endif
