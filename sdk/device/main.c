/*
 * kaa-device - the device simulator: runs one or many simulated devices
 * (one libkaa client each, all on one runtime) in one process.
 *
 *   kaa-device --bootstrap HOST:PORT[,...] --app-token T [--count N]
 *              [--duration S] [--state-dir D] [--profile JSON | --profile-file F]
 *              [--log-rate R] [--log-record JSON] [--log-total N]
 *              [--until-acked] [--subscribe TOPIC] [--ca FILE] [--fsync]
 *              [--owner ID --owner-token TOK] [--attach-endpoint-token TOK]
 *              [--endpoint-token-prefix P] [--send-event FQN]
 *              [--event-interval-ms N] [--event-count N] [--event-target KEYHASH]
 *              [--keepalive-ms N|off] [--liveness-timeout-ms N|off]
 *              [--connect-timeout-ms N] [--verbose] [--json]
 *
 * Device i keeps its key pair, state and log queue in D/dev-<i>, so a
 * second run with the same --state-dir continues as the same devices (and
 * uploads what the first run left queued). In --log-record, "{seq}" is
 * replaced by a per-device counter that continues across runs (kept in
 * D/dev-<i>/seq) and "{device}" by the device index.
 *
 * Owners and events: with --owner every device attaches itself to that
 * owner after its first HelloAck; device 0 then attaches the endpoint of
 * --attach-endpoint-token. With --send-event every device, once attached
 * (once registered without --owner), sends an event every
 * --event-interval-ms with body {"n":<1,2,...>,"sent_ms":<wall clock ms>};
 * received events are timed against sent_ms (latency percentiles in
 * --json).
 *
 * SIGTERM/SIGINT stop cleanly; --json prints one summary object at the end.
 * SIGHUP re-reads --profile-file and sends the profile to the server.
 * Bad flags: usage on stderr, exit 2.
 *
 * The modules are listed in device.h.
 */
#include "device.h"

int main(int argc, char **argv)
{
	kaa__sim_config cfg;
	int rc;

	if (!kaa__sim_flags_parse(argc, argv, &cfg, &rc))
		return rc;
	kaa__sim_output_init(cfg.verbose);
	rc = kaa__sim_fleet_run(&cfg);
	kaa__sim_config_clear(&cfg);
	return rc;
}
