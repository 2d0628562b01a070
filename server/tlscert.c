/* tlscert: see tlscert.h. */
#include "tlscert.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util.h"
#include "banned.h"

void tlscert_info_release(struct tlscert_info *ti)
{
	if (ti)
		strv_release(&ti->names);
}

static int bad(const char *msg)
{
	ERR_clear_error();
	error_set("%s", msg);
	return ERR_INVALID;
}

static time_t asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

/* A DNS name as berth keeps hosts: [a-z0-9_.-], "*." in front at most. */
static int dns_name_ok(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || n > 253)
		return 0;
	if (n > 2 && s[0] == '*' && s[1] == '.')
		i = 2;
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && c != '-' && c != '.' && c != '_')
			return 0;
	}
	return 1;
}

static void push_name(struct strv *sv, const char *s, size_t n)
{
	char name[254];
	size_t i;

	if (!dns_name_ok(s, n) || sv->n >= TLSCERT_MAX_NAMES)
		return;
	for (i = 0; i < n; i++)
		name[i] = (char)tolower((unsigned char)s[i]);
	name[n] = '\0';
	for (i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], name))
			return;
	strv_push(sv, name);
}

static void name_entry(X509_NAME *xn, int nid, char *out, size_t len)
{
	int i = xn ? X509_NAME_get_index_by_NID(xn, nid, -1) : -1;
	ASN1_STRING *s;
	const unsigned char *p;
	int n, k;

	out[0] = '\0';
	if (i < 0)
		return;
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(xn, i));
	p = ASN1_STRING_get0_data(s);
	n = ASN1_STRING_length(s);
	for (k = 0; k < n && (size_t)k + 1 < len; k++)
		out[k] = p[k] >= 0x20 && p[k] < 0x7f ? (char)p[k] : '?';
	out[k] = '\0';
}

static void fill_info(X509 *x, struct tlscert_info *ti)
{
	X509_NAME *is = X509_get_issuer_name(x);
	X509_NAME *su = X509_get_subject_name(x);
	GENERAL_NAMES *san;
	char o[128], cn[128];
	int i;

	memset(ti, 0, sizeof(*ti));
	name_entry(is, NID_organizationName, o, sizeof(o));
	name_entry(is, NID_commonName, cn, sizeof(cn));
	if (o[0] && cn[0] && strcmp(o, cn))
		snprintf(ti->issuer, sizeof(ti->issuer), "%s, %s", o, cn);
	else
		snprintf(ti->issuer, sizeof(ti->issuer), "%s",
			 cn[0] ? cn : o[0] ? o : "-");
	name_entry(su, NID_commonName, cn, sizeof(cn));
	snprintf(ti->subject, sizeof(ti->subject), "%s", cn[0] ? cn : "-");
	ti->not_before = asn1_time(X509_get0_notBefore(x));
	ti->not_after = asn1_time(X509_get0_notAfter(x));
	ti->self_signed = X509_NAME_cmp(is, su) == 0;
	san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; san && i < sk_GENERAL_NAME_num(san); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);

		if (g->type == GEN_DNS)
			push_name(&ti->names,
				  (const char *)ASN1_STRING_get0_data(g->d.dNSName),
				  (size_t)ASN1_STRING_length(g->d.dNSName));
	}
	GENERAL_NAMES_free(san);
	if (!ti->names.n && cn[0])
		push_name(&ti->names, cn, strlen(cn));
}

int tlscert_check(const char *chain, size_t chain_len, const char *key,
		  size_t key_len, struct tlscert_info *out)
{
	BIO *cb = NULL, *kb = NULL;
	X509 *leaf = NULL, *extra = NULL;
	EVP_PKEY *pk = NULL;
	int ret = ERR_INVALID;

	if (out)
		memset(out, 0, sizeof(*out));
	if (chain_len > TLSCERT_PEM_MAX || key_len > TLSCERT_PEM_MAX)
		return bad("the certificate or key is too large");
	cb = BIO_new_mem_buf(chain, (int)chain_len);
	kb = BIO_new_mem_buf(key, (int)key_len);
	if (!cb || !kb) {
		bad("out of memory");
		goto out;
	}
	leaf = PEM_read_bio_X509(cb, NULL, NULL, NULL);
	if (!leaf) {
		bad("no certificate in PEM format (-----BEGIN CERTIFICATE-----)");
		goto out;
	}
	/* the rest of the chain must parse too */
	while ((extra = PEM_read_bio_X509(cb, NULL, NULL, NULL))) {
		X509_free(extra);
		extra = NULL;
	}
	ERR_clear_error();
	pk = PEM_read_bio_PrivateKey(kb, NULL, NULL, (void *)"");
	if (!pk) {
		bad("no private key in PEM format (or it is encrypted)");
		goto out;
	}
	if (X509_check_private_key(leaf, pk) != 1) {
		bad("the key does not match the certificate");
		goto out;
	}
	if (out)
		fill_info(leaf, out);
	ret = 0;
out:
	ERR_clear_error();
	X509_free(leaf);
	EVP_PKEY_free(pk);
	BIO_free(cb);
	BIO_free(kb);
	return ret;
}

int tlscert_split(const char *pem, size_t len, struct buf *chain,
		  struct buf *key)
{
	static const char begin[] = "-----BEGIN ";
	const char *p = pem, *end = pem + len;
	int nkeys = 0, ncerts = 0;

	if (len > TLSCERT_PEM_MAX)
		return bad("the certificate and key are too large");
	while (p < end) {
		const char *b = memmem(p, (size_t)(end - p), begin,
				       sizeof(begin) - 1);
		const char *label, *e, *stop;
		size_t ll;

		if (!b)
			break;
		label = b + sizeof(begin) - 1;
		e = memchr(label, '-', (size_t)(end - label));
		if (!e)
			break;
		ll = (size_t)(e - label);
		/* the block ends after "-----END LABEL-----" */
		stop = memmem(e, (size_t)(end - e), "-----END ", 9);
		if (!stop)
			return bad("a PEM block has no END line");
		stop = memmem(stop + 9, (size_t)(end - stop - 9), "-----", 5);
		if (!stop)
			return bad("a PEM block has no END line");
		stop += 5;
		if (ll == 11 && !memcmp(label, "CERTIFICATE", 11)) {
			buf_add(chain, b, (size_t)(stop - b));
			buf_addstr(chain, "\n");
			ncerts++;
		} else if (ll >= 11 && !memcmp(label + ll - 11, "PRIVATE KEY",
					       11)) {
			buf_add(key, b, (size_t)(stop - b));
			buf_addstr(key, "\n");
			nkeys++;
		}
		p = stop;
	}
	if (!ncerts)
		return bad("no certificate in PEM format (-----BEGIN CERTIFICATE-----)");
	if (nkeys != 1)
		return bad(nkeys ? "more than one private key given" :
			   "no private key in PEM format (-----BEGIN PRIVATE KEY-----)");
	return 0;
}

static int pem_out(const char *path, int (*wr)(BIO *, void *), void *obj,
		   mode_t mode)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int ret = -1;

	if (!b || !wr(b, obj)) {
		error_set("cannot write PEM for '%s'", path);
		goto out;
	}
	n = BIO_get_mem_data(b, &data);
	ret = write_file_atomic(path, data, (size_t)n, mode);
out:
	BIO_free(b);
	ERR_clear_error();
	return ret;
}

static int wr_x509(BIO *b, void *x)
{
	return PEM_write_bio_X509(b, x);
}

static int wr_key(BIO *b, void *k)
{
	return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

int tlscert_selfsigned(const char *cn, int days, const char *cert_path,
		       const char *key_path)
{
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	X509_NAME *n;
	int ret = -1;

	pk = EVP_EC_gen("P-256");
	x = X509_new();
	if (!pk || !x)
		goto fail;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
	X509_set_pubkey(x, pk);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	if (!X509_sign(x, pk, EVP_sha256()))
		goto fail;
	if (pem_out(key_path, wr_key, pk, 0600) < 0 ||
	    pem_out(cert_path, wr_x509, x, 0644) < 0)
		goto out;
	ret = 0;
	goto out;
fail:
	error_set("cannot make a self-signed certificate");
out:
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(pk);
	return ret;
}
