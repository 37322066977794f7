/*
 * kaa-device - the device simulator CLI (many devices in one process).
 *
 * Placeholder until issue #5 builds the simulator: it parses --help and
 * --version so that the image and the scripts that call the binary have
 * something that behaves like the real command line, and refuses to run
 * anything else (usage on stderr, exit 2).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef KAA_VERSION
#define KAA_VERSION "0.0.0-dev"
#endif

static void usage(FILE *out)
{
	fprintf(out, "usage: kaa-device [--help] [--version]\n"
		     "\n"
		     "The Kaa device simulator: runs many devices in one process.\n"
		     "Not implemented yet in this build: the device simulator is\n"
		     "tracked by issue #5.\n"
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
		case 'V': printf("kaa-device %s\n", KAA_VERSION); return EXIT_SUCCESS;
		default: usage(stderr); return 2;
		}
	}
	/* No arguments, or positional ones: nothing to run yet. */
	usage(stderr);
	return 2;
}
