// fuzz-sources: lib/base/alloc.c lib/base/base64.c lib/base/clock.c operator/kubeconfig.c lib/base/log.c lib/base/error.c
// fuzz-pkgs: yaml-0.1 yajl
/*
 * A kubeconfig is YAML written by people and tools: any bytes must load or
 * be refused with an error, never crash. The loader reads a file, so each
 * input is written to one first.
 */
#include "base/error.h"
#include "kube_client.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	if (!path[0]) {
		snprintf(path, sizeof(path), "/tmp/fuzz-kubeconfig-%d", (int)getpid());
		/* no in-cluster fallback: only the file is read */
		unsetenv("KUBERNETES_SERVICE_HOST");
	}
	FILE *f = fopen(path, "wb");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	kaa__kube_config *c = NULL;
	if (kaa__kube_config_load(path, &c) == KAA_OK) {
		if (!c || !c->server)
			abort(); /* success means a server to talk to */
		kaa__kube_config_free(c);
	}
	return 0;
}
