/*
 * hello_proof.h - proof that a device holds the private key of the public
 * key it registers with (subprotocol kaa.v2, docs/protocol.md "Proof of
 * possession"). The server's first frame carries a fresh nonce; the
 * device's Hello carries proof = ECDSA P-256 / SHA-256 signature (DER) of
 *
 *   "kaa.v2 hello proof" 0x00 || nonce (32 bytes)
 *     || SHA-256(public_key bytes) || SHA-256(application_token bytes)
 *
 * so a proof is good for one connection (the nonce), one key and one
 * application, and replaying it anywhere else fails.
 *
 * The server's nonce is HMAC-SHA256(node secret, session id): fresh per
 * connection (session ids never repeat in a process and the secret is
 * random per process), unpredictable, and nothing to store per session.
 *
 * SDK-friendly: OpenSSL only, no allocation of ours, no logging, no global
 * state. Any thread; keys are borrowed.
 */
#ifndef KAA_HELLO_PROOF_H
#define KAA_HELLO_PROOF_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define KAA__PROOF_NONCE_BYTES 32
#define KAA__PROOF_SECRET_BYTES 32
#define KAA__PROOF_SIG_MAX 128

/* nonce = HMAC-SHA256(secret, big-endian session id). KAA_OK or
 * KAA_ERR_INTERNAL (OpenSSL failed). */
int kaa__proof_nonce(const uint8_t secret[KAA__PROOF_SECRET_BYTES], uint64_t session_id,
		     uint8_t nonce[KAA__PROOF_NONCE_BYTES]);

/* Signs the proof message with key (an EC P-256 private key) into sig
 * (cap bytes, KAA__PROOF_SIG_MAX is enough); *siglen its length.
 * pub is the DER public key the Hello carries. KAA_OK, KAA_ERR_INVAL (not a
 * P-256 key, or cap too small), KAA_ERR_NOMEM, KAA_ERR_INTERNAL. */
int kaa__proof_sign(EVP_PKEY *key, const uint8_t nonce[KAA__PROOF_NONCE_BYTES], const uint8_t *pub,
		    size_t publen, const char *app_token, uint8_t *sig, size_t cap, size_t *siglen);

/* Verifies sig against pub (DER SubjectPublicKeyInfo of an EC P-256 key).
 * KAA_OK when it is the proof for this nonce, key and application;
 * KAA_ERR_INVAL when pub is not such a key or sig does not verify (both are
 * the device's fault: the server answers INVALID_PROOF); KAA_ERR_NOMEM. */
int kaa__proof_verify(const uint8_t *pub, size_t publen,
		      const uint8_t nonce[KAA__PROOF_NONCE_BYTES], const char *app_token,
		      const uint8_t *sig, size_t siglen);

#endif
