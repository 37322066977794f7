/* The endpoint's key pair and state files in its state directory. */
#include "sdk_internal.h"

#include "base/base64.h"
#include "base/error.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A PEM private key is well under this; a bigger file is not ours. */
#define KEY_FILE_MAX (16 * 1024)
/* One line per stream plus a few fields: 1024 streams of ~300 bytes. */
#define STATE_FILE_MAX (512 * 1024)

static int der_of(EVP_PKEY *pk, uint8_t **der, size_t *der_len)
{
	unsigned char *p = NULL;
	int n = i2d_PUBKEY(pk, &p);

	if (n <= 0)
		return KAA_ERR_INTERNAL;
	*der = malloc((size_t)n);
	if (!*der) {
		OPENSSL_free(p);
		return KAA_ERR_NOMEM;
	}
	memcpy(*der, p, (size_t)n);
	*der_len = (size_t)n;
	OPENSSL_free(p);
	return KAA_OK;
}

int kaa__sdk_key_load_or_create(const char *dir, EVP_PKEY **key, uint8_t **der, size_t *der_len)
{
	char path[PATH_MAX];
	char *pem = NULL;
	size_t pemlen = 0;
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	int rc;

	*der = NULL;
	if (key)
		*key = NULL;
	if (snprintf(path, sizeof(path), "%s/key.pem", dir) >= (int)sizeof(path))
		return KAA_ERR_INVAL;
	rc = kaa__sdk_read_file(path, KEY_FILE_MAX, &pem, &pemlen);
	if (rc == KAA_OK) {
		bio = BIO_new_mem_buf(pem, (int)pemlen);
		pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
		rc = pk ? der_of(pk, der, der_len) : KAA_ERR_IO;
		goto out;
	}
	if (rc != KAA_ERR_NOTFOUND)
		goto out;
	/* first start: a new EC P-256 key pair, kept for the device's life */
	pk = EVP_EC_gen("P-256");
	bio = BIO_new(BIO_s_mem());
	if (!pk || !bio || !PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL)) {
		rc = KAA_ERR_INTERNAL;
		goto out;
	}
	char *data = NULL;
	long dl = BIO_get_mem_data(bio, &data);
	rc = dl > 0 ? kaa__sdk_write_file(path, data, (size_t)dl, 0600, true) : KAA_ERR_INTERNAL;
	if (rc == KAA_OK)
		rc = der_of(pk, der, der_len);
out:
	if (pem)
		OPENSSL_cleanse(pem, pemlen);
	free(pem);
	BIO_free(bio);
	if (rc == KAA_OK && key) {
		*key = pk;
		pk = NULL;
	}
	EVP_PKEY_free(pk);
	return rc;
}

void kaa__sdk_state_clear(kaa__sdk_state *st)
{
	free(st->streams);
	memset(st, 0, sizeof(*st));
}

kaa__stream_pos *kaa__sdk_state_stream(kaa__sdk_state *st, const char *topic_id)
{
	if (strlen(topic_id) >= KAA__ID_MAX)
		return NULL;
	for (size_t i = 0; i < st->n_streams; i++)
		if (strcmp(st->streams[i].topic_id, topic_id) == 0)
			return &st->streams[i];
	if (st->n_streams >= KAA__MAX_STREAMS)
		return NULL;
	if (st->n_streams == st->cap_streams) {
		size_t nc = st->cap_streams ? st->cap_streams * 2 : 4;
		kaa__stream_pos *ns = realloc(st->streams, nc * sizeof(*ns));
		if (!ns)
			return NULL;
		st->streams = ns;
		st->cap_streams = nc;
	}
	kaa__stream_pos *p = &st->streams[st->n_streams++];
	memset(p, 0, sizeof(*p));
	strcpy(p->topic_id, topic_id);
	return p;
}

/* Values are ids without whitespace; a topic id is written as "-" when
 * empty (the unicast stream). */
static void set_field(char *dst, const char *v)
{
	if (strlen(v) < KAA__ID_MAX && !strpbrk(v, " \t\r\n"))
		strcpy(dst, v);
}

int kaa__sdk_state_load(const char *dir, kaa__sdk_state *st)
{
	char path[PATH_MAX];
	char *buf = NULL, *save = NULL;
	int rc;

	kaa__sdk_state_clear(st);
	if (snprintf(path, sizeof(path), "%s/state", dir) >= (int)sizeof(path))
		return KAA_ERR_INVAL;
	rc = kaa__sdk_read_file(path, STATE_FILE_MAX, &buf, NULL);
	if (rc == KAA_ERR_NOTFOUND)
		return KAA_OK;
	if (rc != KAA_OK)
		return rc;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');
		if (!sp)
			continue;
		*sp = '\0';
		const char *v = sp + 1;
		if (strcmp(line, "endpoint_key_hash") == 0) {
			set_field(st->endpoint_key_hash, v);
		} else if (strcmp(line, "session_id") == 0) {
			set_field(st->session_id, v);
		} else if (strcmp(line, "config_hash") == 0) {
			set_field(st->config_hash, v);
		} else if (strcmp(line, "endpoint_access_token") == 0) {
			set_field(st->endpoint_access_token, v);
		} else if (strcmp(line, "event_seq_reserved") == 0) {
			uint64_t r;
			if (sscanf(v, "%" SCNu64, &r) == 1)
				st->event_seq_reserved = r;
		} else if (strcmp(line, "stream") == 0) {
			char topic[KAA__ID_MAX];
			uint64_t seq;
			if (sscanf(v, "%256s %" SCNu64, topic, &seq) != 2)
				continue;
			kaa__stream_pos *p =
				kaa__sdk_state_stream(st, strcmp(topic, "-") ? topic : "");
			if (p) {
				p->last_seq = seq;
			} else if (st->n_streams < KAA__MAX_STREAMS) {
				/* not a refused id or a full table: the growth
				 * failed; a state without this position would
				 * replay the stream, so say so instead */
				rc = KAA_ERR_NOMEM;
				goto out;
			}
		}
	}
	/* every seq below the reservation may have been used before */
	st->event_seq_next = st->event_seq_reserved ? st->event_seq_reserved : 1;
out:
	free(buf);
	if (rc != KAA_OK)
		kaa__sdk_state_clear(st);
	return rc;
}

int kaa__sdk_state_take_event_seq(const char *dir, kaa__sdk_state *st, bool durable, uint64_t *seq)
{
	if (st->event_seq_next == 0)
		st->event_seq_next = st->event_seq_reserved ? st->event_seq_reserved : 1;
	if (st->event_seq_next >= st->event_seq_reserved) {
		uint64_t old = st->event_seq_reserved;
		st->event_seq_reserved = st->event_seq_next + KAA__EVENT_SEQ_BLOCK;
		int rc = kaa__sdk_state_save(dir, st, durable);
		if (rc != KAA_OK) {
			st->event_seq_reserved = old;
			return rc;
		}
	}
	*seq = st->event_seq_next++;
	return KAA_OK;
}

int kaa__sdk_new_access_token(char out[44])
{
	unsigned char r[32];

	out[0] = '\0';
	if (RAND_bytes(r, sizeof(r)) != 1)
		return KAA_ERR_INTERNAL;
	kaa__b64_encode(r, sizeof(r), out, 44, KAA__B64_URL); /* 43 characters */
	OPENSSL_cleanse(r, sizeof(r));
	return KAA_OK;
}

int kaa__sdk_state_save(const char *dir, const kaa__sdk_state *st, bool durable)
{
	char path[PATH_MAX];
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	if (snprintf(path, sizeof(path), "%s/state", dir) >= (int)sizeof(path))
		return KAA_ERR_INVAL;
	f = open_memstream(&buf, &len);
	if (!f)
		return KAA_ERR_NOMEM;
	fprintf(f, "version 1\n");
	if (st->endpoint_key_hash[0])
		fprintf(f, "endpoint_key_hash %s\n", st->endpoint_key_hash);
	if (st->session_id[0])
		fprintf(f, "session_id %s\n", st->session_id);
	if (st->config_hash[0])
		fprintf(f, "config_hash %s\n", st->config_hash);
	if (st->endpoint_access_token[0])
		fprintf(f, "endpoint_access_token %s\n", st->endpoint_access_token);
	if (st->event_seq_reserved)
		fprintf(f, "event_seq_reserved %" PRIu64 "\n", st->event_seq_reserved);
	for (size_t i = 0; i < st->n_streams; i++)
		if (!strpbrk(st->streams[i].topic_id, " \t\r\n"))
			fprintf(f, "stream %s %" PRIu64 "\n",
				st->streams[i].topic_id[0] ? st->streams[i].topic_id : "-",
				st->streams[i].last_seq);
	if (fclose(f) != 0) {
		free(buf);
		return KAA_ERR_NOMEM;
	}
	rc = kaa__sdk_write_file(path, buf, len, 0600, durable);
	free(buf);
	return rc;
}
