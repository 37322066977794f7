/* kubeconfig and in-cluster configuration: what is read from where, paths
 * relative to the kubeconfig, base64 data, the order of sources, and a
 * clear error (never a crash) for every kind of bad input. */
#include "cu_main.h"
#include "test_util.h"
#include "kube_client.h"

#include "base/error.h"
#include "base/log.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/test_kubeconfig.XXXXXX";

static char *path_of(const char *name)
{
	static char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static const char *write_file(const char *name, const char *text)
{
	const char *p = path_of(name);
	FILE *f = fopen(p, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
	return p;
}

/* "hello CA\n" and friends, base64 */
#define CA_B64 "aGVsbG8gQ0EK"
#define CERT_B64 "Y2VydCBQRU0K"
#define KEY_B64 "a2V5IFBFTQo="

static void clear_env(void)
{
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("KAA_SA_DIR");
}

static int load(const char *path, kaa__kube_config **c)
{
	*c = NULL;
	return kaa__kube_config_load(path, c);
}

static void test_data_fields(void)
{
	kaa__kube_config *c;
	const char *p =
		write_file("full.yaml", "apiVersion: v1\n"
					"kind: Config\n"
					"clusters:\n"
					"- name: other\n"
					"  cluster: {server: 'https://wrong:1'}\n"
					"- name: kc\n"
					"  cluster:\n"
					"    server: https://10.1.2.3:6443/\n"
					"    certificate-authority-data: " CA_B64 "\n"
					"users:\n"
					"- name: u\n"
					"  user:\n"
					"    client-certificate-data: " CERT_B64 "\n"
					"    client-key-data: " KEY_B64 "\n"
					"contexts:\n"
					"- name: other\n"
					"  context: {cluster: other, user: u}\n"
					"- name: ctx\n"
					"  context: {cluster: kc, user: u, namespace: team-a}\n"
					"current-context: ctx\n");

	CU_ASSERT_EQUAL_FATAL(load(p, &c), KAA_OK);
	CU_ASSERT_STRING_EQUAL(c->server, "https://10.1.2.3:6443"); /* no trailing slash */
	CU_ASSERT_STRING_EQUAL(c->ca_data, "hello CA\n");
	CU_ASSERT_PTR_NULL(c->ca_file);
	CU_ASSERT_STRING_EQUAL(c->client_cert_data, "cert PEM\n");
	CU_ASSERT_STRING_EQUAL(c->client_key_data, "key PEM\n");
	CU_ASSERT_PTR_NULL(c->token);
	CU_ASSERT_STRING_EQUAL(c->namespace, "team-a");
	kaa__kube_config_free(c);
	kaa__kube_config_free(NULL);
}

static void test_files_and_tokens(void)
{
	kaa__kube_config *c;
	mkdir(path_of("sub"), 0700);
	write_file("sub/ca.pem", "CA\n");
	write_file("sub/cert.pem", "CERT\n");
	write_file("sub/key.pem", "KEY\n");
	write_file("sub/token", "tok-from-file\n");
	const char *p = write_file("sub/rel.yaml", "clusters:\n"
						   "- name: c\n"
						   "  cluster:\n"
						   "    server: https://h:1\n"
						   "    certificate-authority: ca.pem\n"
						   "users:\n"
						   "- name: u\n"
						   "  user:\n"
						   "    client-certificate: cert.pem\n"
						   "    client-key: key.pem\n"
						   "    tokenFile: token\n"
						   "contexts:\n"
						   "- name: x\n"
						   "  context: {cluster: c, user: u}\n"
						   "current-context: x\n");

	CU_ASSERT_EQUAL_FATAL(load(p, &c), KAA_OK);
	CU_ASSERT_STRING_EQUAL(c->ca_file, path_of("sub/ca.pem"));
	CU_ASSERT_PTR_NULL(c->ca_data);
	CU_ASSERT_STRING_EQUAL(c->client_cert_data, "CERT\n");
	CU_ASSERT_STRING_EQUAL(c->client_key_data, "KEY\n");
	CU_ASSERT_STRING_EQUAL(c->token_file, path_of("sub/token"));
	CU_ASSERT_STRING_EQUAL(c->token, "tok-from-file");
	CU_ASSERT_PTR_NULL(c->namespace);
	kaa__kube_config_free(c);

	p = write_file("token.yaml", "clusters: [{name: c, cluster: {server: 'https://h:1'}}]\n"
				     "users: [{name: u, user: {token: abc.def.ghi}}]\n"
				     "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
				     "current-context: x\n");
	CU_ASSERT_EQUAL_FATAL(load(p, &c), KAA_OK);
	CU_ASSERT_STRING_EQUAL(c->token, "abc.def.ghi");
	CU_ASSERT_PTR_NULL(c->token_file);
	CU_ASSERT_PTR_NULL(c->ca_file); /* system CAs; verification stays on */
	kaa__kube_config_free(c);
}

static void test_bad_files(void)
{
	static const struct {
		const char *name, *text;
		int want;
	} cases[] = {
		{"empty.yaml", "", KAA_ERR_INVAL},
		{"list.yaml", "- a\n- b\n", KAA_ERR_INVAL},
		{"garbage.yaml", "clusters: [unclosed\n  : : :\n", KAA_ERR_INVAL},
		{"binary.yaml", "\x01\x02\xff\xfe", KAA_ERR_INVAL},
		{"nocur.yaml", "clusters: []\ncontexts: []\n", KAA_ERR_INVAL},
		{"noctx.yaml", "current-context: gone\ncontexts: []\n", KAA_ERR_INVAL},
		{"nocluster.yaml",
		 "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: []\n",
		 KAA_ERR_INVAL},
		{"http.yaml",
		 "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
		 "clusters: [{name: c, cluster: {server: 'http://h:1'}}]\n",
		 KAA_ERR_INVAL},
		{"nouser.yaml",
		 "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
		 "clusters: [{name: c, cluster: {server: 'https://h:1'}}]\n",
		 KAA_ERR_INVAL},
		{"b64.yaml",
		 "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
		 "clusters: [{name: c, cluster: {server: 'https://h:1', "
		 "certificate-authority-data: 'not*base64'}}]\n",
		 KAA_ERR_INVAL},
		{"exec.yaml",
		 "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
		 "clusters: [{name: c, cluster: {server: 'https://h:1'}}]\n"
		 "users: [{name: u, user: {exec: {command: aws}}}]\n",
		 KAA_ERR_INVAL},
		{"certnokey.yaml",
		 "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
		 "clusters: [{name: c, cluster: {server: 'https://h:1'}}]\n"
		 "users: [{name: u, user: {client-certificate-data: " CERT_B64 "}}]\n",
		 KAA_ERR_INVAL},
		{"missingca.yaml",
		 "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
		 "clusters: [{name: c, cluster: {server: 'https://h:1', "
		 "certificate-authority: /nonexistent/ca.pem}}]\n",
		 KAA_ERR_INVAL},
		{"missingtoken.yaml",
		 "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
		 "clusters: [{name: c, cluster: {server: 'https://h:1'}}]\n"
		 "users: [{name: u, user: {tokenFile: nothere}}]\n",
		 KAA_ERR_INVAL},
		{"aliases.yaml",
		 "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
		 "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\ncurrent-context: *c\n",
		 KAA_ERR_INVAL},
	};
	kaa__kube_config *c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *p = write_file(cases[i].name, cases[i].text);
		int rc = load(p, &c);
		if (rc != cases[i].want)
			fprintf(stderr, "%s: got %d want %d\n", cases[i].name, rc, cases[i].want);
		CU_ASSERT_EQUAL(rc, cases[i].want);
		CU_ASSERT_PTR_NULL(c);
	}
	CU_ASSERT_EQUAL(load(path_of("absent.yaml"), &c), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(load(dir, &c), KAA_ERR_IO); /* a directory */
	CU_ASSERT_EQUAL(load("", &c), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__kube_config_load(NULL, NULL), KAA_ERR_INVAL);

	/* over 1 MiB */
	FILE *f = fopen(path_of("big.yaml"), "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("current-context: x\n# ", f);
	for (int i = 0; i < 1100 * 1024; i++)
		fputc('x', f);
	fputs("\n", f);
	fclose(f);
	CU_ASSERT_EQUAL(load(path_of("big.yaml"), &c), KAA_ERR_TOO_BIG);
}

static void write_sa(const char *token)
{
	mkdir(path_of("sa"), 0700);
	write_file("sa/ca.crt", "CA\n");
	write_file("sa/namespace", "kaa-system");
	if (token)
		write_file("sa/token", token);
	else
		unlink(path_of("sa/token"));
}

static void test_in_cluster(void)
{
	kaa__kube_config *c;

	clear_env();
	write_sa("eyJ.sa.token\n");
	setenv("KAA_SA_DIR", path_of("sa"), 1);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	CU_ASSERT_EQUAL_FATAL(load(NULL, &c), KAA_OK);
	CU_ASSERT_STRING_EQUAL(c->server, "https://10.96.0.1:443");
	CU_ASSERT_STRING_EQUAL(c->token, "eyJ.sa.token");
	CU_ASSERT_STRING_EQUAL(c->token_file, path_of("sa/token"));
	CU_ASSERT_STRING_EQUAL(c->ca_file, path_of("sa/ca.crt"));
	CU_ASSERT_STRING_EQUAL(c->namespace, "kaa-system");
	kaa__kube_config_free(c);

	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	CU_ASSERT_EQUAL_FATAL(load(NULL, &c), KAA_OK);
	CU_ASSERT_STRING_EQUAL(c->server, "https://[fd00::1]:443");
	kaa__kube_config_free(c);

	/* $KUBECONFIG wins over in-cluster; a list uses its first file */
	char list[1100];
	snprintf(list, sizeof(list), "%s:%s", path_of("token.yaml"), path_of("nonexistent"));
	setenv("KUBECONFIG", list, 1);
	CU_ASSERT_EQUAL_FATAL(load(NULL, &c), KAA_OK);
	CU_ASSERT_STRING_EQUAL(c->token, "abc.def.ghi");
	kaa__kube_config_free(c);
	unsetenv("KUBECONFIG");

	setenv("KUBERNETES_SERVICE_PORT", "99999", 1);
	CU_ASSERT_EQUAL(load(NULL, &c), KAA_ERR_INVAL);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	setenv("KUBERNETES_SERVICE_HOST", "evil/host", 1);
	CU_ASSERT_EQUAL(load(NULL, &c), KAA_ERR_INVAL);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	write_sa(NULL); /* no token */
	CU_ASSERT_EQUAL(load(NULL, &c), KAA_ERR_INVAL);
	CU_ASSERT_PTR_NULL(c);
	write_sa(""); /* empty token */
	CU_ASSERT_EQUAL(load(NULL, &c), KAA_ERR_INVAL);
	setenv("KAA_SA_DIR", path_of("no-such-dir"), 1);
	CU_ASSERT_EQUAL(load(NULL, &c), KAA_ERR_INVAL);

	/* nothing at all */
	clear_env();
	setenv("HOME", path_of("sub"), 1); /* no .kube/config there */
	CU_ASSERT_EQUAL(load(NULL, &c), KAA_ERR_NOTFOUND);
	/* ~/.kube/config is the last resort */
	mkdir(path_of("sub/.kube"), 0700);
	write_file("sub/.kube/config",
		   "clusters: [{name: c, cluster: {server: 'https://home:1'}}]\n"
		   "contexts: [{name: x, context: {cluster: c}}]\n"
		   "current-context: x\n");
	CU_ASSERT_EQUAL_FATAL(load(NULL, &c), KAA_OK);
	CU_ASSERT_STRING_EQUAL(c->server, "https://home:1");
	kaa__kube_config_free(c);
}

static void test_client_args(void)
{
	kaa__kube_config cfg = {.server = "http://plain:80"};
	kaa__kube *k = NULL;
	kaa__kube_resp r;

	CU_ASSERT_EQUAL(kaa__kube_new(&cfg, NULL, &k), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__kube_new(NULL, NULL, &k), KAA_ERR_INVAL);
	cfg.server = "https://127.0.0.1:1";
	CU_ASSERT_EQUAL_FATAL(kaa__kube_new(&cfg, NULL, &k), KAA_OK);
	CU_ASSERT_EQUAL(kaa__kube_set_identity(k, ""), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__kube_set_identity(k, "me"), KAA_OK);
	/* nothing listens on port 1: a transport error, not a status */
	CU_ASSERT_EQUAL(kaa__kube_request(k, "GET", "/version", NULL, NULL, &r),
			KAA_ERR_UNAVAILABLE);
	CU_ASSERT_PTR_NULL(r.body);
	CU_ASSERT_EQUAL(kaa__kube_request(k, "GET", "/a b", NULL, NULL, &r), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__kube_apply(k, NULL, "{}", &r), KAA_ERR_INVAL);
	kaa__kube_free(k);
	kaa__kube_free(NULL);
	kaa__kube_resp_clear(NULL);
}

static const kaa__cu_test tests[] = {
	{"data fields and current-context", test_data_fields},
	{"relative files and tokens", test_files_and_tokens},
	{"bad files", test_bad_files},
	{"in-cluster and source order", test_in_cluster},
	{"client arguments", test_client_args},
};

int main(void)
{
	kaa__log_level = KAA_LOG_ERROR + 1; /* the errors are expected here */
	if (!mkdtemp(dir))
		return 1;
	int rc = kaa__cu_run("kubeconfig", tests, KAA__CU_COUNT(tests), NULL, NULL);
	kaa__test_rm_tree(dir);
	return rc;
}
