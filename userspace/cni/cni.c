// SPDX-License-Identifier: MIT
#include "cni.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl.h"
#include "util.h"

#define DEFAULT_STATE "/var/lib/meshsplice"
#define CONF_MAX (1u << 20)

static const char *const versions[] = { "0.3.1", "0.4.0", "1.0.0" };

static int fail(char **out, const char *version, enum cni_code code, const char *details,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail(char **out, const char *version, enum cni_code code, const char *details,
		const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "cniVersion", json_object_new_string(version ? version : "1.0.0"));
	json_object_object_add(o, "code", json_object_new_int(code));
	json_object_object_add(o, "msg", json_object_new_string(msg));
	if (details)
		json_object_object_add(o, "details", json_object_new_string(details));
	*out = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return 1;
}

int cni_parse_args(const char *s, struct cni_args *ret)
{
	memset(ret, 0, sizeof(*ret));
	while (s && *s) {
		const char *semi = strchr(s, ';'), *eq = strchr(s, '=');
		size_t len = semi ? (size_t)(semi - s) : strlen(s);
		if (!eq || eq > s + len)
			return -EINVAL;
		size_t kl = (size_t)(eq - s), vl = len - kl - 1;
		const char *v = eq + 1;
		char *dst = NULL;
		if (kl == 17 && strncmp(s, "K8S_POD_NAMESPACE", kl) == 0)
			dst = ret->ns;
		else if (kl == 12 && strncmp(s, "K8S_POD_NAME", kl) == 0)
			dst = ret->pod;
		else if (kl == 15 && strncmp(s, "MESHSPLICE_MESH", kl) == 0)
			dst = ret->mesh;
		else if (kl == 17 && strncmp(s, "MESHSPLICE_OPTOUT", kl) == 0)
			ret->opt_out = vl == 4 && strncmp(v, "true", 4) == 0;
		if (dst) {
			if (vl >= sizeof(ret->ns))
				return -EINVAL;
			memcpy(dst, v, vl);
			dst[vl] = '\0';
		}
		s = semi ? semi + 1 : NULL;
	}
	return 0;
}

static const char *str(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ?
		       json_object_get_string(v) : NULL;
}

static int parse_conf(const char *in, struct cni_conf *c, char **out)
{
	json_object *v, *rc = NULL;

	memset(c, 0, sizeof(*c));
	c->root = json_tokener_parse(in);
	if (!c->root || !json_object_is_type(c->root, json_type_object))
		return fail(out, NULL, CNI_ERR_DECODE, NULL, "network configuration on stdin is not a JSON object");
	c->version = str(c->root, "cniVersion");
	if (!c->version)
		return fail(out, NULL, CNI_ERR_CONFIG, NULL, "network configuration has no cniVersion");
	bool known = false;
	for (size_t i = 0; i < ARRAY_SIZE(versions); i++)
		known |= streq(c->version, versions[i]);
	if (!known)
		return fail(out, "1.0.0", CNI_ERR_VERSION, NULL,
			    "cniVersion %s is not supported (0.3.1, 0.4.0, 1.0.0)", log_escape(c->version));
	c->control = str(c->root, "controlSocket") ? str(c->root, "controlSocket") : MS_DEFAULT_CONTROL;
	c->state_dir = str(c->root, "stateDir") ? str(c->root, "stateDir") : DEFAULT_STATE;
	c->mesh = str(c->root, "mesh") ? str(c->root, "mesh") : "default";
	c->timeout_ms = 10000;
	if (json_object_object_get_ex(c->root, "failOpen", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return fail(out, c->version, CNI_ERR_CONFIG, NULL, "failOpen must be true or false");
		c->fail_open = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(c->root, "dns", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return fail(out, c->version, CNI_ERR_CONFIG, NULL, "dns must be true or false");
		c->no_dns = !json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(c->root, "timeoutMs", &v)) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int(v) < 100 ||
		    json_object_get_int(v) > 120000)
			return fail(out, c->version, CNI_ERR_CONFIG, NULL, "timeoutMs must be 100..120000");
		c->timeout_ms = json_object_get_int(v);
	}
	if (json_object_object_get_ex(c->root, "excludeNamespaces", &v)) {
		if (!json_object_is_type(v, json_type_array))
			return fail(out, c->version, CNI_ERR_CONFIG, NULL, "excludeNamespaces must be a list of strings");
		c->exclude_ns = v;
	}
	/* runtimeConfig.meshsplice.mesh overrides the plugin's mesh for this pod */
	if (json_object_object_get_ex(c->root, "runtimeConfig", &rc) &&
	    json_object_object_get_ex(rc, "meshsplice", &v) && str(v, "mesh"))
		c->mesh = str(v, "mesh");
	json_object_object_get_ex(c->root, "prevResult", &c->prev_result);
	/* The pod's own resolvers (the runtime's "dns" capability, or what the
	 * chain before us set): with passthrough off, its DNS may go only there. */
	json_object *dns = NULL;
	if (rc && json_object_object_get_ex(rc, "dns", &dns) && json_object_object_get_ex(dns, "servers", &v) &&
	    json_object_is_type(v, json_type_array))
		c->dns_servers = v;
	else if (c->prev_result && json_object_object_get_ex(c->prev_result, "dns", &dns) &&
		 json_object_object_get_ex(dns, "nameservers", &v) && json_object_is_type(v, json_type_array))
		c->dns_servers = v;
	return 0;
}

/* The result a chained plugin prints: prevResult exactly as received. */
static int pass_through(const struct cni_conf *c, char **out)
{
	if (c->prev_result)
		*out = xstrdup(json_object_to_json_string_ext(c->prev_result, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	else
		*out = xasprintf("{\"cniVersion\": \"%s\"}", c->version);
	return 0;
}

static bool ns_excluded(const struct cni_conf *c, const char *ns)
{
	for (size_t i = 0; c->exclude_ns && i < json_object_array_length(c->exclude_ns); i++)
		if (streq(json_object_get_string(json_object_array_get_idx(c->exclude_ns, i)), ns))
			return true;
	return false;
}

static char *pending_path(const struct cni_conf *c, const char *container)
{
	return xasprintf("%s/pending-%s.json", c->state_dir, container);
}

/* Container ids become file names: allow only what runtimes use. */
static bool container_id_ok(const char *id)
{
	size_t n = 0;
	for (const char *p = id; *p; p++, n++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_' || *p == '.'))
			return false;
	return n > 0 && n <= 128 && id[0] != '.';
}

static int call(const struct cni_conf *c, json_object *req, json_object **resp)
{
	return ctl_call(c->control, req, c->timeout_ms, resp);
}

static int do_add(const struct cni_env *e, struct cni_conf *c, char **out)
{
	struct cni_args a;
	char name[520];
	json_object *req, *resp = NULL, *ok;
	int r;

	if (cni_parse_args(e->args, &a) < 0)
		return fail(out, c->version, CNI_ERR_ENV, e->args, "CNI_ARGS is not KEY=VALUE;KEY=VALUE");
	if (a.opt_out || (a.ns[0] && ns_excluded(c, a.ns)))
		return pass_through(c, out); /* not ours: nothing to do */
	if (a.mesh[0])
		c->mesh = a.mesh;
	snprintf(name, sizeof(name), "%s/%s", a.ns[0] ? a.ns : "cni", a.pod[0] ? a.pod : e->container);
	req = ctl_request(CTL_ENABLE);
	json_object_object_add(req, CTL_F_NETNS, json_object_new_string(e->netns));
	json_object_object_add(req, CTL_F_NAME, json_object_new_string(name));
	json_object_object_add(req, CTL_F_MESH, json_object_new_string(c->mesh));
	json_object_object_add(req, CTL_F_CONTAINER, json_object_new_string(e->container));
	json_object_object_add(req, CTL_F_DNS, json_object_new_boolean(!c->no_dns));
	if (c->dns_servers)
		json_object_object_add(req, CTL_F_DNS_SERVERS, json_object_get(c->dns_servers));
	r = call(c, req, &resp);
	if (r == -ENOENT || r == -ECONNREFUSED || r == -ETIMEDOUT) {
		if (!c->fail_open) {
			json_object_put(req);
			return fail(out, c->version, CNI_ERR_TRY_AGAIN, strerror(-r),
				    "the meshsplice agent is not answering at %s; the pod would start unproxied (failOpen is false), so ADD fails: start meshspliced, the runtime will retry",
				    c->control);
		}
		/* fail-open: the agent enables the pod from this record when it comes up */
		_cleanup_free_ char *path = pending_path(c, e->container);
		const char *s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
		mkdir(c->state_dir, 0700);
		if (write_file_atomic(path, s, strlen(s), 0600) < 0) {
			json_object_put(req);
			return fail(out, c->version, CNI_ERR_IO, path, "agent down and cannot record the pod for later");
		}
		json_object_put(req);
		return pass_through(c, out);
	}
	json_object_put(req);
	if (r < 0)
		return fail(out, c->version, CNI_ERR_IO, strerror(-r), "talking to the meshsplice agent at %s failed", c->control);
	if (!json_object_object_get_ex(resp, CTL_F_OK, &ok) || !json_object_get_boolean(ok)) {
		r = fail(out, c->version, CNI_ERR_IO, NULL, "the meshsplice agent refused to enable %s: %s", name,
			 str(resp, CTL_F_ERROR) ? str(resp, CTL_F_ERROR) : "no reason given");
		json_object_put(resp);
		return r;
	}
	json_object_put(resp);
	return pass_through(c, out);
}

static int do_del(const struct cni_env *e, struct cni_conf *c, char **out)
{
	json_object *req = ctl_request(CTL_FORGET), *resp = NULL;
	_cleanup_free_ char *path = pending_path(c, e->container);

	unlink(path);
	json_object_object_add(req, CTL_F_CONTAINER, json_object_new_string(e->container));
	if (e->netns && *e->netns)
		json_object_object_add(req, CTL_F_NETNS, json_object_new_string(e->netns));
	/* DEL is idempotent: an agent that is down, an unknown container, a netns
	 * that is gone are all fine — there is nothing left to undo. */
	if (call(c, req, &resp) == 0)
		json_object_put(resp);
	json_object_put(req);
	*out = xstrdup("");
	return 0;
}

static int do_check(const struct cni_env *e, struct cni_conf *c, char **out)
{
	json_object *req, *resp = NULL, *pods;
	struct cni_args a;
	int r;

	if (cni_parse_args(e->args, &a) < 0)
		return fail(out, c->version, CNI_ERR_ENV, e->args, "CNI_ARGS is not KEY=VALUE;KEY=VALUE");
	if (!c->prev_result)
		return fail(out, c->version, CNI_ERR_CONFIG, NULL, "CHECK needs prevResult");
	if (a.opt_out || (a.ns[0] && ns_excluded(c, a.ns))) {
		*out = xstrdup("");
		return 0;
	}
	req = ctl_request(CTL_PODS);
	r = call(c, req, &resp);
	json_object_put(req);
	if (r < 0)
		return fail(out, c->version, CNI_ERR_TRY_AGAIN, strerror(-r), "the meshsplice agent is not answering at %s",
			    c->control);
	bool found = false, enabled = false;
	if (json_object_object_get_ex(resp, CTL_F_PODS, &pods))
		for (size_t i = 0; i < json_object_array_length(pods); i++) {
			json_object *p = json_object_array_get_idx(pods, i);
			if (streq(str(p, CTL_F_NETNS), e->netns)) {
				found = true;
				enabled = streq(str(p, "state"), "enabled");
			}
		}
	json_object_put(resp);
	if (!found)
		return fail(out, c->version, CNI_ERR_UNKNOWN_CONTAINER, e->netns,
			    "drift: the agent does not know the pod with netns %s", e->netns);
	if (!enabled)
		return fail(out, c->version, CNI_ERR_IO, e->netns,
			    "drift: the pod with netns %s is known but not redirected (disabled)", e->netns);
	*out = xstrdup("");
	return 0;
}

int cni_run(const struct cni_env *e, const char *in, char **ret_out)
{
	struct cni_conf c;
	int r;

	if (!e->command || !*e->command)
		return fail(ret_out, "1.0.0", CNI_ERR_ENV, NULL, "CNI_COMMAND is not set (ADD, DEL, CHECK or VERSION)");
	if (streq(e->command, "VERSION")) {
		*ret_out = xstrdup("{\"cniVersion\": \"1.0.0\", \"supportedVersions\": [\"0.3.1\", \"0.4.0\", \"1.0.0\"]}");
		return 0;
	}
	if (!streq(e->command, "ADD") && !streq(e->command, "DEL") && !streq(e->command, "CHECK"))
		return fail(ret_out, "1.0.0", CNI_ERR_ENV, e->command, "CNI_COMMAND %s is not ADD, DEL, CHECK or VERSION",
			    log_escape(e->command));
	if ((r = parse_conf(in, &c, ret_out)) != 0) {
		json_object_put(c.root);
		return r;
	}
	if (e->force_control)
		c.control = e->force_control;
	if (e->force_state_dir)
		c.state_dir = e->force_state_dir;
	if (!e->container || !*e->container)
		r = fail(ret_out, c.version, CNI_ERR_ENV, NULL, "CNI_CONTAINERID is not set");
	else if (!container_id_ok(e->container))
		r = fail(ret_out, c.version, CNI_ERR_ENV, NULL, "CNI_CONTAINERID has characters other than [A-Za-z0-9_.-]");
	else if (!e->ifname || !*e->ifname)
		r = fail(ret_out, c.version, CNI_ERR_ENV, NULL, "CNI_IFNAME is not set");
	else if (!streq(e->command, "DEL") && (!e->netns || !*e->netns))
		r = fail(ret_out, c.version, CNI_ERR_ENV, NULL, "CNI_NETNS is not set");
	else if (!streq(e->command, "DEL") && (!e->path || !*e->path))
		r = fail(ret_out, c.version, CNI_ERR_ENV, NULL, "CNI_PATH is not set");
	else if (streq(e->command, "ADD") && !c.prev_result)
		r = fail(ret_out, c.version, CNI_ERR_CONFIG, NULL,
			 "no prevResult: meshsplice-cni is a chained plugin; list it after the plugin that creates the pod's interface");
	else if (streq(e->command, "ADD"))
		r = do_add(e, &c, ret_out);
	else if (streq(e->command, "DEL"))
		r = do_del(e, &c, ret_out);
	else
		r = do_check(e, &c, ret_out);
	json_object_put(c.root);
	return r;
}
