/*
 * kubeconfig.c - loading kaa__kube_config from a kubeconfig file (libyaml
 * document API) or from the in-cluster service-account mount.
 *
 * Only what the operator needs of the kubeconfig format is understood:
 * current-context, its cluster (server, certificate-authority[-data]), its
 * user (token, tokenFile, client-certificate[-data], client-key[-data])
 * and namespace. Exec plugins and auth providers are refused with a clear
 * error rather than ignored, since the API would then answer 401 with no
 * hint why. insecure-skip-tls-verify is ignored: TLS is always verified.
 */
#include "kube_internal.h"

#include "base/alloc.h"
#include "base/base64.h"
#include "base/error.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define KUBECONFIG_MAX (1024 * 1024)
#define SA_FILE_MAX (1024 * 1024)
#define SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"

int kaa__kube_read_file(const char *path, size_t max, char **out, size_t *len)
{
	int rc = KAA_OK;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = NULL;
	size_t n = 0;
	struct stat st;

	*out = NULL;
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? KAA_ERR_NOTFOUND : KAA_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = KAA_ERR_IO;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = KAA_ERR_TOO_BIG;
		goto out;
	}
	/* The file may grow between fstat and read: the buffer grows up to max. */
	size_t cap = max + 1 < (size_t)st.st_size + 4096 ? max + 1 : (size_t)st.st_size + 4096;
	buf = kaa__xmalloc(cap);
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = KAA_ERR_IO;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap - 1) {
			if (n >= max) {
				char c;
				if (read(fd, &c, 1) > 0) {
					rc = KAA_ERR_TOO_BIG;
					goto out;
				}
				break;
			}
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			buf = kaa__xrealloc(buf, ncap);
			cap = ncap;
		}
	}
	buf[n] = '\0';
	*out = buf;
	buf = NULL;
	if (len)
		*len = n;
out:
	free(buf);
	close(fd);
	return rc;
}

/* Standard base64 (padding optional, whitespace skipped) into a new
 * NUL-terminated string. KAA_ERR_INVAL on other characters. */
static int b64_decode(const char *in, char **out)
{
	size_t n = strlen(in);
	char *o = kaa__xmalloc(n / 4 * 3 + 4);

	*out = NULL;
	long k = kaa__b64_decode(in, n, o, n / 4 * 3 + 3, KAA__B64_LENIENT);
	if (k < 0) {
		free(o);
		return KAA_ERR_INVAL;
	}
	o[k] = '\0';
	*out = o;
	return KAA_OK;
}

void kaa__kube_config_free(kaa__kube_config *c)
{
	if (!c)
		return;
	free(c->server);
	free(c->ca_file);
	free(c->ca_data);
	if (c->token)
		explicit_bzero(c->token, strlen(c->token));
	free(c->token);
	free(c->token_file);
	free(c->client_cert_data);
	if (c->client_key_data)
		explicit_bzero(c->client_key_data, strlen(c->client_key_data));
	free(c->client_key_data);
	free(c->namespace);
	free(c);
}

/* ---- YAML document navigation ---- */

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);
		if (k && k->type == YAML_SCALAR_NODE &&
		    strcmp((char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

/* A scalar's text, or NULL (absent, another type, or empty). */
static const char *scalar(yaml_document_t *d, yaml_node_t *map, const char *key)
{
	yaml_node_t *n = map_get(d, map, key);
	if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.length == 0)
		return NULL;
	return (const char *)n->data.scalar.value;
}

/* In the sequence top[key], the element whose name is name: its field. */
static yaml_node_t *named(yaml_document_t *d, yaml_node_t *top, const char *key, const char *name,
			  const char *field)
{
	yaml_node_t *seq = map_get(d, top, key);
	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return NULL;
	for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top;
	     i++) {
		yaml_node_t *e = yaml_document_get_node(d, *i);
		const char *n = scalar(d, e, "name");
		if (n && strcmp(n, name) == 0)
			return map_get(d, e, field);
	}
	return NULL;
}

/* path relative to the kubeconfig's directory, as kubectl resolves it. */
static char *resolve(const char *dir, const char *path)
{
	if (path[0] == '/' || !dir)
		return kaa__xstrdup(path);
	return kaa__xasprintf("%s/%s", dir, path);
}

/* Sets *dst to the decoded data field, or to the content of the file
 * field (resolved against dir); neither leaves *dst NULL. */
static int data_or_file(yaml_document_t *d, yaml_node_t *m, const char *data_key,
			const char *file_key, const char *dir, const char *what, char **dst)
{
	const char *data = scalar(d, m, data_key);
	const char *file = scalar(d, m, file_key);
	char *p = NULL;
	int rc;

	if (data) {
		rc = b64_decode(data, dst);
		if (rc == KAA_ERR_INVAL)
			KAA_ERROR("kube", "kubeconfig_bad_base64 field=%s", data_key);
		return rc;
	}
	if (!file)
		return KAA_OK;
	p = resolve(dir, file);
	rc = kaa__kube_read_file(p, SA_FILE_MAX, dst, NULL);
	if (rc != KAA_OK) {
		KAA_ERROR("kube", "kubeconfig_file_unreadable what=%s path=\"%s\" err=\"%s\"", what,
			  p, kaa_strerror(rc));
		rc = KAA_ERR_INVAL;
	}
	free(p);
	return rc;
}

static void strdup_to(char **dst, const char *s)
{
	if (s)
		*dst = kaa__xstrdup(s);
}

static int load_kubeconfig(const char *path, kaa__kube_config **out)
{
	char *text = NULL, *dir = NULL;
	size_t len = 0;
	yaml_parser_t parser;
	yaml_document_t doc;
	bool have_parser = false, have_doc = false;
	kaa__kube_config *c = NULL;
	int rc = kaa__kube_read_file(path, KUBECONFIG_MAX, &text, &len);

	if (rc != KAA_OK) {
		KAA_ERROR("kube", "kubeconfig_unreadable path=\"%s\" err=\"%s\"", path,
			  kaa_strerror(rc));
		goto out;
	}
	if (!yaml_parser_initialize(&parser))
		kaa__oom(); /* libyaml fails only to allocate */
	have_parser = true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		KAA_ERROR("kube", "kubeconfig_bad_yaml path=\"%s\" line=%zu problem=\"%s\"", path,
			  parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
		rc = KAA_ERR_INVAL;
		goto out;
	}
	have_doc = true;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		KAA_ERROR("kube", "kubeconfig_not_a_mapping path=\"%s\"", path);
		rc = KAA_ERR_INVAL;
		goto out;
	}
	const char *cur = scalar(&doc, root, "current-context");
	if (!cur) {
		KAA_ERROR("kube", "kubeconfig_no_current_context path=\"%s\"", path);
		rc = KAA_ERR_INVAL;
		goto out;
	}
	yaml_node_t *ctx = named(&doc, root, "contexts", cur, "context");
	const char *cluster_name = scalar(&doc, ctx, "cluster");
	const char *user_name = scalar(&doc, ctx, "user");
	if (!ctx || !cluster_name) {
		KAA_ERROR("kube", "kubeconfig_context_incomplete path=\"%s\" context=\"%s\"", path,
			  cur);
		rc = KAA_ERR_INVAL;
		goto out;
	}
	yaml_node_t *cl = named(&doc, root, "clusters", cluster_name, "cluster");
	const char *server = scalar(&doc, cl, "server");
	if (!cl || !server || strncmp(server, "https://", 8) != 0) {
		KAA_ERROR("kube",
			  "kubeconfig_cluster_unusable path=\"%s\" cluster=\"%s\" "
			  "reason=\"missing or not https server\"",
			  path, cluster_name);
		rc = KAA_ERR_INVAL;
		goto out;
	}
	yaml_node_t *user = user_name ? named(&doc, root, "users", user_name, "user") : NULL;
	if (user_name && !user) {
		KAA_ERROR("kube", "kubeconfig_user_missing path=\"%s\" user=\"%s\"", path,
			  user_name);
		rc = KAA_ERR_INVAL;
		goto out;
	}
	if (map_get(&doc, user, "exec") || map_get(&doc, user, "auth-provider")) {
		KAA_ERROR("kube",
			  "kubeconfig_unsupported_auth path=\"%s\" user=\"%s\" "
			  "reason=\"exec and auth-provider plugins are not supported\"",
			  path, user_name);
		rc = KAA_ERR_INVAL;
		goto out;
	}
	c = kaa__xcalloc(1, sizeof(*c));
	const char *slash = strrchr(path, '/');
	if (slash)
		dir = kaa__xstrndup(path, (size_t)(slash - path) + (slash == path));
	c->server = kaa__xstrdup(server);
	size_t sl = strlen(c->server);
	while (sl > 8 && c->server[sl - 1] == '/')
		c->server[--sl] = '\0';
	const char *caf = scalar(&doc, cl, "certificate-authority");
	if (scalar(&doc, cl, "certificate-authority-data")) {
		rc = data_or_file(&doc, cl, "certificate-authority-data", "-", dir, "ca",
				  &c->ca_data);
	} else if (caf) {
		/* Checked now so that a typo is reported at start, not as a TLS error. */
		c->ca_file = resolve(dir, caf);
		rc = access(c->ca_file, R_OK) == 0 ? KAA_OK : KAA_ERR_INVAL;
		if (rc == KAA_ERR_INVAL)
			KAA_ERROR("kube", "kubeconfig_ca_unreadable path=\"%s\"", c->ca_file);
	}
	if (rc != KAA_OK)
		goto out;
	rc = data_or_file(&doc, user, "client-certificate-data", "client-certificate", dir,
			  "client-certificate", &c->client_cert_data);
	if (rc == KAA_OK)
		rc = data_or_file(&doc, user, "client-key-data", "client-key", dir, "client-key",
				  &c->client_key_data);
	if (rc != KAA_OK)
		goto out;
	if (!c->client_cert_data != !c->client_key_data) {
		KAA_ERROR("kube", "kubeconfig_client_cert_without_key path=\"%s\" user=\"%s\"",
			  path, user_name);
		rc = KAA_ERR_INVAL;
		goto out;
	}
	strdup_to(&c->token, scalar(&doc, user, "token"));
	const char *tf = scalar(&doc, user, "tokenFile");
	if (tf && !c->token)
		c->token_file = resolve(dir, tf);
	strdup_to(&c->namespace, scalar(&doc, ctx, "namespace"));
	if (c->token_file) {
		char *t = NULL;
		rc = kaa__kube_read_file(c->token_file, SA_FILE_MAX, &t, NULL);
		if (rc != KAA_OK) {
			KAA_ERROR("kube", "token_file_unreadable path=\"%s\" err=\"%s\"",
				  c->token_file, kaa_strerror(rc));
			rc = KAA_ERR_INVAL;
			goto out;
		}
		t[strcspn(t, "\r\n")] = '\0';
		c->token = t;
	}
	*out = c;
	c = NULL;
out:
	if (have_doc)
		yaml_document_delete(&doc);
	if (have_parser)
		yaml_parser_delete(&parser);
	free(text);
	free(dir);
	kaa__kube_config_free(c);
	return rc;
}

static char *sa_path(const char *dir, const char *file)
{
	return kaa__xasprintf("%s/%s", dir, file);
}

static int load_in_cluster(const char *host, const char *port, kaa__kube_config **out)
{
	const char *dir = getenv("KAA_SA_DIR");
	kaa__kube_config *c = kaa__xcalloc(1, sizeof(*c));
	char *ns_path = NULL, *ns = NULL;
	int rc = KAA_OK;
	char *end = NULL;
	long pn = strtol(port, &end, 10);

	if (!dir || !*dir)
		dir = SA_DIR_DEFAULT;
	if (!*host || strpbrk(host, "/ ?#@") || end == port || *end || pn < 1 || pn > 65535) {
		KAA_ERROR("kube", "in_cluster_bad_env host=\"%s\" port=\"%s\"", host, port);
		rc = KAA_ERR_INVAL;
		goto out;
	}
	c->server = strchr(host, ':') ? kaa__xasprintf("https://[%s]:%ld", host, pn)
				      : kaa__xasprintf("https://%s:%ld", host, pn);
	c->ca_file = sa_path(dir, "ca.crt");
	c->token_file = sa_path(dir, "token");
	ns_path = sa_path(dir, "namespace");
	if (access(c->ca_file, R_OK) != 0) {
		KAA_ERROR("kube", "in_cluster_ca_unreadable path=\"%s\"", c->ca_file);
		rc = KAA_ERR_INVAL;
		goto out;
	}
	rc = kaa__kube_read_file(c->token_file, SA_FILE_MAX, &c->token, NULL);
	if (rc == KAA_OK && !*c->token)
		rc = KAA_ERR_INVAL;
	if (rc != KAA_OK) {
		KAA_ERROR("kube", "in_cluster_token_unreadable path=\"%s\" err=\"%s\"",
			  c->token_file, kaa_strerror(rc));
		rc = KAA_ERR_INVAL;
		goto out;
	}
	c->token[strcspn(c->token, "\r\n")] = '\0';
	rc = kaa__kube_read_file(ns_path, 4096, &ns, NULL);
	if (rc == KAA_OK) {
		ns[strcspn(ns, "\r\n")] = '\0';
		if (*ns) {
			c->namespace = ns;
			ns = NULL;
		}
	}
	rc = KAA_OK; /* the namespace file is optional */
	*out = c;
	c = NULL;
out:
	free(ns);
	free(ns_path);
	kaa__kube_config_free(c);
	return rc;
}

int kaa__kube_config_load(const char *path, kaa__kube_config **out)
{
	const char *env;
	char *p = NULL;
	int rc;

	if (!out)
		return KAA_ERR_INVAL;
	*out = NULL;
	if (path)
		return *path ? load_kubeconfig(path, out) : KAA_ERR_INVAL;
	env = getenv("KUBECONFIG");
	if (env && *env) {
		/* A list of files is merged by kubectl; we use the first. */
		p = kaa__xstrndup(env, strcspn(env, ":"));
		rc = load_kubeconfig(p, out);
		free(p);
		return rc;
	}
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	if (host && *host && port && *port)
		return load_in_cluster(host, port, out);
	env = getenv("HOME");
	if (env && *env) {
		p = kaa__xasprintf("%s/.kube/config", env);
		if (access(p, F_OK) == 0) {
			rc = load_kubeconfig(p, out);
			free(p);
			return rc;
		}
		free(p);
	}
	KAA_ERROR("kube", "no_configuration reason=\"no --kubeconfig, $KUBECONFIG, in-cluster "
			  "environment or ~/.kube/config\"");
	return KAA_ERR_NOTFOUND;
}
