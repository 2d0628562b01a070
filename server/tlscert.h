/*
 * tlscert: X.509 certificates and keys in PEM (OpenSSL's libcrypto),
 * for the HTTPS side of berth (certs.h) and nginx's placeholder.
 *
 * Input here is outside input (a user's certs:add, an ACME server's
 * answer): every function bounds what it reads, checks all of it and
 * fails with a one-line error_last() (ERR_INVALID) that names what is
 * wrong ("the key does not match the certificate").
 */
#ifndef BERTH_TLSCERT_H
#define BERTH_TLSCERT_H

#include <stddef.h>
#include <time.h>

#include "util.h"

#define TLSCERT_PEM_MAX (256 * 1024)
#define TLSCERT_MAX_NAMES 100

struct tlscert_info {
	char issuer[300];	/* the issuer's O and CN, "-" if none */
	char subject[256];	/* the subject's CN, "-" if none */
	time_t not_before;
	time_t not_after;
	struct strv names;	/* DNS names (SAN, else the CN), lower case */
	int self_signed;
};

void tlscert_info_release(struct tlscert_info *ti);

/*
 * Check a chain (leaf first, then intermediates) and its private key, both
 * PEM text: the leaf parses, the key parses and matches it.  out (may be
 * NULL) gets the leaf's facts.  ERR_INVALID otherwise.
 */
int tlscert_check(const char *chain, size_t chain_len, const char *key,
		  size_t key_len, struct tlscert_info *out);

/*
 * Split PEM text holding certificates and one private key (in any order)
 * into the certificates (in their order) and the key.  ERR_INVALID if
 * there is no certificate or not exactly one key.
 */
int tlscert_split(const char *pem, size_t len, struct buf *chain,
		  struct buf *key);

/*
 * A self-signed certificate and key (EC P-256) for cn, valid for days,
 * written to cert_path and key_path (0600), each by rename.
 */
int tlscert_selfsigned(const char *cn, int days, const char *cert_path,
		       const char *key_path);

#endif
