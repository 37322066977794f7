/*
 * kaa-operator - the Kubernetes operator for KaaCluster resources.
 *
 * Placeholder until issue #3 builds the operator: it parses --help and
 * --version so that the image, the chart and the scripts that call the
 * binary have something that behaves like the real command line, and
 * refuses to run anything else (usage on stderr, exit 2).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef KAA_VERSION
#define KAA_VERSION "0.0.0-dev"
#endif

static void usage(FILE *out)
{
	fprintf(out, "usage: kaa-operator [--help] [--version]\n"
		     "\n"
		     "The Kaa Kubernetes operator for KaaCluster resources.\n"
		     "Not implemented yet in this build: the operator is tracked\n"
		     "by issue #3.\n"
		     "\n"
		     "  -h, --help     print this help and exit\n"
		     "  -V, --version  print the version and exit\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case 'h': usage(stdout); return EXIT_SUCCESS;
		case 'V': printf("kaa-operator %s\n", KAA_VERSION); return EXIT_SUCCESS;
		default: usage(stderr); return 2;
		}
	}
	/* No arguments, or positional ones: nothing to run yet. */
	usage(stderr);
	return 2;
}
