/*
 * domains: the hosts an app answers beyond NAME.DOMAIN and its app.yaml
 * hosts (domains:add, domains:remove), and maintenance mode
 * (maintenance:on, maintenance:off).  Both take effect at once, in the
 * router's table (liveroute.h), with no redeploy and no nginx reload,
 * and are kept in the app's folder: ROOT/apps/NAME/domains (one host a
 * line) and ROOT/apps/NAME/maintenance (there while it is on), so they
 * follow the app through engine restarts and apps:rename (export leaves
 * them out: the host importing it may route those hosts elsewhere).
 *
 * A host follows the host name rules (RFC 1123 labels of letters,
 * digits and '-', not starting or ending with '-', 1-63 characters each,
 * at most 253 in all, at least two labels), lower-cased, without a port
 * or a trailing dot; "*.example.com" is a wildcard.  A host another app
 * owns is refused, naming that app.
 */
#ifndef BERTH_DOMAINS_H
#define BERTH_DOMAINS_H

#include <stddef.h>

struct app;
struct client;

#define DOMAINS_MAX 64		/* hosts domains:add gives one app */
#define DOMAIN_HOST_MAX 253

/* Read a's domains and maintenance flag from its folder (app start);
 * a line that is not a valid host is logged and skipped. */
void domains_load(struct app *a);

/* in as a host as the table keeps it, into out (DOMAIN_HOST_MAX + 1
 * bytes); ERR_INVALID with error_last() ("invalid host 'x': ...") if it
 * breaks the rules above. */
int domain_norm(const char *in, char *out);

/* "domains APP": every host the app answers, one a line, and where it
 * comes from. */
void domains_cmd_list(struct app *a, struct client *c);
/* "domains:add APP HOST...", "domains:remove APP HOST...",
 * "domains:clear APP": all or nothing. */
void domains_cmd_add(struct app *a, int argc, char **argv, struct client *c);
void domains_cmd_remove(struct app *a, int argc, char **argv,
			struct client *c);
void domains_cmd_clear(struct app *a, struct client *c);
/* "maintenance:on APP", "maintenance:off APP": the table changes at once;
 * c is answered once nginx has it (or its deadline passed: c is told). */
void domains_cmd_maintenance(struct app *a, int on, struct client *c);

#endif
