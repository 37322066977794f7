/*
 * minimal_device.c - the smallest useful Kaa device: copy it, then replace
 * the log record with your sensor readings and the callbacks with what your
 * device does with its configuration and notifications.
 *
 * Build against the kaa_profile.h that the control service generates for
 * your SDK profile (GET .../sdk-profiles/{id}/sdk): put it on the include
 * path and the application token and bootstrap servers come from it.
 * Without it, pass them on the command line:
 *
 *     minimal_device [BOOTSTRAP_HOST:PORT APP_TOKEN] [STATE_DIR]
 *
 * It runs until SIGINT/SIGTERM, uploading one record a second.
 */
#if defined(__has_include)
#if __has_include("kaa_profile.h")
#include "kaa_profile.h"
#endif
#endif

#include <kaa/kaa.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Callbacks run on the SDK's network thread: keep them short. */
static void on_registered(kaa_client *c, const char *key_hash, bool created, void *user)
{
	(void)c;
	(void)user;
	printf("registered as %s%s\n", key_hash, created ? " (new endpoint)" : "");
}

static void on_configuration(kaa_client *c, const char *json, size_t len, const char *hash,
			     void *user)
{
	(void)c;
	(void)user;
	(void)hash;
	printf("configuration: %.*s\n", (int)len, json);
}

static void on_notification(kaa_client *c, const char *topic, uint64_t seq, const char *body,
			    void *user)
{
	(void)c;
	(void)user;
	printf("notification %s#%llu: %s\n", topic[0] ? topic : "(unicast)",
	       (unsigned long long)seq, body);
}

static void on_error(kaa_client *c, int err, int code, const char *msg, void *user)
{
	(void)c;
	(void)user;
	fprintf(stderr, "kaa: %s (%d/%d): %s\n", kaa_strerror(err), err, code, msg);
}

int main(int argc, char **argv)
{
#ifdef KAA_APPLICATION_TOKEN
	static const char *boot[] = KAA_BOOTSTRAP_SERVERS;
	size_t nboot = KAA_BOOTSTRAP_SERVER_COUNT;
	const char *token = KAA_APPLICATION_TOKEN;
	const char *state_dir = argc > 1 ? argv[1] : "./kaa-state";
#else
	const char *boot[1];
	size_t nboot = 1;
	const char *token;
	const char *state_dir;
	if (argc < 3) {
		fprintf(stderr, "usage: %s BOOTSTRAP_HOST:PORT APP_TOKEN [STATE_DIR]\n", argv[0]);
		return 2;
	}
	boot[0] = argv[1];
	token = argv[2];
	state_dir = argc > 3 ? argv[3] : "./kaa-state";
#endif
	static const kaa_callbacks cb = {
		.on_registered = on_registered,
		.on_configuration = on_configuration,
		.on_notification = on_notification,
		.on_error = on_error,
	};
	kaa_client_options opts = {
		.application_token = token,
		.bootstrap_servers = boot,
		.bootstrap_count = nboot,
		.state_dir = state_dir,
		.callbacks = &cb,
	};
	kaa_runtime *rt = NULL;
	kaa_client *c = NULL;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, also into a file */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	rc = kaa_runtime_new(&rt);
	if (rc == KAA_OK)
		rc = kaa_client_new(rt, &opts, &c);
	if (rc == KAA_OK)
		rc = kaa_client_start(c);
	if (rc != KAA_OK) {
		fprintf(stderr, "cannot start: %s\n", kaa_strerror(rc));
		goto out;
	}
	for (unsigned n = 0; !stop; n++) {
		char rec[64];
		int len = snprintf(rec, sizeof(rec), "{\"reading\":%u}", n);
		/* queued on disk at once; uploaded when online; never lost */
		rc = kaa_client_log_add(c, rec, (size_t)len);
		if (rc != KAA_OK)
			fprintf(stderr, "log record not queued: %s\n", kaa_strerror(rc));
		struct timespec one_second = {1, 0};
		nanosleep(&one_second, NULL);
	}
	rc = KAA_OK;
out:
	kaa_client_free(c);
	kaa_runtime_free(rt);
	return rc == KAA_OK ? 0 : 1;
}
