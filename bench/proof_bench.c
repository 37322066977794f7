/*
 * proof_bench - what proof of possession (lib/proto/hello_proof.c) costs a
 * node per Hello, beside what a wss session costs it anyway, measured in
 * the same run in one process on one core (no network: memory BIO pairs):
 *   - TLS 1.3 handshakes/s, server certificate EC P-256 (a wss handshake's
 *     cryptography: what every device connection already pays);
 *   - the same with a client certificate verified (mTLS);
 *   - proof verifications/s (kaa__proof_verify: parse the DER key, ECDSA
 *     P-256 verify) and, for the device side, proof signatures/s.
 * The ratios say how much a proven Hello adds to a wss handshake.
 * Usage: proof_bench [--seconds S]   (each figure runs S seconds, default 2)
 */
#include "base/error.h"
#include "proto/hello_proof.h"

#include <getopt.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A self-signed P-256 certificate for key (the CA of the run). */
static X509 *self_signed(EVP_PKEY *key, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	if (!x || !n)
		return NULL;
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, key);
	X509_NAME_free(n);
	if (!X509_sign(x, key, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

typedef struct tls_fx {
	SSL_CTX *srv, *cli;
} tls_fx;

static int tls_fx_init(tls_fx *f, bool mutual)
{
	EVP_PKEY *sk = EVP_EC_gen("P-256"), *ck = EVP_EC_gen("P-256");
	X509 *sc = sk ? self_signed(sk, "server") : NULL,
	     *cc = ck ? self_signed(ck, "client") : NULL;
	if (!sc || !cc)
		return -1;
	f->srv = SSL_CTX_new(TLS_server_method());
	f->cli = SSL_CTX_new(TLS_client_method());
	if (!f->srv || !f->cli || SSL_CTX_use_certificate(f->srv, sc) != 1 ||
	    SSL_CTX_use_PrivateKey(f->srv, sk) != 1)
		return -1;
	X509_STORE_add_cert(SSL_CTX_get_cert_store(f->cli), sc);
	SSL_CTX_set_verify(f->cli, SSL_VERIFY_PEER, NULL);
	/* no session resumption: every handshake is a full one, as for a
	 * device that reconnects after a long time */
	SSL_CTX_set_session_cache_mode(f->srv, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(f->srv, 0);
	if (mutual) {
		if (SSL_CTX_use_certificate(f->cli, cc) != 1 ||
		    SSL_CTX_use_PrivateKey(f->cli, ck) != 1)
			return -1;
		X509_STORE_add_cert(SSL_CTX_get_cert_store(f->srv), cc);
		SSL_CTX_set_verify(f->srv, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	X509_free(sc);
	X509_free(cc);
	EVP_PKEY_free(sk);
	EVP_PKEY_free(ck);
	return 0;
}

/* One full handshake between a client and a server over a BIO pair. */
static int handshake(tls_fx *f)
{
	SSL *s = SSL_new(f->srv), *c = SSL_new(f->cli);
	BIO *sb = NULL, *cb = NULL;
	int done = -1;
	if (!s || !c || !BIO_new_bio_pair(&sb, 0, &cb, 0))
		goto out;
	SSL_set_bio(s, sb, sb);
	SSL_set_bio(c, cb, cb);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	for (int i = 0; i < 100; i++) {
		int rc = SSL_do_handshake(c), rs = SSL_do_handshake(s);
		if (rc == 1 && rs == 1) {
			done = 0;
			break;
		}
		if ((rc != 1 && SSL_get_error(c, rc) != SSL_ERROR_WANT_READ) ||
		    (rs != 1 && SSL_get_error(s, rs) != SSL_ERROR_WANT_READ))
			break;
	}
out:
	SSL_free(s);
	SSL_free(c);
	ERR_clear_error();
	return done;
}

static double rate_tls(bool mutual, double secs)
{
	tls_fx f = {0};
	long n = 0;
	if (tls_fx_init(&f, mutual) != 0)
		return -1;
	double t0 = now_s(), t;
	while ((t = now_s()) - t0 < secs) {
		if (handshake(&f) != 0)
			return -1;
		n++;
	}
	SSL_CTX_free(f.srv);
	SSL_CTX_free(f.cli);
	return (double)n / (t - t0);
}

int main(int argc, char **argv)
{
	double secs = 2;
	static const struct option opts[] = {{"seconds", required_argument, NULL, 's'},
					     {NULL, 0, NULL, 0}};
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		if (o != 's' || (secs = atof(optarg)) <= 0) {
			fprintf(stderr, "usage: proof_bench [--seconds S]\n");
			return 2;
		}
	}
	EVP_PKEY *k = EVP_EC_gen("P-256");
	uint8_t pub[256], *pp = pub, nonce[32], secret[32] = {1}, sig[KAA__PROOF_SIG_MAX];
	size_t sl = 0;
	int pl = k ? i2d_PUBKEY(k, &pp) : -1;
	if (pl <= 0 || kaa__proof_nonce(secret, 1, nonce) != KAA_OK)
		return 1;

	long nv = 0, ns = 0;
	double t0 = now_s(), t;
	while ((t = now_s()) - t0 < secs) {
		if (kaa__proof_sign(k, nonce, pub, (size_t)pl, "app-token", sig, sizeof(sig),
				    &sl) != KAA_OK)
			return 1;
		ns++;
	}
	double sign_rate = (double)ns / (t - t0);
	t0 = now_s();
	while ((t = now_s()) - t0 < secs) {
		if (kaa__proof_verify(pub, (size_t)pl, nonce, "app-token", sig, sl) != KAA_OK)
			return 1;
		nv++;
	}
	double verify_rate = (double)nv / (t - t0);
	double tls = rate_tls(false, secs), mtls = rate_tls(true, secs);
	if (tls <= 0 || mtls <= 0) {
		fprintf(stderr, "proof_bench: TLS handshake failed\n");
		return 1;
	}
	printf("## proof of possession vs TLS handshakes (one core, in memory, %.0f s each)\n",
	       secs);
	printf("| figure | per second | microseconds each | vs one TLS handshake |\n");
	printf("|---|--:|--:|--:|\n");
	printf("| TLS 1.3 handshake, P-256 server cert (wss; both ends) | %.0f | %.0f | 1.00 |\n",
	       tls, 1e6 / tls);
	printf("| TLS 1.3 handshake with client cert (mTLS; both ends) | %.0f | %.0f | %.2f |\n",
	       mtls, 1e6 / mtls, tls / mtls);
	printf("| proof verification (node, per Hello) | %.0f | %.0f | %.2f |\n", verify_rate,
	       1e6 / verify_rate, tls / verify_rate);
	printf("| proof signature (device, per connection) | %.0f | %.0f | %.2f |\n", sign_rate,
	       1e6 / sign_rate, tls / sign_rate);
	printf("wss + proof costs the node %.2fx a plain wss handshake's cryptography\n",
	       (1e6 / tls + 1e6 / verify_rate) / (1e6 / tls));
	EVP_PKEY_free(k);
	return 0;
}
