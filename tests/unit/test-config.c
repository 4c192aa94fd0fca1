// SPDX-License-Identifier: MIT
/* Config model: every validation rule, positive and negative; VIP stability;
 * YAML limits; the project's examples/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "strbuf.h"
#include "util.h"
#include "yaml-dom.h"

#ifndef EXAMPLES_DIR
#error EXAMPLES_DIR must point at examples/
#endif

static struct ms_config *load_opts(const char *yaml, const struct cfg_opts *o, struct cfg_errors *errs)
{
	struct ms_config *c = NULL;

	if (cfg_load_buffer(yaml, strlen(yaml), "t.yaml", o, errs, &c) < 0)
		return NULL;
	return c;
}

static struct ms_config *load(const char *yaml, struct cfg_errors *errs)
{
	struct cfg_opts o;

	cfg_opts_init(&o);
	return load_opts(yaml, &o, errs);
}

static bool has_error(const struct cfg_errors *e, unsigned line, const char *field, const char *needle)
{
	for (size_t i = 0; i < e->n; i++)
		if ((line == 0 || e->v[i].line == line) && (!field || streq(e->v[i].field, field)) &&
		    strstr(e->v[i].msg, needle))
			return true;
	return false;
}

static void dump(const struct cfg_errors *e)
{
	char buf[1024];
	for (size_t i = 0; i < e->n; i++)
		print_message("  %s\n", cfg_err_fmt(&e->v[i], buf, sizeof(buf)));
}

/* Load yaml, expect failure with an error at line/field containing needle. */
static void expect_err(const char *yaml, unsigned line, const char *field, const char *needle)
{
	struct cfg_errors e = { 0 };
	struct ms_config *c = load(yaml, &e);

	if (c || !has_error(&e, line, field, needle)) {
		print_message("expected error at line %u field %s: %s\n", line, field ? field : "*", needle);
		dump(&e);
	}
	assert_null(c);
	assert_true(has_error(&e, line, field, needle));
	cfg_errors_clear(&e);
}

static struct ms_config *expect_ok(const char *yaml)
{
	struct cfg_errors e = { 0 };
	struct ms_config *c = load(yaml, &e);

	if (!c)
		dump(&e);
	assert_non_null(c);
	cfg_errors_clear(&e);
	return c;
}

/* Load yaml: it loads, with a warning at line/field containing needle; under
 * strict (validate --strict) the same problem refuses it. Returns the config. */
static struct ms_config *expect_warn(const char *yaml, unsigned line, const char *field, const char *needle)
{
	struct cfg_errors e = { 0 };
	struct ms_config *c = load(yaml, &e);

	if (!c || !has_error(&e, line, field, needle) || cfg_errors_count(&e) != 0) {
		print_message("expected a warning at line %u field %s: %s\n", line, field ? field : "*", needle);
		dump(&e);
	}
	assert_non_null(c);
	assert_true(has_error(&e, line, field, needle));
	assert_true(e.n_warnings > 0);
	assert_int_equal(cfg_errors_count(&e), 0);
	cfg_errors_clear(&e);
	e.strict = true;
	assert_null(load(yaml, &e));
	assert_true(has_error(&e, line, field, needle));
	assert_int_equal(e.n_warnings, 0);
	cfg_errors_clear(&e);
	return c;
}

static const struct ms_service *svc(const struct ms_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_svcs; i++)
		if (streq(c->svcs[i].name, name))
			return &c->svcs[i];
	return NULL;
}

#define MES(name, port) \
	"---\ntype: MeshExternalService\nname: " name "\nmesh: default\nspec:\n  match:\n    port: " #port \
	"\n  endpoints:\n    - address: 198.18.0.2\n      port: 80\n"

static void test_examples_valid(void **state)
{
	(void)state;
	/* every file of examples/ by name, so that a file that disappears fails */
	const char *good[] = { "external-service-legacy.yaml", "hostname-generator.yaml",
			       "mes-http-https-grpc.yaml", "mes-tcp-ip.yaml", "mes-tcp-mtls.yaml",
			       "mes-tcp-tls.yaml", "mes-tcp.yaml", "mes-tls-options.yaml",
			       "mesh-service.yaml", "mesh.yaml", "kubernetes-list.yaml" };
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		char path[512];
		const char *p = path;
		struct cfg_errors e = { 0 };
		struct ms_config *c = NULL;
		struct cfg_opts o;

		cfg_opts_init(&o);
		snprintf(path, sizeof(path), "%s/%s", EXAMPLES_DIR, good[i]);
		if (cfg_load_paths(&p, 1, &o, &e, &c) < 0) {
			print_message("%s\n", path);
			dump(&e);
		}
		assert_non_null(c);
		assert_int_equal(c->n_files, 1);
		cfg_unref(c);
		cfg_errors_clear(&e);
	}
}

/* The whole directory is one valid config: no two files clash (names, VIPs,
 * hostnames), and what each kind links to is there. */
static void test_examples_whole_dir_valid(void **state)
{
	(void)state;
	const char *p = EXAMPLES_DIR;
	struct cfg_errors e = { 0 };
	struct ms_config *c = NULL;
	const struct ms_service *s;
	struct cfg_opts o;

	cfg_opts_init(&o);
	if (cfg_load_paths(&p, 1, &o, &e, &c) < 0)
		dump(&e);
	assert_non_null(c);
	assert_int_equal(c->n_files, 11);
	assert_int_equal(c->n_meshes, 2);
	assert_int_equal(c->n_svcs, 14);
	/* kubernetes-list.yaml: a List's items are read */
	assert_non_null(cfg_find_service(c, MS_KIND_MESH_EXTERNAL_SERVICE, "default", "listed-tcp"));
	assert_non_null(cfg_find_hostname(c, "default", "listed-tcp.listed.mesh.local"));
	assert_false(cfg_find_mesh(c, "locked")->passthrough);
	assert_true(cfg_find_mesh(c, "locked")->forbid_external);
	/* the MeshService found both Dataplanes, by port number and by port name */
	s = cfg_find_service(c, MS_KIND_MESH_SERVICE, "default", "redis");
	assert_non_null(s);
	assert_int_equal(s->n_ports, 2);
	assert_int_equal(s->ports[0].n_eps, 2);
	assert_int_equal(s->ports[1].n_eps, 1);
	/* secrets of both styles resolved, and the mTLS pair matched */
	s = cfg_find_service(c, MS_KIND_MESH_EXTERNAL_SERVICE, "default", "mes-tls-options");
	assert_non_null(s);
	assert_true(s->tls.cert.len > 0 && s->tls.key.len > 0 && s->tls.ca.len > 0);
	assert_int_equal(s->tls.n_sans, 2);
	assert_int_equal(s->ports[0].n_eps, 4);
	/* the generated names */
	assert_non_null(cfg_find_hostname(c, "default", "mes-tcp.extsvc.mesh.local"));
	assert_non_null(cfg_find_hostname(c, "default", "redis.redis-system.svc.mesh.local"));
	assert_non_null(cfg_find_hostname(c, "default", "httpbin.mesh"));
	s = cfg_find_service(c, MS_KIND_EXTERNAL_SERVICE, "default", "ldap");
	assert_non_null(s);
	assert_true(s->tls.sni_disabled);
	cfg_unref(c);
	cfg_errors_clear(&e);
}

static void test_examples_whole_dir_with_bad_files(void **state)
{
	(void)state;
	const char *p[] = { EXAMPLES_DIR, EXAMPLES_DIR "/invalid" };
	struct cfg_errors e = { 0 };
	struct ms_config *c = NULL;
	struct cfg_opts o;

	cfg_opts_init(&o);
	assert_int_equal(cfg_load_paths(p, ARRAY_SIZE(p), &o, &e, &c), -EINVAL);
	assert_null(c);
	/* exactly the thirteen problems examples/README.md names: the valid files
	 * beside them add none; the TLS material Kuma takes is a warning */
	if (e.n != 13)
		dump(&e);
	assert_int_equal(e.n, 13);
	assert_int_equal(e.n_warnings, 6);
	assert_true(has_error(&e, 9, "mtls.enabledBackend", "one of the backends"));
	assert_true(has_error(&e, 18, "networking.address", "must not be 0.0.0.0"));
	assert_true(has_error(&e, 29, "tags.team", "tag value must consist"));
	assert_true(has_error(&e, 11, "spec.addresses", "hosts and addresses are mutually exclusive"));
	assert_true(has_error(&e, 22, "spec.hosts[0]", "a wildcard only as the first label"));
	assert_true(has_error(&e, 25, "spec.ports[0].protocol", "not TCP"));
	assert_true(has_error(&e, 39, "spec.ports[0].clientsideTls.mode", "ISTIO_MUTUAL"));
	assert_true(has_error(&e, 33, "spec.tls.verification.caCert", "not a PEM certificate"));
	assert_true(has_error(&e, 35, "spec.tls.verification.clientCert.secret", "secret \"123\" not found"));
	assert_true(has_error(&e, 37, "spec.tls.verification.clientKey.secret", "secret \"456\" not found"));
	assert_true(has_error(&e, 16, "networking.tls.caCert", "not a PEM certificate"));
	assert_true(has_error(&e, 18, "networking.tls.clientCert.secret", "secret \"clientCert\" not found"));
	assert_true(has_error(&e, 20, "networking.tls.clientKey.secret", "secret \"clientKey\" not found"));
	cfg_errors_clear(&e);
}

static void test_mesh_flags_both_styles(void **state)
{
	(void)state;
	struct ms_config *c = expect_ok("type: Mesh\nname: open\n---\n"
					"apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: locked\n"
					"spec:\n  networking:\n    outbound:\n      passthrough: false\n"
					"  routing:\n    defaultForbidMeshExternalServiceAccess: true\n");
	const struct ms_mesh *open = cfg_find_mesh(c, "open"), *locked = cfg_find_mesh(c, "locked");
	const struct ms_mesh *def = cfg_find_mesh(c, "default");

	assert_non_null(open);
	assert_non_null(locked);
	assert_true(open->passthrough);
	assert_false(open->forbid_external);
	assert_false(locked->passthrough);
	assert_true(locked->forbid_external);
	assert_non_null(def);
	assert_true(def->implicit);
	assert_int_not_equal(open->id, locked->id);
	cfg_unref(c);
}

static void test_embedded_default(void **state)
{
	(void)state;
	struct ms_config *c = expect_ok(cfg_embedded_default);
	assert_int_equal(c->n_meshes, 1);
	assert_true(c->meshes[0].passthrough);
	assert_false(c->meshes[0].implicit);
	cfg_unref(c);
}

/* Kuma ignores (Universal) or prunes (Kubernetes) a key it does not know:
 * a warning that still catches the typo, an error under --strict. */
static void test_unknown_field(void **state)
{
	(void)state;
	struct ms_config *c = expect_warn("type: Mesh\nname: m\nnetworking:\n  outbound:\n    passthru: false\n", 5,
					  "networking.outbound.passthru", "unknown field");
	assert_true(cfg_find_mesh(c, "m")->passthrough); /* the typo did not set it */
	cfg_unref(c);
	c = expect_warn(MES("a", 80) "  tls:\n    enabld: true\n", 12, "spec.tls.enabld", "unknown field");
	assert_false(svc(c, "a")->tls.enabled);
	cfg_unref(c);
}

/* A Kuma kind meshsplice does not act on, beside ones it does: one warning,
 * in either style, with fields of its own that are not checked. */
static void test_ignored_kinds(void **state)
{
	(void)state;
	struct ms_config *c = expect_warn(MES("a", 80) "---\napiVersion: kuma.io/v1alpha1\nkind: MeshTrafficPermission\n"
					  "metadata:\n  name: allow-all\nspec:\n  targetRef:\n    kind: Mesh\n"
					  "  from:\n    - targetRef:\n        kind: Mesh\n      default:\n        action: Allow\n",
					  13, "kind", "MeshTrafficPermission is a Kuma resource that meshsplice does not act on");
	assert_int_equal(c->n_svcs, 1);
	cfg_unref(c);
	c = expect_warn("type: TrafficRoute\nname: route-all\nmesh: default\nsources:\n  - match:\n      kuma.io/service: '*'\n"
			"conf:\n  destination:\n    kuma.io/service: '*'\n",
			1, "type", "TrafficRoute is a Kuma resource");
	cfg_unref(c);
	/* control: a kind Kuma does not have is refused, and that is what is said
	 * even when the document has no spec */
	expect_err("apiVersion: kuma.io/v1alpha1\nkind: Foo\nmetadata:\n  name: x\n", 2, "kind",
		   "unknown resource \"Foo\"");
	expect_err("type: Foo\nname: x\n", 1, "type", "unknown resource \"Foo\"");
	/* a known kind without its spec still says so */
	expect_err("apiVersion: kuma.io/v1alpha1\nkind: MeshService\nmetadata:\n  name: x\n", 1, "spec",
		   "required field is missing");
}

/* Booleans as Kuma's YAML library (go-yaml v2 under sigs.k8s.io/yaml) reads
 * them: YAML 1.1's yes/no/on/off/y/n too; a quoted one is a string, and a
 * plain one where a string belongs is a boolean. */
static void test_yaml11_booleans(void **state)
{
	(void)state;
	static const struct {
		const char *word;
		bool value;
	} words[] = { { "off", false }, { "Off", false }, { "no", false }, { "N", false }, { "FALSE", false },
		      { "on", true },   { "ON", true },   { "yes", true }, { "y", true },  { "True", true } };

	for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
		_cleanup_free_ char *y = xasprintf("type: Mesh\nname: m\nnetworking:\n  outbound:\n    passthrough: %s\n",
						   words[i].word);
		struct ms_config *c = expect_ok(y);
		assert_true(cfg_find_mesh(c, "m")->passthrough == words[i].value);
		cfg_unref(c);
	}
	expect_err("type: Mesh\nname: m\nnetworking:\n  outbound:\n    passthrough: \"off\"\n", 5,
		   "networking.outbound.passthrough", "a quoted string");
	expect_err("type: Mesh\nname: m\nnetworking:\n  outbound:\n    passthrough: nope\n", 5,
		   "networking.outbound.passthrough", "expected true or false");
	/* in a string: the boolean is refused, the quoted word is a string */
	expect_err("type: Mesh\nname: m\nlabels:\n  team: yes\n", 4, "labels.team", "got the boolean true");
	struct ms_config *c = expect_ok("type: Mesh\nname: m\nlabels:\n  team: \"yes\"\n  yes: team\n");
	cfg_unref(c);
}

static void test_wrong_type(void **state)
{
	(void)state;
	expect_err("type: Mesh\nname: m\nnetworking:\n  outbound:\n    passthrough: \"no\"\n", 5,
		   "networking.outbound.passthrough", "expected true or false");
	expect_err("type: MeshExternalService\nname: a\nspec:\n  match:\n    port: 80\n  endpoints: {}\n", 6,
		   "spec.endpoints", "expected a list");
}

static void test_port_range(void **state)
{
	(void)state;
	expect_err(MES("a", 70000), 7, "spec.match.port", "out of range");
	expect_err(MES("a", 0), 7, "spec.match.port", "out of range");
	expect_err(MES("a", abc), 7, "spec.match.port", "expected a port number");
}

static void test_unknown_protocol_and_mode(void **state)
{
	(void)state;
	expect_err("type: MeshExternalService\nname: a\nspec:\n  match:\n    port: 80\n    protocol: udp\n"
		   "  endpoints:\n    - address: 198.18.0.2\n      port: 80\n",
		   6, "spec.match.protocol", "unknown value \"udp\"");
	expect_err(MES("a", 80) "  tls:\n    enabled: true\n    verification:\n      mode: Paranoid\n", 14,
		   "spec.tls.verification.mode", "unknown value \"Paranoid\"");
}

static void test_endpoints(void **state)
{
	(void)state;
	struct ms_config *c = expect_ok(
		"type: MeshExternalService\nname: a\nspec:\n  match:\n    port: 80\n  endpoints:\n"
		"    - address: 198.18.0.2\n      port: 80\n    - address: 2001:2::5\n      port: 81\n"
		"    - address: up.example.test\n      port: 82\n    - address: unix:///run/x.sock\n");
	const struct ms_service *s = svc(c, "a");
	assert_int_equal(s->ports[0].n_eps, 4);
	assert_int_equal(s->ports[0].eps[0].type, MS_EP_IP);
	assert_true(addr_is_v4(&s->ports[0].eps[0].ip));
	assert_int_equal(s->ports[0].eps[1].type, MS_EP_IP);
	assert_false(addr_is_v4(&s->ports[0].eps[1].ip));
	assert_int_equal(s->ports[0].eps[2].type, MS_EP_DNS);
	assert_int_equal(s->ports[0].eps[3].type, MS_EP_UNIX);
	assert_string_equal(s->ports[0].eps[3].host, "/run/x.sock");
	cfg_unref(c);

	expect_err("type: MeshExternalService\nname: a\nspec:\n  match:\n    port: 80\n  endpoints:\n"
		   "    - address: \"bad host!\"\n      port: 80\n",
		   7, "spec.endpoints[0].address", "not an IPv4 or IPv6 address");
	expect_err("type: MeshExternalService\nname: a\nspec:\n  match:\n    port: 80\n  endpoints:\n"
		   "    - address: unix://relative.sock\n",
		   7, "spec.endpoints[0].address", "unix:///absolute/path");
	expect_err("type: MeshExternalService\nname: a\nspec:\n  match:\n    port: 80\n  endpoints:\n"
		   "    - address: 198.18.0.2\n",
		   7, "spec.endpoints[0].port", "required");
	/* endpoints are optional in Kuma: none, or an empty list, is a service
	 * whose connections are refused */
	c = expect_ok("type: MeshExternalService\nname: a\nspec:\n  match:\n    port: 80\n  endpoints: []\n");
	assert_int_equal(svc(c, "a")->ports[0].n_eps, 0);
	cfg_unref(c);
	c = expect_ok("type: MeshExternalService\nname: a\nspec:\n  match:\n    port: 80\n");
	assert_int_equal(svc(c, "a")->ports[0].n_eps, 0);
	cfg_unref(c);
	/* but match.port is required */
	expect_err("type: MeshExternalService\nname: a\nspec:\n  match:\n    protocol: tcp\n", 5,
		   "spec.match.port", "required");
	/* priority levels, 0 (the default) to 128 */
	c = expect_ok("type: MeshExternalService\nname: a\nspec:\n  match:\n    port: 80\n  endpoints:\n"
		      "    - address: 198.18.0.2\n      port: 80\n    - address: 198.18.0.3\n      port: 80\n"
		      "      priority: 128\n");
	assert_int_equal(svc(c, "a")->ports[0].eps[0].priority, 0);
	assert_int_equal(svc(c, "a")->ports[0].eps[1].priority, 128);
	cfg_unref(c);
	expect_err("type: MeshExternalService\nname: a\nspec:\n  match:\n    port: 80\n  endpoints:\n"
		   "    - address: 198.18.0.2\n      port: 80\n      priority: 129\n",
		   9, "spec.endpoints[0].priority", "out of range (0-128)");
	/* an extension takes endpoints and tls away from us; its type is required */
	c = expect_warn("type: MeshExternalService\nname: a\nspec:\n  match:\n    port: 80\n  extension:\n"
			"    type: Lambda\n    config:\n      arn: x\n",
			7, "spec.extension", "endpoints and tls are not used");
	assert_int_equal(svc(c, "a")->ports[0].n_eps, 0);
	cfg_unref(c);
	expect_err("type: MeshExternalService\nname: a\nspec:\n  match:\n    port: 80\n  extension:\n"
		   "    type: \"\"\n", 7, "spec.extension.type", "must not be empty");
}

static void test_tls_versions(void **state)
{
	(void)state;
	expect_err(MES("a", 80) "  tls:\n    version:\n      min: TLS13\n      max: TLS12\n", 13, "spec.tls.version.min",
		   "min TLS13 is above max TLS12");
	expect_err(MES("a", 80) "  tls:\n    version:\n      min: TLS14\n", 13, "spec.tls.version.min",
		   "unknown value \"TLS14\"");
	struct ms_config *c = expect_ok(MES("a", 80) "  tls:\n    enabled: true\n    version:\n      min: TLS12\n      max: TLS13\n");
	assert_int_equal(svc(c, "a")->tls.min, MS_TLS12);
	assert_int_equal(svc(c, "a")->tls.max, MS_TLS13);
	cfg_unref(c);
}

static void test_bad_base64(void **state)
{
	(void)state;
	expect_err(MES("a", 80) "  tls:\n    verification:\n      caCert:\n        inline: \"not*base64\"\n", 14,
		   "spec.tls.verification.caCert.inline", "not valid base64");
	expect_err(MES("a", 80) "  tls:\n    verification:\n      caCert:\n        inline: x\n        secret: y\n", 14,
		   "spec.tls.verification.caCert", "exactly one of");
}

static void test_base64(void **state)
{
	(void)state;
	unsigned char *out;
	size_t len;

	assert_int_equal(cfg_base64_decode("dGVzdA==", 8, &out, &len), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(out, "test", 4);
	free(out);
	assert_int_equal(cfg_base64_decode("dGVz\ndA==\n", 10, &out, &len), 0);
	free(out);
	assert_int_equal(cfg_base64_decode("dGVzdA=", 7, &out, &len), -EINVAL);
	assert_int_equal(cfg_base64_decode("dG=VzdA==", 9, &out, &len), -EINVAL);
	assert_int_equal(cfg_base64_decode("d", 1, &out, &len), -EINVAL);
}

/* A fresh key and a self-signed certificate for it, both PEM, base64'd. */
static char *b64(const char *s)
{
	size_t n = strlen(s);
	char *out = xcalloc(n * 2 + 8, 1);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	return out;
}

static void make_cert(char **ret_cert_b64, char **ret_key_b64)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
	char *p;
	long n;

	assert_non_null(key);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	PEM_write_bio_X509(cb, x);
	PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(cb, &p);
	char *s = xstrndup(p, (size_t)n);
	*ret_cert_b64 = b64(s);
	free(s);
	n = BIO_get_mem_data(kb, &p);
	s = xstrndup(p, (size_t)n);
	*ret_key_b64 = b64(s);
	free(s);
	BIO_free(cb);
	BIO_free(kb);
	X509_free(x);
	EVP_PKEY_free(key);
}

static void test_cert_key_pairs(void **state)
{
	(void)state;
	char *c1, *k1, *c2, *k2;
	make_cert(&c1, &k1);
	make_cert(&c2, &k2);

	char *good = xasprintf(MES("a", 80) "  tls:\n    enabled: true\n    verification:\n      caCert:\n        inline: %s\n"
			       "      clientCert:\n        inline: %s\n      clientKey:\n        secret: k\n"
			       "---\ntype: Secret\nname: k\nmesh: default\ndata: %s\n",
			       c2, c1, k1);
	struct ms_config *c = expect_ok(good);
	assert_true(svc(c, "a")->tls.key.len > 100);
	assert_string_equal(svc(c, "a")->tls.key.origin, "secret:k");
	assert_null(svc(c, "a")->tls.unusable);
	cfg_unref(c);

	char *bad = xasprintf(MES("a", 80) "  tls:\n    verification:\n      clientCert:\n        inline: %s\n"
			      "      clientKey:\n        inline: %s\n",
			      c1, k2);
	/* Kuma takes it; it cannot work: a warning, and its connections are refused */
	c = expect_warn(bad, 16, "spec.tls.verification.clientKey", "does not match");
	assert_non_null(strstr(svc(c, "a")->tls.unusable, "does not match"));
	cfg_unref(c);

	char *alone = xasprintf(MES("a", 80) "  tls:\n    verification:\n      clientCert:\n        inline: %s\n", c1);
	expect_err(alone, 13, "spec.tls.verification.clientKey", "go together"); /* on verification, where it is missing */

	/* Kuma 3.0's typed source: InsecureInline (PEM text) and Secret by secretRef */
	/* the CA as PEM text in a YAML block */
	unsigned char *raw = NULL;
	size_t raw_len;
	struct strbuf pem = { 0 };
	assert_int_equal(cfg_base64_decode(c2, strlen(c2), &raw, &raw_len), 0);
	for (char *line = strtok((char *)raw, "\n"); line; line = strtok(NULL, "\n"))
		strbuf_printf(&pem, "            %s\n", line);
	free(raw);
	char *typed = xasprintf(MES("a", 80) "  tls:\n    verification:\n      caCert:\n        type: InsecureInline\n"
				"        insecureInline:\n          value: |\n%s"
				"      clientCert:\n        type: Secret\n        secretRef:\n          kind: Secret\n          name: c\n"
				"      clientKey:\n        type: Secret\n        secretRef:\n          kind: Secret\n          name: k\n"
				"---\ntype: Secret\nname: c\nmesh: default\ndata: %s\n---\ntype: Secret\nname: k\nmesh: default\ndata: %s\n",
				pem.s, c1, k1);
	free(pem.s);
	c = expect_ok(typed);
	assert_string_equal(svc(c, "a")->tls.ca.origin, "insecureInline");
	assert_string_equal(svc(c, "a")->tls.cert.origin, "secret:c");
	assert_true(svc(c, "a")->tls.key.len > 100);
	assert_null(svc(c, "a")->tls.unusable);
	cfg_unref(c);
	free(typed);
#define V(src) MES("a", 80) "  tls:\n    verification:\n      caCert:\n" src
	expect_err(V("        type: File\n        file:\n          path: /etc/x\n"), 14, "spec.tls.verification.caCert.type",
		   "must be one of: Secret, InsecureInline");
	expect_err(V("        type: Secret\n"), 14, "spec.tls.verification.caCert.secretRef", "must be defined");
	expect_err(V("        type: Secret\n        secretRef:\n          kind: Secret\n"), 16,
		   "spec.tls.verification.caCert.secretRef.name", "must be defined");
	expect_err(V("        type: InsecureInline\n"), 14, "spec.tls.verification.caCert.insecureInline", "must be defined");
#undef V

	/* Kubernetes Secret with data.value */
	char *k8s = xasprintf(MES("a", 80) "  tls:\n    verification:\n      caCert:\n        secret: ca\n"
			      "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: ca\n  namespace: kuma-system\n"
			      "  labels:\n    kuma.io/mesh: default\ndata:\n  value: %s\ntype: system.kuma.io/secret\n",
			      c2);
	c = expect_ok(k8s);
	cfg_unref(c);
	free(good);
	free(bad);
	free(alone);
	free(k8s);
	free(c1);
	free(k1);
	free(c2);
	free(k2);
}

static void test_secret_other_mesh(void **state)
{
	(void)state;
	/* Kuma resolves a secret at use: a warning, and the service's TLS is
	 * refused rather than verified against the system CAs */
	struct ms_config *c = expect_warn(
		"type: Mesh\nname: other\n---\ntype: Secret\nname: s\nmesh: other\ndata: dGVzdA==\n---\n" MES("a", 80)
		"  tls:\n    verification:\n      caCert:\n        secret: s\n",
		22, "spec.tls.verification.caCert.secret", "secret \"s\" not found in mesh \"default\"");
	assert_non_null(strstr(svc(c, "a")->tls.unusable, "not found"));
	cfg_unref(c);
}

static void test_duplicates(void **state)
{
	(void)state;
	expect_err(MES("a", 80) MES("a", 81), 0, "name", "duplicate MeshExternalService \"a\"");
	/* same name in different meshes is fine */
	struct ms_config *c = expect_ok("type: Mesh\nname: m2\n" MES("a", 80)
					"---\ntype: MeshExternalService\nname: a\nmesh: m2\nspec:\n  match:\n    port: 80\n"
					"  endpoints:\n    - address: 198.18.0.2\n      port: 80\n");
	assert_int_equal(c->n_svcs, 2);
	cfg_unref(c);
	expect_err("type: Mesh\nname: m\n---\ntype: Mesh\nname: m\n", 4, "name", "duplicate Mesh");
	expect_err("a: 1\na: 2\n", 2, "", "duplicate key");
}

static void test_missing_mesh(void **state)
{
	(void)state;
	expect_err("type: MeshExternalService\nname: a\nmesh: nowhere\nspec:\n  match:\n    port: 80\n"
		   "  endpoints:\n    - address: 198.18.0.2\n      port: 80\n",
		   3, "mesh", "mesh \"nowhere\" does not exist");
}

static void test_vip_clash(void **state)
{
	(void)state;
	expect_err(MES("a", 80) "status:\n  vip:\n    ip: 242.0.0.9\n" MES("b", 80) "status:\n  vip:\n    ip: 242.0.0.9\n", 0,
		   "status.vip", "claims 242.0.0.9 port 80");
	/* same explicit VIP, different ports: allowed */
	struct ms_config *c = expect_ok(MES("a", 80) "status:\n  vip:\n    ip: 242.0.0.9\n" MES("b", 81)
					"status:\n  vip:\n    ip: 242.0.0.9\n");
	const struct ms_port *p = NULL;
	struct ms_addr vip;
	addr_parse("242.0.0.9", &vip);
	assert_ptr_equal(cfg_find_vip(c, "default", &vip, 81, &p), svc(c, "b"));
	assert_int_equal(p->port, 81);
	assert_null(cfg_find_vip(c, "default", &vip, 82, NULL));
	assert_null(cfg_find_vip(c, "other", &vip, 80, NULL));
	cfg_unref(c);
}

static void test_vip_ranges(void **state)
{
	(void)state;
	struct cfg_errors e = { 0 };
	struct cfg_opts o;
	struct ms_config *c;
	const char *y = MES("ext", 80) "---\ntype: MeshService\nname: ms\nspec:\n  selector:\n    dataplaneTags:\n"
				       "      app: x\n  ports:\n    - port: 80\n";

	cfg_opts_init(&o);
	c = load_opts(y, &o, &e);
	assert_non_null(c);
	assert_true(cidr_contains(&o.mes_cidr, &svc(c, "ext")->vip));
	assert_true(cidr_contains(&o.ms_cidr, &svc(c, "ms")->vip));
	cfg_unref(c);
	assert_int_equal(cidr_parse("198.18.128.0/30", &o.mes_cidr), 0);
	c = load_opts(y, &o, &e);
	assert_non_null(c);
	char ip[64];
	addr_fmt(&svc(c, "ext")->vip, ip, sizeof(ip));
	assert_true(streq(ip, "198.18.128.1") || streq(ip, "198.18.128.2"));
	cfg_unref(c);
	cfg_errors_clear(&e);
}

static void test_vip_stability(void **state)
{
	(void)state;
	struct cfg_errors e = { 0 };
	struct ms_config *a, *b;
	char *big = xstrdup("");
	struct ms_vip_table t;

	a = expect_ok(MES("keep", 80));
	/* 200 unrelated services before and after it, in another order */
	for (int i = 199; i >= 0; i--) {
		char *n = xasprintf("%s---\ntype: MeshExternalService\nname: s%d\nspec:\n  match:\n    port: 80\n"
				    "  endpoints:\n    - address: 198.18.0.2\n      port: 80\n%s",
				    i == 100 ? MES("keep", 80) : "", i, big);
		free(big);
		big = n;
	}
	b = expect_ok(big);
	assert_true(addr_eq(&svc(a, "keep")->vip, &svc(b, "keep")->vip));
	/* a previous table wins over the hash, and survives the round trip */
	cfg_vip_table_from_config(b, &t);
	assert_int_equal(t.n, 201);
	char *text = cfg_vip_table_format(&t);
	struct ms_vip_table t2;
	cfg_vip_table_parse(text, &t2);
	assert_int_equal(t2.n, 201);
	addr_parse("242.1.2.3", &t2.v[0].vip);
	free(t2.v[0].key);
	t2.v[0].key = xstrdup("MeshExternalService/default/keep");
	struct cfg_opts o;
	cfg_opts_init(&o);
	o.prev = &t2;
	struct ms_config *c = load_opts(big, &o, &e);
	assert_non_null(c);
	char ip[64];
	assert_string_equal(addr_fmt(&svc(c, "keep")->vip, ip, sizeof(ip)), "242.1.2.3");
	/* and every other service kept its VIP */
	for (size_t i = 0; i < b->n_svcs; i++)
		if (!streq(b->svcs[i].name, "keep"))
			assert_true(addr_eq(&b->svcs[i].vip, &svc(c, b->svcs[i].name)->vip));
	/* no two services share a VIP */
	for (size_t i = 0; i < c->n_svcs; i++)
		for (size_t j = 0; j < i; j++)
			assert_false(addr_eq(&c->svcs[i].vip, &c->svcs[j].vip));
	cfg_unref(c);
	cfg_vip_table_clear(&t);
	cfg_vip_table_clear(&t2);
	free(text);
	free(big);
	cfg_unref(a);
	cfg_unref(b);
	cfg_errors_clear(&e);
}

static void test_hostnames(void **state)
{
	(void)state;
	struct ms_config *c = expect_ok(
		"type: HostnameGenerator\nname: g1\nspec:\n  selector:\n    meshExternalService:\n      matchLabels:\n"
		"        kuma.io/origin: zone\n  template: \"{{ .DisplayName }}.svc.meshext.local\"\n"
		"---\ntype: HostnameGenerator\nname: g2\nspec:\n  selector:\n    meshExternalService:\n      matchLabels:\n"
		"        team: a\n  template: \"{{label \\\"team\\\"}}-{{ .Mesh }}.{{ .Zone }}.test\"\n"
		"---\ntype: HostnameGenerator\nname: g3\nspec:\n  selector:\n    meshService:\n      matchLabels: {}\n"
		"  template: \"{{ .DisplayName }}.{{ .Namespace }}.svc.mesh.local\"\n"
		"---\ntype: MeshExternalService\nname: ext\nlabels:\n  team: a\nspec:\n  match:\n    port: 80\n"
		"  endpoints:\n    - address: 198.18.0.2\n      port: 80\n"
		"---\napiVersion: kuma.io/v1alpha1\nkind: MeshService\nmetadata:\n  name: web\n  namespace: shop\n"
		"spec:\n  selector:\n    dataplaneTags:\n      app: web\n  ports:\n    - port: 80\n"
		"---\ntype: MeshService\nname: nons\nspec:\n  selector:\n    dataplaneTags:\n      app: x\n  ports:\n    - port: 80\n");
	const struct ms_service *ext = svc(c, "ext"), *web = svc(c, "web"), *nons = svc(c, "nons");
	assert_int_equal(ext->n_hostnames, 2);
	assert_string_equal(ext->hostnames[0], "ext.svc.meshext.local");
	assert_string_equal(ext->hostnames[1], "a-default.zone.test");
	assert_int_equal(web->n_hostnames, 1);
	assert_string_equal(web->hostnames[0], "web.shop.svc.mesh.local");
	/* no namespace in Universal: that generator makes no name for it */
	assert_int_equal(nons->n_hostnames, 0);
	cfg_unref(c);

	expect_err("type: HostnameGenerator\nname: g\nspec:\n  selector:\n    meshService: {}\n  template: \"{{ .Nope }}\"\n", 6,
		   "spec.template", "unknown template expression");
	expect_err("type: HostnameGenerator\nname: g\nspec:\n  selector:\n    meshService: {}\n  template: \"{{ .Mesh \"\n", 6,
		   "spec.template", "without a matching");
	/* two services, one name */
	expect_err("type: HostnameGenerator\nname: g\nspec:\n  selector:\n    meshExternalService: {}\n"
		   "  template: \"same.test\"\n" MES("a", 80) MES("b", 80),
		   0, "hostnames", "generated for both");
}

/* Kuma scopes a HostnameGenerator globally: without a mesh it names the
 * services of every mesh; one that names a mesh, that mesh's alone. */
static void test_hostgen_every_mesh(void **state)
{
	(void)state;
	struct ms_config *c = expect_ok(
		"type: Mesh\nname: other\n"
		"---\ntype: HostnameGenerator\nname: all\nspec:\n  selector:\n    meshExternalService: {}\n"
		"  template: \"{{ .DisplayName }}.{{ .Mesh }}.all.test\"\n"
		"---\ntype: HostnameGenerator\nname: one\nmesh: other\nspec:\n  selector:\n    meshExternalService: {}\n"
		"  template: \"{{ .DisplayName }}.one.test\"\n"
		"---\ntype: MeshExternalService\nname: a\nmesh: other\nspec:\n  match:\n    port: 80\n"
		"  endpoints:\n    - address: 198.18.0.2\n      port: 80\n"
		"---\ntype: MeshExternalService\nname: b\nspec:\n  match:\n    port: 80\n"
		"  endpoints:\n    - address: 198.18.0.3\n      port: 80\n");
	const struct ms_service *a = svc(c, "a"), *b = svc(c, "b");
	assert_int_equal(a->n_hostnames, 2);
	assert_string_equal(a->hostnames[0], "a.other.all.test");
	assert_string_equal(a->hostnames[1], "a.one.test");
	/* control: the mesh-bound generator leaves mesh default's service alone */
	assert_int_equal(b->n_hostnames, 1);
	assert_string_equal(b->hostnames[0], "b.default.all.test");
	cfg_unref(c);
}

/* Kuma's Mesh rules for the fields the data plane ignores (mesh_validator.go). */
static void test_kuma_mesh_rules(void **state)
{
	(void)state;
	/* control: every section well formed */
	struct ms_config *c = expect_ok(
		"type: Mesh\nname: m\nmtls:\n  enabledBackend: ca-1\n  backends:\n    - name: ca-1\n      type: builtin\n"
		"logging:\n  defaultBackend: f\n  backends:\n    - name: f\n      type: file\n      conf:\n        path: /tmp/x\n"
		"    - name: t\n      type: tcp\n      conf:\n        address: logs.test:5000\n"
		"tracing:\n  defaultBackend: z\n  backends:\n    - name: z\n      type: zipkin\n      sampling: 50.5\n"
		"      conf:\n        url: http://zipkin.test:9411/api/v2/spans\n        apiVersion: httpJson\n"
		"    - name: dd\n      type: datadog\n      conf:\n        address: 127.0.0.1\n        port: 8126\n"
		"metrics:\n  enabledBackend: p\n  backends:\n    - name: p\n      type: prometheus\n      conf:\n"
		"        skipMTLS: true\n        tls:\n          mode: disabled\n        aggregate:\n          - name: a\n          - name: b\n"
		"constraints:\n  dataplaneProxy:\n    requirements:\n      - tags:\n          kuma.io/zone: '*'\n"
		"routing:\n  zoneEgress: true\n");
	cfg_unref(c);
#define M(body) "type: Mesh\nname: m\n" body
	expect_err(M("mtls:\n  backends:\n    - name: a\n      type: builtin\n    - name: b\n      type: builtin\n"), 5,
		   "mtls.backends", "cannot have more than 1 backends");
	expect_err(M("mtls:\n  backends:\n    - name: a\n      type: builtin\n    - name: a\n      type: builtin\n"), 7,
		   "mtls.backends[1].name", "already used");
	expect_err(M("mtls:\n  enabledBackend: b\n  backends:\n    - name: a\n      type: builtin\n"), 4,
		   "mtls.enabledBackend", "one of the backends");
	expect_err(M("logging:\n  backends:\n    - name:\n      type: file\n      conf:\n        path: /x\n"), 5,
		   "logging.backends[0].name", "cannot be empty");
	expect_err(M("logging:\n  backends:\n    - name: t\n      type: tcp\n      conf:\n        address: a:1:2\n"), 8,
		   "logging.backends[0].conf.address", "HOST:PORT");
	expect_err(M("logging:\n  backends:\n    - name: t\n      type: tcp\n"), 5,
		   "logging.backends[0].conf.address", "cannot be empty");
	expect_err(M("logging:\n  backends:\n    - name: f\n      type: file\n      conf:\n        path:\n"), 8,
		   "logging.backends[0].conf.path", "cannot be empty");
	expect_err(M("logging:\n  defaultBackend: x\n  backends:\n    - name: f\n      type: file\n      conf:\n        path: /x\n"), 4,
		   "logging.defaultBackend", "one of the logging backend");
	expect_err(M("logging:\n  backends:\n    - name: f\n      type: syslog\n"), 6, "logging.backends[0].type",
		   "unknown backend type");
	expect_err(M("tracing:\n  backends:\n    - name: z\n      type: zipkin\n      conf:\n        url: not-a-url\n"), 8,
		   "tracing.backends[0].conf.url", "invalid URL");
	expect_err(M("tracing:\n  backends:\n    - name: z\n      type: zipkin\n      conf:\n        url: http://z.test/spans\n"), 8,
		   "tracing.backends[0].conf.url", "port has to be explicitly specified");
	expect_err(M("tracing:\n  backends:\n    - name: z\n      type: zipkin\n      conf:\n        url: http://z.test:1/\n"
		     "        apiVersion: v3\n"), 9, "tracing.backends[0].conf.apiVersion", "invalid value");
	expect_err(M("tracing:\n  backends:\n    - name: z\n      type: zipkin\n      sampling: 101\n      conf:\n        url: http://z.test:1/\n"),
		   7, "tracing.backends[0].sampling", "[0.0 - 100.0]");
	expect_err(M("tracing:\n  backends:\n    - name: d\n      type: datadog\n      conf:\n        address: x\n"), 8,
		   "tracing.backends[0].conf.port", "[1, 65535]");
	expect_err(M("metrics:\n  enabledBackend: q\n  backends:\n    - name: p\n      type: prometheus\n"), 4,
		   "metrics.enabledBackend", "one of the backends");
	expect_err(M("metrics:\n  backends:\n    - name: p\n      type: statsd\n"), 6, "metrics.backends[0].type",
		   "unknown backend type");
	expect_err(M("metrics:\n  backends:\n    - name: p\n      type: prometheus\n      conf:\n        skipMTLS: true\n"
		     "        tls:\n          mode: activeMTLSBackend\n"), 8, "metrics.backends[0].conf", "cannot be defined together");
	expect_err(M("metrics:\n  backends:\n    - name: p\n      type: prometheus\n      conf:\n        aggregate:\n"
		     "          - name: a\n          - name: a\n"), 10, "metrics.backends[0].conf.aggregate[1].name", "duplicate entry");
	expect_err(M("constraints:\n  dataplaneProxy:\n    requirements:\n      - {}\n"), 6,
		   "constraints.dataplaneProxy.requirements[0].tags", "at least one tag");
	expect_err(M("constraints:\n  dataplaneProxy:\n    restrictions:\n      - tags:\n          'a b': x\n"), 7,
		   "constraints.dataplaneProxy.restrictions[0].tags.a b", "tag name must consist");
	expect_err(M("routing:\n  zoneEgress: true\n"), 4, "mtls", "has to be set when zoneEgress enabled");
	expect_err(M("mtls:\n  backends:\n    - name: a\n      type: builtin\n      dpCert:\n        rotation:\n"
		     "          expiration: 1.5h\n"), 9, "mtls.dpcert.rotation.expiration", "valid format");
	c = expect_ok(M("mtls:\n  backends:\n    - name: a\n      type: builtin\n      dpCert:\n        rotation:\n"
			"          expiration: 10d\n"));
	cfg_unref(c);
	/* Kubernetes: the same under spec */
	expect_err("apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: m\nspec:\n  metrics:\n    enabledBackend: x\n",
		   7, "spec.metrics.enabledBackend", "one of the backends");
#undef M
}

/* Kuma's Dataplane rules (dataplane_validator.go). */
static void test_kuma_dataplane_rules(void **state)
{
	(void)state;
#define DP(net) "type: Dataplane\nname: d\nnetworking:\n  address: 198.18.1.1\n" net
#define IN "  inbound:\n    - port: 8080\n      tags:\n        kuma.io/service: web\n"
	/* control: what Kuma takes */
	struct ms_config *c = expect_ok(
		DP("  inbound:\n    - port: 8080\n      servicePort: 80\n      serviceAddress: 198.18.1.2\n"
		   "      tags:\n        kuma.io/service: web\n        kuma.io/protocol: http\n"
		   "      serviceProbe:\n        interval: 1s\n        timeout: 0.5s\n        healthyThreshold: 2\n"
		   "  outbound:\n    - port: 3333\n      tags:\n        kuma.io/service: db\n"
		   "    - port: 3334\n      backendRef:\n        kind: MeshService\n        name: db\n        port: 5432\n"
		   "  listeners:\n    - type: ZoneIngress\n      address: 198.18.1.1\n      port: 10001\n      name: zi\n"
		   "  admin:\n    port: 9901\n")
		"probes:\n  port: 9000\n  endpoints:\n    - inboundPort: 8080\n      inboundPath: /healthz\n      path: /8080/healthz\n"
		"---\ntype: Dataplane\nname: g\nnetworking:\n  address: 198.18.1.9\n"
		"  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: gw\n");
	cfg_unref(c);
	expect_err("type: Dataplane\nname: d\nnetworking:\n  address: 0.0.0.0\n" IN, 4, "networking.address",
		   "must not be 0.0.0.0 or ::");
	expect_err("type: Dataplane\nname: d\nnetworking:\n  address: '::'\n" IN, 4, "networking.address",
		   "must not be 0.0.0.0 or ::");
	expect_err("type: Dataplane\nname: d\nnetworking:\n  address: 2001:2::1:8080]\n" IN, 4, "networking.address",
		   "valid IP address or domain name");
	expect_err(DP("  inbound:\n    - port: 8080\n      tags:\n        version: v1\n"), 8,
		   "networking.inbound[0].tags.kuma.io/service", "tag has to exist");
	expect_err(DP("  inbound:\n    - port: 8080\n      tags:\n        kuma.io/service: web\n        version: 'v 1'\n"), 9,
		   "networking.inbound[0].tags.version", "tag value must consist");
	expect_err(DP("  inbound:\n    - port: 8080\n      tags:\n        kuma.io/service: web\n        kuma.io/protocol: smtp\n"), 9,
		   "networking.inbound[0].tags.kuma.io/protocol", "has an invalid value \"smtp\"");
	expect_err(DP("  inbound:\n    - port: 8080\n      serviceAddress: 198.18.1.1\n      tags:\n        kuma.io/service: web\n"), 7,
		   "networking.inbound[0].serviceAddress", "has to differ");
	expect_err(DP("  inbound:\n    - port: 8080\n      serviceAddress: web.test\n      tags:\n        kuma.io/service: web\n"), 7,
		   "networking.inbound[0].serviceAddress", "valid IP address");
	expect_err(DP("  inbound:\n    - port: 0\n      tags:\n        kuma.io/service: web\n"), 6,
		   "networking.inbound[0].port", "[1, 65535]");
	expect_err(DP("  inbound:\n    - port: 8080\n      tags:\n        kuma.io/service: web\n      serviceProbe:\n        interval: 0s\n"), 10,
		   "networking.inbound[0].serviceProbe.interval", "positive");
	expect_err(DP("  inbound:\n    - port: 8080\n      tags:\n        kuma.io/service: web\n      serviceProbe:\n        unhealthyThreshold: 0\n"), 10,
		   "networking.inbound[0].serviceProbe.unhealthyThreshold", "positive");
	expect_err(DP(IN "  outbound:\n    - port: 3333\n      address: db\n      tags:\n        kuma.io/service: db\n"), 11,
		   "networking.outbound[0].address", "valid IP address");
	expect_err(DP(IN "  outbound:\n    - port: 3333\n      tags:\n        version: v1\n"), 12,
		   "networking.outbound[0].tags", "mandatory tag \"kuma.io/service\"");
	expect_err(DP(IN "  outbound:\n    - port: 3333\n      backendRef:\n        kind: Secret\n        name: x\n        port: 1\n"), 12,
		   "networking.outbound[0].backendRef.kind", "invalid value");
	expect_err(DP(IN "  outbound:\n    - port: 3333\n      backendRef:\n        kind: MeshService\n        name: x\n"), 12,
		   "networking.outbound[0].backendRef.port", "[1, 65535]");
	expect_err(DP("  inbound:\n    - port: 8080\n      servicePort: 9901\n      serviceAddress: 127.0.0.1\n"
		      "      tags:\n        kuma.io/service: web\n  admin:\n    port: 9901\n"), 12, "networking.admin.port",
		   "must differ from inbound");
	expect_err(DP(IN "  outbound:\n    - port: 9901\n      tags:\n        kuma.io/service: db\n  admin:\n    port: 9901\n"), 14,
		   "networking.admin.port", "must differ from outbound");
	expect_err(DP("  gateway:\n    tags:\n      version: v1\n"), 7, "networking.gateway.tags", "mandatory tag");
	expect_err(DP("  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: gw\n      kuma.io/protocol: http\n"), 9,
		   "networking.gateway.tags.kuma.io/protocol", "other values than tcp");
	expect_err(DP("  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: gw\n"
		      "  outbound:\n    - port: 3333\n      tags:\n        kuma.io/service: db\n"), 10,
		   "networking.outbound", "cannot be defined for builtin gateways");
	expect_err(DP("  gateway:\n    tags:\n      kuma.io/service: gw\n" IN), 9, "networking.inbound",
		   "cannot be defined for delegated gateways");
	expect_err(DP(IN "  listeners:\n    - type: ZoneIngress\n      address: 198.18.1.1\n      port: 8080\n"), 10,
		   "networking.listeners[0]", "collides with an inbound");
	expect_err(DP(IN "  listeners:\n    - address: 198.18.1.1\n      port: 10001\n"), 10,
		   "networking.listeners[0].type", "ZoneIngress or ZoneEgress");
	expect_err(DP("  inbound:\n    - port: 8080\n      name: http\n      tags:\n        kuma.io/service: web\n"
		      "  listeners:\n    - type: ZoneEgress\n      address: 198.18.1.1\n      port: 10002\n      name: http\n"), 14,
		   "networking.listeners[0].name", "must be unique");
	expect_err(DP(IN "  listeners:\n    - type: ZoneIngress\n      address: 198.18.1.1\n      port: 10001\n"
		      "    - type: ZoneEgress\n      address: 198.18.1.1\n      port: 10001\n"), 13,
		   "networking.listeners[1]", "used by listeners of different types");
	expect_err(DP(IN) "probes:\n  port: 9000\n  endpoints:\n    - inboundPort: 8080\n      inboundPath: healthz\n      path: /x\n", 13,
		   "probes.endpoints[0].inboundPath", "valid URL Path");
	expect_err(DP(IN) "probes:\n  port: 0\n", 10, "probes.port", "[1, 65535]");
	expect_err(DP(IN) "metrics:\n  type: statsd\n", 10, "metrics.type", "unknown backend type");
	expect_err(DP(IN "  transparentProxying:\n    reachableBackends:\n      refs:\n        - kind: MeshService\n          namespace: x\n"), 12,
		   "networking.transparentProxing.reachableBackends.refs[0].name", "name is required, when namespace is defined");
#undef IN
#undef DP
}

/* ExternalService tags as Kuma checks them; a Kubernetes List read item by
 * item; a Secret of a mesh not defined is taken (Kuma takes it). */
static void test_kuma_es_tags_list_secret(void **state)
{
	(void)state;
#define ES(tags) "type: ExternalService\nname: es\nmesh: default\ntags:\n  kuma.io/service: es\n" tags \
	"networking:\n  address: up.example.test:443\n"
	struct ms_config *c = expect_ok(ES("  kuma.io/protocol: TLS\n  version: v1.2_x\n"));
	cfg_unref(c);
	expect_err(ES("  'inv@lid': x\n"), 6, "tags.inv@lid", "tag name must consist");
	expect_err(ES("  team: 'a b'\n"), 6, "tags.team", "tag value must consist");
	expect_err(ES("  kuma.io/protocol: smtp\n"), 6, "tags.kuma.io/protocol", "has an invalid value");
	expect_err("type: ExternalService\nname: es\nmesh: default\ntags:\n  kuma.io/service: up.example.test\n"
		   "networking:\n  address: up.example.test:443\n", 5, "tags.kuma.io/service",
		   "cannot be the same as networking.address");
#undef ES
	static const char list[] =
		"apiVersion: v1\nkind: List\nitems:\n"
		"  - apiVersion: kuma.io/v1alpha1\n    kind: Mesh\n    metadata:\n      name: one\n"
		"  - apiVersion: kuma.io/v1alpha1\n    kind: Mesh\n    metadata:\n      name: two\n"
		"    spec:\n      networking:\n        outbound:\n          passthrough: false\n";
	c = expect_ok(list);
	assert_non_null(cfg_find_mesh(c, "one"));
	assert_false(cfg_find_mesh(c, "two")->passthrough);
	cfg_unref(c);
	expect_err("apiVersion: v1\nkind: List\nitems:\n  - apiVersion: kuma.io/v1alpha1\n    kind: Mesh\n"
		   "    metadata:\n      name: m\n    spec:\n      mtls:\n        enabledBackend: x\n", 10,
		   "spec.mtls.enabledBackend", "one of the backends");
	expect_err("apiVersion: v1\nkind: List\nitems: {}\n", 3, "items", "expected a list");
	/* a List inside a List is no resource */
	expect_err("apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: List\n    items: []\n", 5, "kind",
		   "unknown resource \"List\"");
	/* an empty inline source: Kuma's words, at the source, nothing said of PEM */
	expect_err(MES("a", 80) "  tls:\n    verification:\n      caCert:\n        inline: \"\"\n", 14,
		   "spec.tls.verification.caCert", "data source cannot be empty");
	struct cfg_errors e = { 0 };
	c = load(MES("a", 80) "  tls:\n    verification:\n      caCert:\n        inline: \"\"\n", &e);
	assert_null(c);
	assert_false(has_error(&e, 0, NULL, "PEM"));
	cfg_errors_clear(&e);
	/* Kubernetes Secrets as Kuma's webhook checks them */
	expect_err("apiVersion: v1\nkind: Secret\nmetadata:\n  name: g\n  labels:\n    kuma.io/mesh: default\n"
		   "type: system.kuma.io/global-secret\ndata:\n  value: dGVzdA==\n", 6, "metadata.labels.kuma.io/mesh",
		   "mesh cannot be set on global secret");
	expect_err("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ntype: system.kuma.io/secret\ndata:\n  value: \"\"\n", 7,
		   "data.value", "cannot be empty");
	c = expect_ok("apiVersion: v1\nkind: Secret\nmetadata:\n  name: g\ntype: system.kuma.io/global-secret\ndata:\n  value: dGVzdA==\n");
	cfg_unref(c);
	c = load("type: Secret\nname: s\nmesh: later\ndata: dGVzdA==\n", &e);
	assert_non_null(c);
	assert_true(has_error(&e, 1, "mesh", "the Secret is unused"));
	cfg_unref(c);
	cfg_errors_clear(&e);
}

static void test_template_render(void **state)
{
	(void)state;
	struct ms_service s = { .name = "n", .display_name = "dn", .mesh = "m", .ns = "ns" };
	char *kv[] = { "app", "web", "bad", "a b" };
	char *err = NULL, *r;

	s.labels.kv = kv;
	s.labels.n = 2;
	r = cfg_template_render("{{.DisplayName}}.{{ label \"app\" }}.{{ .Zone }}", &s, "z1", &err);
	assert_string_equal(r, "dn.web.z1");
	free(r);
	assert_null(cfg_template_render("{{ label \"bad\" }}.test", &s, "z", &err));
	assert_non_null(strstr(err, "not a valid DNS name"));
	free(err);
	assert_null(cfg_template_render("{{ label \"none\" }}.test", &s, "z", &err));
	assert_non_null(strstr(err, "no label \"none\""));
	free(err);
}

static void test_mesh_service_dataplanes(void **state)
{
	(void)state;
	struct ms_config *c = expect_ok(
		"type: MeshService\nname: redis\nspec:\n  selector:\n    dataplaneTags:\n      app: redis\n"
		"  ports:\n    - port: 6379\n      targetPort: 6379\n    - name: admin\n      port: 16379\n"
		"      targetPort: admin-port\n      appProtocol: http\n"
		"---\ntype: Dataplane\nname: r1\nmesh: default\nnetworking:\n  address: 198.18.1.1\n  inbound:\n"
		"    - port: 6379\n      tags:\n        app: redis\n        kuma.io/service: redis\n"
		"    - port: 7000\n      name: admin-port\n      tags:\n        app: redis\n        kuma.io/service: redis-admin\n"
		"---\ntype: Dataplane\nname: r2\nnetworking:\n  address: 198.18.1.2\n  inbound:\n"
		"    - port: 6379\n      tags:\n        app: redis\n        kuma.io/service: redis\n"
		"---\ntype: Dataplane\nname: other\nnetworking:\n  address: 198.18.1.3\n  inbound:\n"
		"    - port: 6379\n      tags:\n        app: web\n        kuma.io/service: web\n");
	const struct ms_service *s = svc(c, "redis");
	assert_int_equal(s->n_ports, 2);
	assert_int_equal(s->ports[0].n_eps, 2);
	assert_string_equal(s->ports[0].eps[0].host, "198.18.1.1");
	assert_string_equal(s->ports[0].eps[1].host, "198.18.1.2");
	assert_int_equal(s->ports[1].n_eps, 1);
	assert_int_equal(s->ports[1].eps[0].port, 7000);
	assert_int_equal(s->ports[1].proto, MS_PROTO_HTTP);
	cfg_unref(c);
	expect_err("type: MeshService\nname: r\nspec:\n  selector:\n    dataplaneTags:\n      app: r\n  ports:\n"
		   "    - port: 80\n      targetPort: 99999\n",
		   9, "spec.ports[0].targetPort", "out of range");
	expect_err("type: Dataplane\nname: d\nnetworking:\n  address: no.host!\n", 4, "networking.address",
		   "has to be valid IP address or domain name");
	/* Kuma takes a DNS name; its inbounds serve nothing here, and it says so */
	struct cfg_errors e = { 0 };
	c = load("type: Dataplane\nname: d\nnetworking:\n  address: dp.example.test\n  inbound:\n    - port: 80\n", &e);
	assert_non_null(c);
	assert_true(has_error(&e, 4, "networking.address", "is a DNS name"));
	cfg_unref(c);
	cfg_errors_clear(&e);
}

/* The three selectors Kuma has (its own Kubernetes controller writes
 * dataplaneRef and dataplaneLabels), only one at a time; selector and ports
 * are optional. */
static void test_mesh_service_selectors(void **state)
{
	(void)state;
	static const char dps[] =
		"---\napiVersion: kuma.io/v1alpha1\nkind: Dataplane\nmetadata:\n  name: web-1\n  namespace: demo\n"
		"  labels:\n    app: web\nspec:\n  networking:\n    address: 198.18.2.1\n    inbound:\n"
		"      - port: 8080\n        tags:\n          kuma.io/service: web\n"
		"---\napiVersion: kuma.io/v1alpha1\nkind: Dataplane\nmetadata:\n  name: web-2\n  namespace: demo\n"
		"  labels:\n    app: web\nspec:\n  networking:\n    address: 198.18.2.2\n    inbound:\n"
		"      - port: 8080\n        tags:\n          kuma.io/service: web\n"
		"---\napiVersion: kuma.io/v1alpha1\nkind: Dataplane\nmetadata:\n  name: db-1\n  namespace: demo\n"
		"  labels:\n    app: db\nspec:\n  networking:\n    address: 198.18.2.3\n    inbound:\n"
		"      - port: 8080\n        tags:\n          kuma.io/service: db\n";
	_cleanup_free_ char *y = xasprintf(
		"apiVersion: kuma.io/v1alpha1\nkind: MeshService\nmetadata:\n  name: one\n  namespace: demo\n"
		"spec:\n  selector:\n    dataplaneRef:\n      name: web-2.demo\n  ports:\n    - port: 80\n      targetPort: 8080\n"
		"      appProtocol: HTTP\n"
		"---\napiVersion: kuma.io/v1alpha1\nkind: MeshService\nmetadata:\n  name: by-labels\n  namespace: demo\n"
		"spec:\n  selector:\n    dataplaneLabels:\n      matchLabels:\n        app: web\n        k8s.kuma.io/namespace: demo\n"
		"  ports:\n    - port: 80\n      targetPort: 8080\n"
		"---\ntype: MeshService\nname: bare\nspec: {}\n%s",
		dps);
	struct ms_config *c = expect_ok(y);
	const struct ms_service *one = svc(c, "one"), *lab = svc(c, "by-labels"), *bare = svc(c, "bare");
	assert_int_equal(one->ports[0].n_eps, 1);
	assert_string_equal(one->ports[0].eps[0].host, "198.18.2.2");
	assert_int_equal(one->ports[0].proto, MS_PROTO_HTTP); /* TCP, HTTP: Kuma takes either case */
	assert_int_equal(lab->ports[0].n_eps, 2); /* web-1 and web-2, not db-1 */
	assert_string_equal(lab->ports[0].eps[0].host, "198.18.2.1");
	assert_string_equal(lab->ports[0].eps[1].host, "198.18.2.2");
	assert_int_equal(bare->n_ports, 0);
	cfg_unref(c);
	c = expect_warn("type: MeshService\nname: m\nspec:\n  ports:\n    - port: 80\n      appProtocol: kuma.io/ws\n", 6,
			"spec.ports[0].appProtocol", "taken as tcp");
	assert_int_equal(svc(c, "m")->ports[0].proto, MS_PROTO_TCP);
	cfg_unref(c);
	expect_err("type: MeshService\nname: m\nspec:\n  selector:\n    dataplaneTags:\n      app: a\n"
		   "    dataplaneRef:\n      name: x\n", 5, "spec.selector", "only one of");
}

/* Kuma's rules for every resource's name, mesh and labels, in both styles;
 * and a number where a string belongs is the number it is to Kuma. */
static void test_resource_names_and_labels(void **state)
{
	(void)state;
	/* control: names and labels Kuma takes */
	struct ms_config *c = expect_ok("type: Mesh\nname: m-1.x\nlabels:\n  team: a_b.c\n  example.com/tier: \"\"\n"
					"---\ntype: Secret\nname: s\nmesh: m-1.x\ndata: eA==\n");
	cfg_unref(c);
	expect_err("type: Mesh\nname: Big\n", 2, "name", "RFC 1123 subdomain");
	expect_err("apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: a_b\n", 4, "metadata.name",
		   "RFC 1123 subdomain");
	expect_err("type: MeshExternalService\nname: "
		   "a123456789b123456789c123456789d123456789e123456789f123456789g1234\nspec:\n  match:\n    port: 80\n",
		   2, "name", "less or equal 63");
	expect_err("type: Secret\nname: s\nmesh: def$ault\ndata: eA==\n", 3, "mesh", "invalid characters");
	expect_err("type: Mesh\nname: m\nlabels:\n  \"kuma.io/Not Valid!\": x\n", 4, "labels.kuma.io/Not Valid!",
		   "name part must consist");
	expect_err("type: Mesh\nname: m\nlabels:\n  kuma.io/custom: \"not valid!!\"\n", 4, "labels.kuma.io/custom",
		   "a valid label must be");
	expect_err("type: Mesh\nname: m\nlabels:\n  kuma.io/origin: bogus\n", 4, "labels.kuma.io/origin",
		   "neither zone nor global");
	expect_err("type: Secret\nname: s\nmesh: default\nlabels:\n  kuma.io/mesh: other\ndata: eA==\n", 5,
		   "labels.kuma.io/mesh", "must not differ from mesh");
	expect_err("apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: m\n  labels:\n    a/b/c: x\n", 6,
		   "metadata.labels.a/b/c", "prefix");
	/* numbers */
	expect_err("type: Mesh\nname: 4\n", 2, "name", "got the number 4");
	expect_err("type: Mesh\nname: m\nlabels:\n  version: 1.0\n", 4, "labels.version", "got the number 1.0");
	c = expect_ok("type: Mesh\nname: m\nlabels:\n  version: \"1.0\"\n  build: 1.0.3\n  hex: 0xg\n");
	cfg_unref(c);
}

/* HostnameGenerator as Kuma validates it: exactly one selector, a template
 * that is not empty and renders (with Kuma's stub values) to a DNS-1123
 * subdomain, an extension with a type. */
static void test_hostgen_rules(void **state)
{
	(void)state;
#define HG(sel, tmpl) "type: HostnameGenerator\nname: g\nspec:\n  selector:\n" sel "  template: '" tmpl "'\n"
	struct ms_config *c = expect_ok(HG("    meshService: {}\n", "{{ .Name }}.{{ label \"team\" }}.mesh"));
	cfg_unref(c);
	expect_err(HG("    meshService: {}\n    meshExternalService: {}\n", "{{ .Name }}.mesh"), 5, "spec.selector",
		   "exact one selector");
	expect_err("type: HostnameGenerator\nname: g\nspec:\n  selector: {}\n  template: x.mesh\n", 4, "spec.selector",
		   "exact one selector");
	expect_err(HG("    meshService: {}\n", ""), 6, "spec.template", "must not be empty");
	expect_err(HG("    meshService: {}\n", "{{ .Name }}.MESH"), 6, "spec.template", "not a valid DNS name");
	expect_err(HG("    meshService: {}\n", "{{ .Name }}..mesh"), 6, "spec.template", "not a valid DNS name");
	expect_err(HG("    meshService: {}\n", "{{ .Name }}_svc.mesh"), 6, "spec.template", "not a valid DNS name");
	expect_err(HG("    meshService: {}\n", "{{ .Name }}.mesh") "  extension:\n    config: {}\n", 8,
		   "spec.extension.type", "must not be empty");
#undef HG
}

static void test_legacy_external_service(void **state)
{
	(void)state;
	struct ms_config *c = expect_ok(
		"type: ExternalService\nmesh: default\nname: es\ntags:\n  kuma.io/service: httpbin\n  kuma.io/protocol: http\n"
		"networking:\n  address: up.example.test:8443\n  tls:\n    enabled: true\n    serverName: \"\"\n"
		"---\napiVersion: kuma.io/v1alpha1\nkind: ExternalService\nmesh: default\nmetadata:\n  name: es2\n"
		"spec:\n  tags:\n    kuma.io/service: v6\n  networking:\n    address: \"[2001:2::9]:443\"\n");
	const struct ms_service *s = svc(c, "es"), *s2 = svc(c, "es2");
	assert_true(s->tls.enabled);
	assert_true(s->tls.sni_disabled);
	assert_int_equal(s->ports[0].port, 8443);
	assert_int_equal(s->ports[0].proto, MS_PROTO_HTTP);
	assert_string_equal(s->ports[0].eps[0].host, "up.example.test");
	assert_string_equal(s->hostnames[0], "httpbin.mesh");
	assert_int_equal(s2->ports[0].eps[0].type, MS_EP_IP);
	assert_int_equal(s2->ports[0].eps[0].port, 443);
	cfg_unref(c);
	expect_err("type: ExternalService\nname: es\ntags:\n  kuma.io/service: x\nnetworking:\n  address: nohost\n", 6,
		   "networking.address", "not host:port");
	expect_err("type: ExternalService\nname: es\ntags:\n  a: b\nnetworking:\n  address: h.test:1\n", 4, "tags",
		   "mandatory tag \"kuma.io/service\" is missing");
}

static void test_all_errors_at_once(void **state)
{
	(void)state;
	struct cfg_errors e = { 0 };
	assert_null(load("type: Mesh\nname: m\nfoo: 1\n---\n" MES("a", 99999) "---\ntype: Widget\nname: w\n", &e));
	assert_int_equal(e.n, 3);
	assert_true(has_error(&e, 3, "foo", "unknown field"));
	assert_true(has_error(&e, 11, "spec.match.port", "out of range"));
	assert_true(has_error(&e, 16, "type", "unknown resource \"Widget\""));
	cfg_errors_clear(&e);
}

static size_t count_nodes(const struct ynode *n)
{
	size_t c = 1;

	for (size_t i = 0; n && i < n->n; i++)
		c += count_nodes(n->v[i]);
	return c;
}

/* Nodes of every document of yaml, as ydom counts them against its limits. */
static size_t nodes_of(const char *yaml, size_t len)
{
	struct cfg_errors e = { 0 };
	struct ydoc *docs = NULL;
	int n = ydom_parse(yaml, len, "t.yaml", &e, &docs);
	size_t total = 0;

	assert_true(n > 0);
	for (int i = 0; i < n; i++)
		total += count_nodes(docs[i].root);
	ydom_free_docs(docs, (size_t)n);
	cfg_errors_clear(&e);
	return total;
}

static void mes_many_endpoints(struct strbuf *b, size_t i)
{
	strbuf_printf(b, "---\ntype: MeshExternalService\nname: s%zu\nspec:\n  match: {port: 80}\n"
		      "  endpoints:\n", i);
	for (int j = 0; j < 16; j++)
		strbuf_printf(b, "    - {address: 198.18.%d.%zu, port: 80}\n", j, 1 + i % 250);
}

static void test_yaml_limits(void **state)
{
	(void)state;
	expect_err("a: &a [ *a ]\n", 1, "", "cycle");
	expect_err("a: *nope\n", 1, "", "has no anchor");
	expect_err("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n"
		   "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
		   "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
		   "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
		   "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
		   "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
		   "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",
		   0, "", "more than 100000 nodes");
	/* the limit is per document: a file of many documents with more than
	 * YDOM_MAX_NODES nodes in all loads. Documents of 16 endpoints get over
	 * it with about a thousand services (20,000 one-endpoint services took
	 * a minute under ASan, whose realloc always moves the growing array of
	 * services). */
	struct strbuf many = { 0 };
	mes_many_endpoints(&many, 0);
	size_t per_doc = nodes_of(many.s, many.len), n_docs = YDOM_MAX_NODES / per_doc + 1;
	for (size_t i = 1; i < n_docs; i++)
		mes_many_endpoints(&many, i);
	struct ms_config *mc = expect_ok(many.s);
	assert_int_equal(mc->n_svcs, n_docs);
	assert_true(n_docs * per_doc > YDOM_MAX_NODES);
	assert_int_equal(nodes_of(many.s, many.len), n_docs * per_doc);
	cfg_unref(mc);
	free(many.s);
	/* and the file's whole is bounded too: 6 documents of ~92,000 expanded nodes */
	struct strbuf laughs = { 0 };
	for (int i = 0; i < 6; i++)
		strbuf_printf(&laughs, "---\na: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n"
			      "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
			      "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d]\n");
	expect_err(laughs.s, 0, "", "file has more than 500000 nodes");
	free(laughs.s);
	char deep[400] = "";
	for (int i = 0; i < 100; i++)
		strcat(deep, "[");
	expect_err(deep, 1, "", "deeper than 64");
	size_t big = (1u << 20) + 16;
	char *s = xcalloc(big + 16, 1);
	memcpy(s, "a: ", 3);
	memset(s + 3, 'x', big);
	expect_err(s, 1, "", "longer than 1 MiB");
	free(s);
	expect_err("a: [1, 2\n", 0, "", "invalid YAML");
	/* aliases within limits still work */
	struct ms_config *c = expect_ok("type: MeshExternalService\nname: a\nspec:\n  match: {port: 80}\n  endpoints:\n"
					"    - &ep\n      address: 198.18.0.2\n      port: 80\n    - *ep\n");
	assert_int_equal(svc(c, "a")->ports[0].n_eps, 2);
	cfg_unref(c);
}

static void test_not_a_resource(void **state)
{
	(void)state;
	expect_err("- a\n- b\n", 1, "", "must be a mapping");
	expect_err("name: x\n", 1, "", "not a resource");
	expect_err("apiVersion: v1\nkind: Mesh\n", 1, "metadata", "required");
	struct ms_config *c = expect_ok("---\n---\n# only comments\n");
	cfg_unref(c);
}

static void test_directory(void **state)
{
	(void)state;
	char dir[] = "/tmp/ms-cfg-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *a = xasprintf("%s/a.yaml", dir), *b = xasprintf("%s/b.yml", dir), *x = xasprintf("%s/c.txt", dir);
	assert_int_equal(write_file_atomic(a, MES("one", 80), strlen(MES("one", 80)), 0644), 0);
	assert_int_equal(write_file_atomic(b, MES("two", 80), strlen(MES("two", 80)), 0644), 0);
	assert_int_equal(write_file_atomic(x, "garbage: [", 10, 0644), 0);
	const char *p = dir;
	struct cfg_errors e = { 0 };
	struct ms_config *c = NULL;
	struct cfg_opts o;
	cfg_opts_init(&o);
	assert_int_equal(cfg_load_paths(&p, 1, &o, &e, &c), 0);
	assert_int_equal(c->n_files, 2);
	assert_int_equal(c->n_svcs, 2);
	cfg_unref(c);
	/* an empty directory: the implicit default mesh, nothing else */
	char empty[] = "/tmp/ms-cfg-empty-XXXXXX";
	assert_non_null(mkdtemp(empty));
	const char *ep = empty;
	assert_int_equal(cfg_load_paths(&ep, 1, &o, &e, &c), 0);
	assert_int_equal(c->n_files, 0);
	assert_int_equal(c->n_svcs, 0);
	assert_non_null(cfg_find_mesh(c, "default"));
	cfg_unref(c);
	rmdir(empty);
	/* a missing path is an error, not an empty config */
	const char *missing = "/nonexistent/meshsplice";
	assert_true(cfg_load_paths(&missing, 1, &o, &e, &c) < 0);
	assert_true(e.n == 1 && strstr(e.v[0].msg, "cannot read"));
	cfg_errors_clear(&e);
	unlink(a);
	unlink(b);
	unlink(x);
	rmdir(dir);
	free(a);
	free(b);
	free(x);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Load dir; return the config (or NULL) and leave the problems in e. */
static struct ms_config *load_dir(const char *dir, struct cfg_errors *e)
{
	struct ms_config *c = NULL;
	struct cfg_opts o;

	cfg_opts_init(&o);
	cfg_load_paths(&dir, 1, &o, e, &c);
	return c;
}

static size_t count_msgs(const struct cfg_errors *e, bool warning, const char *needle)
{
	size_t n = 0;

	for (size_t i = 0; i < e->n; i++)
		n += e->v[i].warning == warning && strstr(e->v[i].msg, needle);
	return n;
}

/* A FIFO named *.yaml and two "x.yaml -> ." links beside one real file: the
 * load neither blocks nor recurses, and says what it skipped. */
static void test_directory_traps(void **state)
{
	(void)state;
	char dir[] = "/tmp/ms-cfg-traps-XXXXXX", out[] = "/tmp/ms-cfg-out-XXXXXX";
	assert_non_null(mkdtemp(dir));
	assert_non_null(mkdtemp(out));
	_cleanup_free_ char *a = xasprintf("%s/a.yaml", dir), *fifo = xasprintf("%s/fifo.yaml", dir);
	_cleanup_free_ char *x = xasprintf("%s/x.yaml", dir), *y = xasprintf("%s/y.yaml", dir);
	_cleanup_free_ char *f = xasprintf("%s/f.yaml", dir), *target = xasprintf("%s/t", out);
	struct cfg_errors e = { 0 };
	struct ms_config *c;

	assert_int_equal(write_file_atomic(a, MES("one", 80), strlen(MES("one", 80)), 0644), 0);
	/* control: the one file alone loads without a word */
	c = load_dir(dir, &e);
	assert_non_null(c);
	assert_int_equal(c->n_svcs, 1);
	assert_int_equal(e.n, 0);
	cfg_unref(c);

	assert_int_equal(mkfifo(fifo, 0644), 0);
	assert_int_equal(symlink(".", x), 0);
	assert_int_equal(symlink(".", y), 0);
	/* a symlink to a file outside is followed (ConfigMap mounts are links) */
	assert_int_equal(write_file_atomic(target, MES("two", 81), strlen(MES("two", 81)), 0644), 0);
	assert_int_equal(symlink(target, f), 0);
	c = load_dir(dir, &e);
	if (!c || e.n != 3)
		dump(&e);
	assert_non_null(c);
	assert_int_equal(c->n_files, 2);
	assert_int_equal(c->n_svcs, 2);
	assert_non_null(svc(c, "two"));
	assert_int_equal(e.n, 3);
	assert_int_equal(e.n_warnings, 3);
	assert_int_equal(count_msgs(&e, true, "a FIFO, not a regular file"), 1);
	assert_int_equal(count_msgs(&e, true, "symlink to a directory: not followed"), 2);
	cfg_unref(c);
	cfg_errors_clear(&e);

	/* a FIFO named on the command line is refused, not waited for */
	const char *p = fifo;
	struct cfg_opts o;
	cfg_opts_init(&o);
	c = NULL;
	assert_int_equal(cfg_load_paths(&p, 1, &o, &e, &c), -EINVAL);
	assert_null(c);
	assert_int_equal(count_msgs(&e, false, "a FIFO, not a regular file or a directory"), 1);
	cfg_errors_clear(&e);
	rm_tree(dir);
	rm_tree(out);
}

/* MS_CONFIG_MAX_FILES entries load; one more refuses the directory. Nested
 * *.yaml directories: MS_CONFIG_MAX_DEPTH levels load, one more does not. */
static void test_directory_bounds(void **state)
{
	(void)state;
	char dir[] = "/tmp/ms-cfg-many-XXXXXX";
	struct cfg_errors e = { 0 };
	struct ms_config *c;

	assert_non_null(mkdtemp(dir));
	for (unsigned i = 0; i < MS_CONFIG_MAX_FILES; i++) {
		_cleanup_free_ char *f = xasprintf("%s/%05u.yaml", dir, i);
		assert_int_equal(write_file_atomic(f, "", 0, 0644), 0);
	}
	c = load_dir(dir, &e);
	assert_non_null(c);
	assert_int_equal(c->n_files, MS_CONFIG_MAX_FILES);
	assert_int_equal(e.n, 0);
	cfg_unref(c);
	_cleanup_free_ char *more = xasprintf("%s/more.yaml", dir);
	assert_int_equal(write_file_atomic(more, "", 0, 0644), 0);
	c = load_dir(dir, &e);
	assert_null(c);
	assert_int_equal(count_msgs(&e, false, "more than 4096 YAML files"), 1);
	cfg_errors_clear(&e);
	rm_tree(dir);

	char deep[] = "/tmp/ms-cfg-deep-XXXXXX";
	assert_non_null(mkdtemp(deep));
	_cleanup_free_ char *path = xstrdup(deep);
	for (unsigned i = 0; i < MS_CONFIG_MAX_DEPTH; i++) {
		char *next = xasprintf("%s/d.yaml", path);
		free(path);
		path = next;
		assert_int_equal(mkdir(path, 0755), 0);
	}
	_cleanup_free_ char *leaf = xasprintf("%s/a.yaml", path);
	assert_int_equal(write_file_atomic(leaf, MES("deep", 80), strlen(MES("deep", 80)), 0644), 0);
	c = load_dir(deep, &e);
	if (!c)
		dump(&e);
	assert_non_null(c);
	assert_int_equal(c->n_svcs, 1);
	cfg_unref(c);
	_cleanup_free_ char *deeper = xasprintf("%s/d.yaml", path);
	assert_int_equal(mkdir(deeper, 0755), 0);
	c = load_dir(deep, &e);
	assert_null(c);
	assert_int_equal(count_msgs(&e, false, "nested deeper than 8"), 1);
	cfg_errors_clear(&e);
	rm_tree(deep);
}

static void test_sans(void **state)
{
	(void)state;
	struct ms_config *c = expect_ok(MES("a", 80) "  tls:\n    verification:\n      subjectAltNames:\n"
				       "        - type: Exact\n          value: a.test\n        - type: Prefix\n"
				       "          value: spiffe://mesh.test/\n");
	assert_int_equal(svc(c, "a")->tls.n_sans, 2);
	assert_false(svc(c, "a")->tls.sans[0].prefix);
	assert_true(svc(c, "a")->tls.sans[1].prefix);
	cfg_unref(c);
	expect_err(MES("a", 80) "  tls:\n    verification:\n      subjectAltNames:\n        - type: Regex\n          value: x\n",
		   14, "spec.tls.verification.subjectAltNames[0].type", "unknown value \"Regex\"");
}

/* ---------- Gloo Mesh: ExternalService, ExternalEndpoint ---------- */

#define GLOO_ES(name, ns) \
	"---\napiVersion: networking.gloo.solo.io/v2\nkind: ExternalService\nmetadata:\n  name: " name \
	"\n  namespace: " ns "\n"
#define GLOO_HTTP80 "  ports:\n    - name: http\n      number: 80\n      protocol: HTTP\n"

static const struct ms_pass_match *find_match(const struct ms_mesh *m, enum ms_match_type t, uint16_t port,
					      const char *domain)
{
	for (size_t i = 0; i < m->n_matches; i++)
		if (m->matches[i].type == t && m->matches[i].port == port &&
		    (!domain || (m->matches[i].domain && streq(m->matches[i].domain, domain))))
			return &m->matches[i];
	return NULL;
}

static void test_gloo_exact_host(void **state)
{
	(void)state;
	struct cfg_opts o;
	struct ms_cidr gloo;
	struct ms_config *c = expect_ok(GLOO_ES("www", "global") "spec:\n  hosts:\n    - WWW.Example.com\n" GLOO_HTTP80
					"  selector: {}\n");
	const struct ms_service *s = svc(c, "www");

	assert_int_equal(cidr_parse("240.240.0.0/16", &gloo), 0);
	assert_non_null(s);
	assert_int_equal(s->kind, MS_KIND_GLOO_EXTERNAL_SERVICE);
	assert_string_equal(cfg_kind_name(s->kind), "GlooExternalService");
	assert_string_equal(s->mesh, "default");
	assert_string_equal(s->ns, "global");
	/* Istio's range, not the MeshExternalService one */
	assert_true(cidr_contains(&gloo, &s->vip));
	cfg_opts_init(&o);
	assert_false(cidr_contains(&o.mes_cidr, &s->vip));
	assert_int_equal(s->n_hostnames, 1);
	assert_string_equal(s->hostnames[0], "www.example.com");
	assert_ptr_equal(cfg_find_hostname(c, "default", "www.example.com"), s);
	assert_null(cfg_find_hostname(c, "default", "other.example.com"));
	/* an empty selector picks nothing: the host itself, by DNS */
	assert_int_equal(s->n_ports, 1);
	assert_int_equal(s->ports[0].port, 80);
	assert_int_equal(s->ports[0].proto, MS_PROTO_HTTP);
	assert_int_equal(s->ports[0].n_eps, 1);
	assert_int_equal(s->ports[0].eps[0].type, MS_EP_DNS);
	assert_string_equal(s->ports[0].eps[0].host, "www.example.com");
	assert_int_equal(s->ports[0].eps[0].port, 80);
	assert_false(s->tls.enabled);
	const struct ms_port *pp = NULL;
	assert_ptr_equal(cfg_find_vip(c, "default", &s->vip, 80, &pp), s);
	/* an exact host adds no match */
	assert_int_equal(cfg_find_mesh(c, "default")->n_matches, 0);
	cfg_unref(c);

	/* two exact hosts: two services, two VIPs; targetPort by number */
	c = expect_ok(GLOO_ES("pair", "global") "spec:\n  hosts: [a.example.com, b.example.com]\n"
		      "  ports:\n    - name: http\n      number: 80\n      protocol: HTTP\n"
		      "      targetPort:\n        number: 8080\n");
	const struct ms_service *a = svc(c, "pair:a.example.com"), *b = svc(c, "pair:b.example.com");
	assert_non_null(a);
	assert_non_null(b);
	assert_false(addr_eq(&a->vip, &b->vip));
	assert_int_equal(a->ports[0].eps[0].port, 8080);
	assert_string_equal(b->ports[0].eps[0].host, "b.example.com");
	cfg_unref(c);

	/* the mesh: the kuma.io/mesh label, else --gloo-mesh */
	const char *two = "type: Mesh\nname: m2\n---\ntype: Mesh\nname: m3\n"
			  GLOO_ES("x", "ns") "spec:\n  hosts: [x.example.com]\n" GLOO_HTTP80
			  GLOO_ES("yy", "ns") "  labels:\n    kuma.io/mesh: m3\nspec:\n  hosts: [y.example.com]\n" GLOO_HTTP80;
	struct cfg_errors e = { 0 };
	cfg_opts_init(&o);
	o.gloo_mesh = "m2";
	c = load_opts(two, &o, &e);
	if (!c)
		dump(&e);
	assert_non_null(c);
	assert_string_equal(svc(c, "x")->mesh, "m2");
	assert_string_equal(svc(c, "yy")->mesh, "m3");
	assert_non_null(cfg_find_hostname(c, "m2", "x.example.com"));
	assert_null(cfg_find_hostname(c, "default", "x.example.com"));
	cfg_unref(c);
	cfg_errors_clear(&e);
	/* --gloo-vip-cidr */
	cfg_opts_init(&o);
	assert_int_equal(cidr_parse("198.18.200.0/24", &o.gloo_cidr), 0);
	c = load_opts(GLOO_ES("z", "ns") "spec:\n  hosts: [z.example.com]\n" GLOO_HTTP80, &o, &e);
	assert_non_null(c);
	assert_true(cidr_contains(&o.gloo_cidr, &svc(c, "z")->vip));
	cfg_unref(c);
	cfg_errors_clear(&e);

	/* the control: Kuma's legacy ExternalService keeps its own kind */
	c = expect_ok("apiVersion: kuma.io/v1alpha1\nkind: ExternalService\nmesh: default\nmetadata:\n  name: legacy\n"
		      "spec:\n  tags:\n    kuma.io/service: legacy\n  networking:\n    address: legacy.example.com:443\n");
	assert_int_equal(svc(c, "legacy")->kind, MS_KIND_EXTERNAL_SERVICE);
	cfg_unref(c);
}

static void test_gloo_endpoints(void **state)
{
	(void)state;
	struct ms_config *c = expect_ok(
		GLOO_ES("billing", "pay") "spec:\n  hosts: [billing.example.com]\n"
		"  ports:\n    - name: http\n      number: 80\n      protocol: HTTP\n      targetPort:\n        name: web\n"
		"    - name: grpc\n      number: 9000\n      protocol: GRPC\n"
		"  selector:\n    app: billing\n"
		"---\napiVersion: networking.gloo.solo.io/v2\nkind: ExternalEndpoint\nmetadata:\n  name: b1\n  namespace: pay\n"
		"  labels: {app: billing}\nspec:\n  address: 198.18.2.10\n  ports:\n    - {name: web, number: 8080}\n"
		"    - {name: rpc, number: 9000}\n"
		"---\napiVersion: networking.gloo.solo.io/v2\nkind: ExternalEndpoint\nmetadata:\n  name: b2\n  namespace: pay\n"
		"  labels: {app: billing}\nspec:\n  address: unix:///run/billing.sock\n"
		"---\napiVersion: networking.gloo.solo.io/v2\nkind: ExternalEndpoint\nmetadata:\n  name: other\n  namespace: pay\n"
		"  labels: {app: other}\nspec:\n  address: 198.18.2.99\n");
	const struct ms_service *s = svc(c, "billing");

	assert_non_null(s);
	/* by name: web → 8080; by number: 9000 */
	assert_int_equal(s->ports[0].n_eps, 2);
	assert_int_equal(s->ports[0].eps[0].type, MS_EP_IP);
	assert_string_equal(s->ports[0].eps[0].host, "198.18.2.10");
	assert_int_equal(s->ports[0].eps[0].port, 8080);
	assert_int_equal(s->ports[0].eps[1].type, MS_EP_UNIX);
	assert_string_equal(s->ports[0].eps[1].host, "/run/billing.sock");
	assert_int_equal(s->ports[1].n_eps, 2);
	assert_int_equal(s->ports[1].eps[0].port, 9000);
	assert_int_equal(s->ports[1].proto, MS_PROTO_GRPC);
	/* the unselected one is nowhere, and no DNS fallback either */
	for (size_t p = 0; p < s->n_ports; p++)
		for (size_t i = 0; i < s->ports[p].n_eps; i++) {
			assert_string_not_equal(s->ports[p].eps[i].host, "198.18.2.99");
			assert_int_not_equal(s->ports[p].eps[i].type, MS_EP_DNS);
		}
	cfg_unref(c);

	/* a selected endpoint without the targeted port */
	expect_err(GLOO_ES("b", "pay") "spec:\n  hosts: [b.example.com]\n"
		   "  ports:\n    - name: http\n      number: 80\n      protocol: HTTP\n      targetPort:\n        name: web\n"
		   "  selector: {app: b}\n"
		   "---\napiVersion: networking.gloo.solo.io/v2\nkind: ExternalEndpoint\nmetadata:\n  name: b1\n  namespace: pay\n"
		   "  labels: {app: b}\nspec:\n  address: 198.18.2.10\n  ports:\n    - {name: admin, number: 8080}\n",
		   17, "spec.ports", "has no port named web");
	/* a name with nothing selected */
	expect_err(GLOO_ES("b", "pay") "spec:\n  hosts: [b.example.com]\n"
		   "  ports:\n    - name: http\n      number: 80\n      protocol: HTTP\n      targetPort:\n        name: web\n",
		   2, "spec.ports.targetPort.name", "no ExternalEndpoint is selected");
	expect_err("apiVersion: networking.gloo.solo.io/v2\nkind: ExternalEndpoint\nmetadata:\n  name: e\n  namespace: ns1\n"
		   "spec:\n  address: \"*.example.com\"\n",
		   7, "spec.address", "not an IPv4 or IPv6 address, a DNS name (no wildcard)");
	expect_err("apiVersion: networking.gloo.solo.io/v2\nkind: ExternalEndpoint\nmetadata:\n  name: e\n  namespace: ns1\n"
		   "spec:\n  address: 198.18.0.1\n  ports:\n    - {number: 1}\n    - {name: b, number: 2}\n",
		   9, "spec.ports[0].name", "required when there is more than one port");
}

static void test_gloo_matches(void **state)
{
	(void)state;
	struct ms_config *c = expect_ok(
		"type: Mesh\nname: locked\nnetworking:\n  outbound:\n    passthrough: false\n"
		GLOO_ES("wild", "ns") "  labels: {kuma.io/mesh: locked}\nspec:\n  hosts: [\"*.Ext.test\"]\n"
		"  ports:\n    - {name: http, number: 80, protocol: HTTP}\n    - {name: https, number: 443, protocol: HTTPS}\n"
		"    - {name: h2, number: 8080, protocol: HTTP2}\n    - {name: tls, number: 8443, protocol: TLS}\n"
		GLOO_ES("nets", "ns") "  labels: {kuma.io/mesh: locked}\nspec:\n"
		"  addresses: [198.18.1.7, 198.18.0.0/24, \"2001:2::/64\", 198.18.0.0/16]\n"
		"  ports:\n    - {name: pg, number: 5432, protocol: TCP}\n");
	const struct ms_mesh *m = cfg_find_mesh(c, "locked");
	const struct ms_pass_match *x;
	struct ms_addr a;

	/* no VIP, no service for a wildcard or an address */
	assert_int_equal(c->n_svcs, 0);
	assert_false(m->passthrough);
	assert_int_equal(m->n_matches, 8);
	x = find_match(m, MS_MATCH_DOMAIN, 80, "*.ext.test");
	assert_non_null(x);
	assert_int_equal(x->proto, MS_MATCH_HTTP);
	assert_true(x->registry);
	assert_non_null(strstr(x->origin, "ns/wild"));
	assert_int_equal(find_match(m, MS_MATCH_DOMAIN, 443, "*.ext.test")->proto, MS_MATCH_TLS);
	assert_int_equal(find_match(m, MS_MATCH_DOMAIN, 8080, "*.ext.test")->proto, MS_MATCH_HTTP2);
	assert_int_equal(find_match(m, MS_MATCH_DOMAIN, 8443, "*.ext.test")->proto, MS_MATCH_TLS);
	assert_null(find_match(m, MS_MATCH_DOMAIN, 5432, NULL));
	/* addresses: the IP as a full-length prefix, CIDRs v4 and v6 */
	x = find_match(m, MS_MATCH_IP, 5432, NULL);
	assert_non_null(x);
	assert_true(x->registry);
	assert_int_equal(x->cidr.plen, 128);
	assert_int_equal(addr_parse("198.18.1.7", &a), 0);
	assert_true(cidr_contains(&x->cidr, &a));
	assert_int_equal(addr_parse("198.18.1.8", &a), 0);
	assert_false(cidr_contains(&x->cidr, &a));
	/* Kuma's order: IP, CIDR longest first, then Domain */
	assert_int_equal(m->matches[0].type, MS_MATCH_IP);
	assert_int_equal(m->matches[1].type, MS_MATCH_CIDR);
	assert_int_equal(cidr_user_plen(&m->matches[1].cidr), 24);
	assert_int_equal(cidr_user_plen(&m->matches[2].cidr), 16);
	assert_int_equal(m->matches[3].cidr.plen, 64); /* over the 128-bit form: v4 /16 is 112 */
	assert_int_equal(m->matches[4].type, MS_MATCH_DOMAIN);
	for (size_t i = 0; i < m->n_matches; i++) {
		assert_true(m->matches[i].registry);
		assert_int_not_equal(m->matches[i].line, 0);
	}
	assert_int_equal(addr_parse("2001:2::9", &a), 0);
	assert_true(cidr_contains(&m->matches[3].cidr, &a));
	/* the default mesh got none */
	assert_int_equal(cfg_find_mesh(c, "default")->n_matches, 0);
	cfg_unref(c);
}

static void test_gloo_errors(void **state)
{
	(void)state;
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n  addresses: [198.18.0.1]\n" GLOO_HTTP80, 9,
		   "spec.addresses", "mutually exclusive");
	expect_err(GLOO_ES("a", "ns1") "spec:\n" GLOO_HTTP80, 8, "spec.hosts", "one of hosts or addresses");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [\"api.*.example.com\"]\n" GLOO_HTTP80, 8, "spec.hosts[0]",
		   "a wildcard only as the first label");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [\"*\"]\n" GLOO_HTTP80, 8, "spec.hosts[0]", "not a DNS name");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [\"*example.com\"]\n" GLOO_HTTP80, 8, "spec.hosts[0]",
		   "not a DNS name");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com, A.example.com]\n" GLOO_HTTP80, 8,
		   "spec.hosts[1]", "listed twice");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n  ports:\n    - {name: x, number: 80, protocol: http}\n",
		   10, "spec.ports[0].protocol", "unknown protocol \"http\"");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n  ports:\n    - {name: x, number: 70000, protocol: TCP}\n",
		   10, "spec.ports[0].number", "out of range");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n  ports:\n    - {name: x, number: 0, protocol: TCP}\n",
		   10, "spec.ports[0].number", "out of range");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n  ports:\n    - {name: x, number: 80, protocol: TCP}\n"
		   "    - {name: yy, number: 80, protocol: TCP}\n",
		   11, "spec.ports[1].number", "listed twice");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n", 8, "spec.ports", "required field is missing");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  addresses: [198.18.0.1/24]\n" GLOO_HTTP80, 8, "spec.addresses[0]",
		   "host bits zero");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [\"*.example.com\"]\n  ports:\n    - {name: x, number: 5432, protocol: TCP}\n",
		   10, "spec.ports[0].protocol", "not TCP: it would let any destination through");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [\"*.example.com\"]\n  ports:\n    - {name: x, number: 5432, protocol: MONGO}\n",
		   10, "spec.ports[0].protocol", "not MONGO");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n  ports:\n    - name: x\n      number: 443\n"
		   "      protocol: HTTPS\n      clientsideTls:\n        mode: ISTIO_MUTUAL\n",
		   14, "spec.ports[0].clientsideTls.mode", "ISTIO_MUTUAL");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n  ports:\n    - name: x\n      number: 443\n"
		   "      protocol: HTTPS\n      clientsideTls:\n        mode: PERMISSIVE\n",
		   14, "spec.ports[0].clientsideTls.mode", "unknown value \"PERMISSIVE\"");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n  ports:\n    - name: x\n      number: 80\n"
		   "      protocol: HTTP\n      egressGatewayRoutes:\n        portMatch: 80\n",
		   14, "spec.ports[0].egressGatewayRoutes", "egress gateways are not part of meshsplice");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n  ports:\n    - name: x\n      number: 80\n"
		   "      protocol: HTTP\n      clientsideTls:\n        mode: MUTUAL\n",
		   14, "spec.ports[0].clientsideTls", "mode MUTUAL requires clientCertificate");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n  ports:\n    - name: x\n      number: 80\n"
		   "      protocol: HTTP\n      clientsideTls:\n        caCertificates: certs/ca.pem\n",
		   14, "spec.ports[0].clientsideTls.caCertificates", "not an absolute file path");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n  ports:\n    - name: x\n      number: 80\n"
		   "      protocol: HTTP\n      clientsideTls:\n        caCertificates: /nonexistent/ca.pem\n",
		   14, "spec.ports[0].clientsideTls.caCertificates", "cannot read \"/nonexistent/ca.pem\"");
	/* TLS is per service here: one TLS port per ExternalService */
	expect_err(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n  ports:\n    - name: x\n      number: 80\n"
		   "      protocol: HTTP\n      clientsideTls: {mode: SIMPLE}\n    - {name: yy, number: 81, protocol: HTTP}\n",
		   13, "spec.ports[0].clientsideTls", "one ExternalService per TLS port");
	expect_err(GLOO_ES("a", "ns1") "spec:\n  addresses: [198.18.0.1]\n  ports:\n    - name: x\n      number: 80\n"
		   "      protocol: HTTP\n      clientsideTls: {mode: SIMPLE}\n",
		   13, "spec.ports[0].clientsideTls", "TLS origination needs hosts");
	expect_err(GLOO_ES("a", "ns1") "  labels:\n    kuma.io/mesh: nope\nspec:\n  addresses: [198.18.0.1]\n" GLOO_HTTP80,
		   10, "mesh", "mesh \"nope\" does not exist");
	expect_err("apiVersion: networking.gloo.solo.io/v2alpha1\nkind: ExternalService\nmetadata:\n  name: a\n"
		   "spec:\n  hosts: [a.example.com]\n" GLOO_HTTP80,
		   1, "apiVersion", "only networking.gloo.solo.io/v2");
	expect_err("apiVersion: networking.gloo.solo.io/v2\nkind: VirtualDestination\nmetadata:\n  name: a\nspec: {}\n",
		   2, "kind", "Gloo's VirtualDestination is not read");
	expect_err("apiVersion: networking.gloo.solo.io/v2\nkind: ExternalService\nmesh: default\nmetadata:\n  name: a\n"
		   "spec:\n  hosts: [a.example.com]\n" GLOO_HTTP80,
		   3, "mesh", "with the label kuma.io/mesh");
	/* an unknown field: a warning, as for every kind (the API server prunes it) */
	struct ms_config *c = expect_warn(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n  resolution: DNS\n"
					  GLOO_HTTP80, 9, "spec.resolution", "unknown field");
	cfg_unref(c);
	/* Gloo resources have a status: it is not an unknown field */
	c = expect_ok(GLOO_ES("a", "ns1") "spec:\n  hosts: [a.example.com]\n" GLOO_HTTP80
					"status:\n  common:\n    State:\n      approval: ACCEPTED\n");
	cfg_unref(c);
	/* a wildcard does not use clientsideTls: said, not refused */
	c = expect_warn(GLOO_ES("a", "ns1") "spec:\n  hosts: [\"*.example.com\"]\n  ports:\n    - name: x\n      number: 443\n"
			"      protocol: TLS\n      clientsideTls: {mode: SIMPLE}\n",
			13, "spec.ports[0].clientsideTls", "not used for the wildcard host");
	cfg_unref(c);
}

static char *unb64(const char *b)
{
	unsigned char *out = NULL;
	size_t len = 0;
	assert_int_equal(cfg_base64_decode(b, strlen(b), &out, &len), 0);
	out = xrealloc(out, len + 1, 1);
	out[len] = 0;
	return (char *)out;
}

static void test_gloo_tls(void **state)
{
	(void)state;
	char dir[] = "/tmp/ms-cfg-gloo-XXXXXX";
	char *cb, *kb, *cb2, *kb2;
	assert_non_null(mkdtemp(dir));
	make_cert(&cb, &kb);
	make_cert(&cb2, &kb2);
	_cleanup_free_ char *cert = unb64(cb), *key = unb64(kb), *key2 = unb64(kb2);
	_cleanup_free_ char *cp = xasprintf("%s/cert.pem", dir), *kp = xasprintf("%s/key.pem", dir);
	_cleanup_free_ char *k2p = xasprintf("%s/key2.pem", dir);
	assert_int_equal(write_file_atomic(cp, cert, strlen(cert), 0644), 0);
	assert_int_equal(write_file_atomic(kp, key, strlen(key), 0600), 0);
	assert_int_equal(write_file_atomic(k2p, key2, strlen(key2), 0600), 0);

	/* port 80 → 443, MUTUAL with file paths, the CA from a file */
	_cleanup_free_ char *y = xasprintf(
		GLOO_ES("sec", "ns1") "spec:\n  hosts: [secure.example.com]\n  subjectAltNames: [secure.example.com]\n"
		"  ports:\n    - name: http\n      number: 80\n      protocol: HTTP\n      targetPort: {number: 443}\n"
		"      clientsideTls:\n        mode: MUTUAL\n        caCertificates: %s\n        clientCertificate: %s\n"
		"        privateKey: %s\n",
		cp, cp, kp);
	struct ms_config *c = expect_ok(y);
	const struct ms_service *s = svc(c, "sec");
	_cleanup_free_ char *origin = xasprintf("file:%s", cp);
	assert_true(s->tls.enabled);
	assert_int_equal(s->tls.mode, MS_VERIFY_SECURED);
	assert_string_equal(s->tls.server_name, "secure.example.com"); /* the single host */
	assert_string_equal(s->tls.ca.origin, origin);
	assert_int_equal(s->tls.ca.len, strlen(cert));
	assert_memory_equal(s->tls.cert.data, cert, strlen(cert));
	assert_int_equal(s->tls.key.len, strlen(key));
	assert_int_equal(s->tls.n_sans, 1);
	assert_int_equal(s->ports[0].port, 80);
	assert_int_equal(s->ports[0].eps[0].port, 443);
	cfg_unref(c);

	/* a key that is not the certificate's */
	_cleanup_free_ char *bad = xasprintf(
		GLOO_ES("sec", "ns1") "spec:\n  hosts: [secure.example.com]\n"
		"  ports:\n    - name: http\n      number: 80\n      protocol: HTTP\n"
		"      clientsideTls:\n        mode: MUTUAL\n        clientCertificate: %s\n        privateKey: %s\n",
		cp, k2p);
	expect_err(bad, 16, "spec.ports.clientsideTls.privateKey", "does not match the public key");

	/* SIMPLE: sni, insecureSkipVerify; no CA is the system's */
	c = expect_ok(GLOO_ES("s", "ns1") "spec:\n  hosts: [s.example.com]\n  ports:\n    - name: https\n      number: 443\n"
		      "      protocol: HTTPS\n      clientsideTls:\n        sni: front.example.com\n        insecureSkipVerify: true\n");
	s = svc(c, "s");
	assert_true(s->tls.enabled);
	assert_int_equal(s->tls.mode, MS_VERIFY_SKIP_ALL);
	assert_string_equal(s->tls.server_name, "front.example.com");
	assert_null(s->tls.ca.origin);
	cfg_unref(c);
	/* DISABLE: plaintext, and then several ports are fine */
	c = expect_ok(GLOO_ES("p", "ns1") "spec:\n  hosts: [p.example.com]\n  ports:\n    - name: a\n      number: 80\n"
		      "      protocol: HTTP\n      clientsideTls: {mode: DISABLE}\n    - {name: b, number: 81, protocol: TCP}\n");
	assert_false(svc(c, "p")->tls.enabled);
	cfg_unref(c);

	/* credentialName: a Secret with the certificate and its key */
	_cleanup_free_ char *both = xasprintf("%s%s", cert, key);
	_cleanup_free_ char *bothb = b64(both);
	_cleanup_free_ char *cy = xasprintf(
		"type: Secret\nname: client-tls\nmesh: default\ndata: %s\n"
		GLOO_ES("m", "ns1") "spec:\n  hosts: [m.example.com]\n  ports:\n    - name: http\n      number: 80\n"
		"      protocol: HTTP\n      clientsideTls:\n        mode: MUTUAL\n        credentialName: client-tls\n",
		bothb);
	c = expect_ok(cy);
	s = svc(c, "m");
	assert_string_equal(s->tls.cert.origin, "secret:client-tls");
	assert_int_equal(s->tls.cert.len, strlen(both));
	assert_int_equal(s->tls.key.len, strlen(both));
	cfg_unref(c);
	expect_err(GLOO_ES("m", "ns1") "spec:\n  hosts: [m.example.com]\n  ports:\n    - name: http\n      number: 80\n"
		   "      protocol: HTTP\n      clientsideTls:\n        mode: MUTUAL\n        credentialName: missing\n",
		   15, "spec.ports[0].clientsideTls.credentialName", "secret \"missing\" not found");

	unlink(cp);
	unlink(kp);
	unlink(k2p);
	rmdir(dir);
	free(cb);
	free(kb);
	free(cb2);
	free(kb2);
}

static void test_gloo_examples(void **state)
{
	(void)state;
	const char *files[] = { "exact-host-http.yaml", "wildcard-host.yaml", "addresses-cidr.yaml",
				"clientside-tls.yaml", "external-endpoints.yaml" };
	const char *dir = EXAMPLES_DIR "/gloo";
	struct cfg_opts o;
	struct cfg_errors e = { 0 };
	struct ms_config *c = NULL;

	cfg_opts_init(&o);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char path[512];
		const char *p = path;
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (cfg_load_paths(&p, 1, &o, &e, &c) < 0)
			dump(&e);
		assert_non_null(c);
		assert_int_equal(cfg_errors_count(&e), 0);
		assert_int_equal(e.n_warnings, 0);
		cfg_unref(c);
		cfg_errors_clear(&e);
	}
	assert_int_equal(cfg_load_paths(&dir, 1, &o, &e, &c), 0);
	assert_int_equal(c->n_files, ARRAY_SIZE(files));
	const struct ms_service *s = cfg_find_service(c, MS_KIND_GLOO_EXTERNAL_SERVICE, "registry-only", "billing");
	assert_non_null(s);
	assert_int_equal(s->ports[0].n_eps, 2);
	assert_int_equal(s->ports[0].eps[0].port, 8080);
	assert_int_equal(s->ports[0].eps[1].type, MS_EP_DNS);
	assert_int_equal(s->ports[0].eps[1].port, 8443);
	s = cfg_find_service(c, MS_KIND_GLOO_EXTERNAL_SERVICE, "default", "secure");
	assert_true(s->tls.enabled);
	assert_int_equal(s->ports[0].eps[0].port, 443);
	assert_int_equal(cfg_find_mesh(c, "default")->n_matches, 2 + 3);
	cfg_unref(c);
	cfg_errors_clear(&e);
}

/* MeshPassthrough, both styles: the mode over the Mesh flag, Kuma's rules
 * (validator.go), its order, and the matching the data plane uses. */
#define MP_HEAD "type: MeshPassthrough\nname: mp\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  default:\n"
#define MP(body) MP_HEAD "    appendMatch:\n" body

static void test_passthrough(void **state)
{
	(void)state;
	struct ms_config *c;
	const struct ms_mesh *m;
	struct ms_addr a;

	/* no policy: the Mesh flag decides */
	c = expect_ok("type: Mesh\nname: default\nnetworking:\n  outbound:\n    passthrough: false\n");
	m = cfg_find_mesh(c, "default");
	assert_int_equal(m->pass_mode, MS_PASS_UNSET);
	assert_int_equal(cfg_pass_mode(m), MS_PASS_NONE);
	cfg_unref(c);
	/* the policy's mode takes precedence over the Mesh's flag */
	c = expect_ok("type: Mesh\nname: default\nnetworking:\n  outbound:\n    passthrough: false\n---\n" MP_HEAD
		      "    passthroughMode: All\n");
	assert_int_equal(cfg_pass_mode(cfg_find_mesh(c, "default")), MS_PASS_ALL);
	cfg_unref(c);
	c = expect_ok("apiVersion: kuma.io/v1alpha1\nkind: MeshPassthrough\nmetadata:\n  name: mp\n  namespace: kuma-system\n"
		      "  labels:\n    kuma.io/mesh: default\nspec:\n  default:\n    passthroughMode: None\n");
	assert_int_equal(cfg_pass_mode(cfg_find_mesh(c, "default")), MS_PASS_NONE);
	cfg_unref(c);
	/* unset mode: Matched, as Kuma's plugin reads it */
	c = expect_ok(MP("    - type: CIDR\n      value: 198.18.0.5/24\n      port: 443\n"
			 "    - type: Domain\n      value: '*.Ext.test'\n      protocol: tls\n"
			 "    - type: IP\n      value: 2001:2::7\n"
			 "    - type: Domain\n      value: api.ext.test\n      port: 80\n      protocol: http\n"
			 "    - type: CIDR\n      value: 198.18.0.0/16\n"
			 "    - type: CIDR\n      value: 2001:2::/48\n      protocol: tls\n"));
	m = cfg_find_mesh(c, "default");
	assert_int_equal(cfg_pass_mode(m), MS_PASS_MATCHED);
	assert_int_equal(m->n_matches, 6);
	/* Kuma's order: IP, CIDR longest first, exact Domain, wildcard */
	assert_int_equal(m->matches[0].type, MS_MATCH_IP);
	assert_int_equal(m->matches[1].type, MS_MATCH_CIDR);
	assert_int_equal(m->matches[1].cidr.plen, 96 + 24);
	assert_int_equal(m->matches[2].cidr.plen, 96 + 16); /* over the 128-bit form */
	assert_int_equal(m->matches[3].cidr.plen, 48);
	assert_string_equal(m->matches[4].domain, "api.ext.test");
	assert_string_equal(m->matches[5].domain, "*.ext.test");
	assert_string_equal(m->matches[5].origin, "MeshPassthrough/mp appendMatch[1]");
	assert_int_equal(m->matches[5].line, 12);
	/* host bits of a CIDR are dropped, as Go's ParseCIDR does */
	assert_int_equal(addr_parse("198.18.0.200", &a), 0);
	assert_ptr_equal(cfg_pass_ip(m, &a, 443), &m->matches[1]);
	assert_ptr_equal(cfg_pass_ip(m, &a, 80), &m->matches[2]);
	assert_int_equal(addr_parse("198.19.0.1", &a), 0);
	assert_null(cfg_pass_ip(m, &a, 443)); /* control: outside every prefix */
	assert_int_equal(addr_parse("2001:2::7", &a), 0);
	assert_ptr_equal(cfg_pass_ip(m, &a, 5), &m->matches[0]);
	assert_int_equal(addr_parse("2001:3::7", &a), 0);
	assert_null(cfg_pass_ip(m, &a, 5));
	assert_ptr_equal(cfg_pass_domain(m, "API.ext.test", 80, MS_MATCH_HTTP), &m->matches[4]);
	assert_null(cfg_pass_domain(m, "api.ext.test", 81, MS_MATCH_HTTP));
	assert_ptr_equal(cfg_pass_domain(m, "api.ext.test", 80, MS_MATCH_TLS), &m->matches[5]);
	assert_null(cfg_pass_domain(m, "api.other.test", 80, MS_MATCH_TLS));
	assert_null(cfg_pass_domain(m, "b.ext.test", 80, MS_MATCH_HTTP)); /* the wildcard is for tls */
	assert_ptr_equal(cfg_pass_domain(m, "a.b.ext.test", 8443, MS_MATCH_TLS), &m->matches[5]);
	assert_null(cfg_pass_domain(m, "ext.test", 8443, MS_MATCH_TLS));
	assert_true(cfg_pass_has_domain(m, 1234));
	cfg_unref(c);
	/* the wildcard: any deeper name, not the name itself nor a suffix */
	assert_true(cfg_domain_match("*.ext.test", "a.ext.test"));
	assert_true(cfg_domain_match("*.ext.test", "a.b.ext.test."));
	assert_false(cfg_domain_match("*.ext.test", "ext.test"));
	assert_false(cfg_domain_match("*.ext.test", "aext.test"));
	assert_true(cfg_domain_match("*", "x"));
	assert_false(cfg_domain_match("a.test", "b.a.test"));
	/* an IPv6 prefix does not take IPv4-mapped addresses */
	c = expect_ok(MP("    - type: CIDR\n      value: ::/0\n"));
	m = cfg_find_mesh(c, "default");
	assert_int_equal(addr_parse("198.18.0.1", &a), 0);
	assert_null(cfg_pass_ip(m, &a, 80));
	assert_int_equal(addr_parse("2001:2::1", &a), 0);
	assert_non_null(cfg_pass_ip(m, &a, 80));
	cfg_unref(c);
	/* Matched with registry-less matches means nothing under None */
	c = expect_ok(MP_HEAD "    passthroughMode: None\n    appendMatch:\n    - type: CIDR\n      value: 198.18.0.0/15\n");
	assert_int_equal(addr_parse("198.18.0.1", &a), 0);
	assert_null(cfg_pass_ip(cfg_find_mesh(c, "default"), &a, 80));
	cfg_unref(c);
	/* two policies: appended, the last mode given (by name) wins */
	c = expect_ok(MP("    - type: IP\n      value: 198.18.0.1\n") "---\n"
		      "type: MeshPassthrough\nname: zz\nmesh: default\nspec:\n  default:\n    passthroughMode: All\n"
		      "    appendMatch:\n    - type: IP\n      value: 198.18.0.2\n");
	m = cfg_find_mesh(c, "default");
	assert_int_equal(m->n_matches, 2);
	assert_int_equal(m->pass_mode, MS_PASS_ALL);
	cfg_unref(c);

	/* Kuma's rules, each at its field */
	expect_err(MP("    - type: Domain\n      value: a.test\n      protocol: tcp\n"), 11,
		   "spec.default.appendMatch[0].protocol", "protocol tcp is not supported for a domain");
	expect_err(MP("    - type: Domain\n      value: a.test\n      port: 3306\n      protocol: mysql\n"), 12,
		   "spec.default.appendMatch[0].protocol", "protocol mysql is not supported for a domain");
	expect_err(MP("    - type: Domain\n      value: a.test\n"), 9, "spec.default.appendMatch[0].protocol",
		   "not supported for a domain"); /* the default protocol is tcp */
	expect_err(MP("    - type: IP\n      value: 198.18.0.1\n      protocol: mysql\n"), 9,
		   "spec.default.appendMatch[0].port", "port must be defined for Mysql protocol");
	expect_err(MP("    - type: Domain\n      value: '*.a.test'\n      protocol: http\n"), 9,
		   "spec.default.appendMatch[0].port", "wildcard domains doesn't work for all ports");
	expect_err(MP("    - type: Domain\n      value: '*w.a.test'\n      port: 80\n      protocol: http\n"), 10,
		   "spec.default.appendMatch[0].value", "partial wildcard is currently not supported");
	expect_err(MP("    - type: Domain\n      value: '*.hello@world'\n      protocol: tls\n"), 10,
		   "spec.default.appendMatch[0].value", "provided DNS has incorrect value");
	expect_err(MP("    - type: Domain\n      value: 1.2.3.4\n      protocol: tls\n"), 10,
		   "spec.default.appendMatch[0].value", "provided DNS has incorrect value");
	expect_err(MP("    - type: IP\n      value: a.test\n"), 10, "spec.default.appendMatch[0].value",
		   "provided IP has incorrect value");
	expect_err(MP("    - type: CIDR\n      value: 198.18.0.1\n"), 10, "spec.default.appendMatch[0].value",
		   "provided CIDR has incorrect value");
	expect_err(MP("    - type: CIDR\n      value: 198.18.0.0/33\n"), 10, "spec.default.appendMatch[0].value",
		   "provided CIDR has incorrect value");
	expect_err(MP("    - type: Host\n      value: a\n"), 9, "spec.default.appendMatch[0].type",
		   "provided type Host is not supported");
	expect_err(MP("    - type: IP\n      value: 198.18.0.1\n      port: 0\n"), 11, "spec.default.appendMatch[0].port",
		   "port must be a valid (1-65535)");
	expect_err(MP("    - type: IP\n      value: 198.18.0.1\n      port: 65536\n"), 11,
		   "spec.default.appendMatch[0].port", "port must be a valid (1-65535)");
	expect_err(MP("    - type: IP\n      value: 198.18.0.1\n      protocol: udp\n"), 11,
		   "spec.default.appendMatch[0].protocol", "unknown value \"udp\"");
	expect_err(MP("    - type: Domain\n      value: a.test\n      port: 80\n      protocol: http\n"
		      "    - type: Domain\n      value: a.test\n      port: 80\n      protocol: http2\n"),
		   15, "spec.default.appendMatch[1].port", "requires the same protocol");
	expect_err(MP("    - type: Domain\n      value: g.test\n      port: 80\n      protocol: http\n"
		      "    - type: Domain\n      value: g.test\n      port: 80\n      protocol: http\n"),
		   14, "spec.default.appendMatch[1].value", "value g.test is already defiend for this port and protocol");
	expect_err(MP_HEAD "    passthroughMode: Some\n", 8, "spec.default.passthroughMode", "unknown value \"Some\"");
	expect_err("type: MeshPassthrough\nname: mp\nmesh: default\nspec:\n  targetRef:\n    kind: MeshService\n    name: x\n",
		   6, "spec.targetRef.kind", "value 'MeshService' is not supported");
	expect_err("type: MeshPassthrough\nname: mp\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n    name: x\n",
		   7, "spec.targetRef.name", "using name with kind Mesh");
	expect_err("type: MeshPassthrough\nname: mp\nmesh: default\nspec:\n  targetRef:\n    kind: Dataplane\n"
		   "    labels:\n      app: a\n", 6, "spec.targetRef.kind", "not supported by this meshsplice");
	expect_err("type: MeshPassthrough\nname: mp\nmesh: other\nspec:\n  default:\n    passthroughMode: All\n", 1,
		   "mesh", "mesh \"other\" does not exist");
	/* controls: the same rules let through what Kuma lets through */
	cfg_unref(expect_ok(MP("    - type: Domain\n      value: a.test\n      port: 80\n      protocol: http\n"
			       "    - type: Domain\n      value: b.test\n      port: 80\n      protocol: http\n"
			       "    - type: IP\n      value: 198.18.0.1\n      port: 80\n"
			       "    - type: IP\n      value: 198.18.0.9\n      port: 3306\n      protocol: mysql\n"
			       "    - type: Domain\n      value: '*.a.test'\n      port: 8080\n      protocol: grpc\n"
			       "    - type: Domain\n      value: '*'\n      protocol: tls\n")));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_examples_valid),
		cmocka_unit_test(test_examples_whole_dir_valid),
		cmocka_unit_test(test_examples_whole_dir_with_bad_files),
		cmocka_unit_test(test_mesh_flags_both_styles),
		cmocka_unit_test(test_embedded_default),
		cmocka_unit_test(test_unknown_field),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_port_range),
		cmocka_unit_test(test_unknown_protocol_and_mode),
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_tls_versions),
		cmocka_unit_test(test_bad_base64),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_cert_key_pairs),
		cmocka_unit_test(test_secret_other_mesh),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_missing_mesh),
		cmocka_unit_test(test_vip_clash),
		cmocka_unit_test(test_vip_ranges),
		cmocka_unit_test(test_vip_stability),
		cmocka_unit_test(test_hostnames),
		cmocka_unit_test(test_hostgen_every_mesh),
		cmocka_unit_test(test_kuma_mesh_rules),
		cmocka_unit_test(test_kuma_dataplane_rules),
		cmocka_unit_test(test_kuma_es_tags_list_secret),
		cmocka_unit_test(test_template_render),
		cmocka_unit_test(test_mesh_service_dataplanes),
		cmocka_unit_test(test_legacy_external_service),
		cmocka_unit_test(test_all_errors_at_once),
		cmocka_unit_test(test_yaml_limits),
		cmocka_unit_test(test_not_a_resource),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_hostgen_rules),
		cmocka_unit_test(test_resource_names_and_labels),
		cmocka_unit_test(test_mesh_service_selectors),
		cmocka_unit_test(test_ignored_kinds),
		cmocka_unit_test(test_yaml11_booleans),
		cmocka_unit_test(test_directory_traps),
		cmocka_unit_test(test_directory_bounds),
		cmocka_unit_test(test_sans),
		cmocka_unit_test(test_gloo_exact_host),
		cmocka_unit_test(test_gloo_endpoints),
		cmocka_unit_test(test_gloo_matches),
		cmocka_unit_test(test_gloo_errors),
		cmocka_unit_test(test_gloo_tls),
		cmocka_unit_test(test_gloo_examples),
		cmocka_unit_test(test_passthrough),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
