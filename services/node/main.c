/*
 * kaa-node - one binary for the control, operations and bootstrap
 * services (see config.h for flags).
 *
 * Threads: the main thread owns start-up and shutdown and waits for
 * signals (blocked everywhere else); the coordination layer runs its own
 * threads (registry, election, lease keepers, watches); each enabled
 * service port has an HTTP server with its own threads.
 */
#include "node/config.h"
#include "node/node.h"

#include "base/error.h"
#include "base/log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv)
{
	kaa_node_config cfg;
	char err[512];
	int rc = kaa__node_config_parse(argc, argv, environ, &cfg, err, sizeof(err));

	if (rc == KAA_CONFIG_HELP) {
		fputs(kaa__node_usage(), stdout);
		kaa__node_config_clear(&cfg);
		return 0;
	}
	if (rc == KAA_CONFIG_VERSION) {
		printf("kaa-node %s\n", KAA_NODE_VERSION);
		kaa__node_config_clear(&cfg);
		return 0;
	}
	if (rc != KAA_CONFIG_OK) {
		fprintf(stderr, "kaa-node: %s\n%s", err, kaa__node_usage());
		kaa__node_config_clear(&cfg);
		return 2;
	}
	kaa__log_level = kaa__log_level_parse(cfg.log_level);

	/* Signals go to the main thread only: block them before any thread starts. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	kaa__node *node = NULL;
	rc = kaa__node_start(&cfg, &node);
	if (rc != KAA_OK) {
		KAA_ERROR("node", "start_failed err=%s", kaa_strerror(rc));
		kaa__node_config_clear(&cfg);
		return 1;
	}
	for (;;) {
		struct timespec ts = {.tv_sec = 1, .tv_nsec = 0};
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			KAA_INFO("node", "shutting_down signal=%s",
				 sig == SIGTERM ? "TERM" : "INT");
			break;
		}
		kaa__node_tick(node);
	}
	kaa__node_stop(node);
	kaa__node_config_clear(&cfg);
	KAA_INFO("node", "stopped");
	return 0;
}
