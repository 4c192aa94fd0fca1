/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

/* meshsplice-cni: a chained CNI plugin (spec 1.0.0; 0.4.0 and 0.3.1 callers
 * too). It never touches the pod's interfaces: it passes prevResult through
 * and asks the agent to enable the pod by its netns. */

/* The spec's error codes. */
enum cni_code {
	CNI_ERR_VERSION = 1,
	CNI_ERR_UNSUPPORTED_FIELD = 2,
	CNI_ERR_UNKNOWN_CONTAINER = 3,
	CNI_ERR_ENV = 4,
	CNI_ERR_IO = 5,
	CNI_ERR_DECODE = 6,
	CNI_ERR_CONFIG = 7,
	CNI_ERR_TRY_AGAIN = 11,
};

struct cni_env {
	const char *command, *container, *netns, *ifname, *args, *path;
	/* When set, these win over the config's controlSocket and stateDir
	 * (fuzzing: no input may point the plugin at another socket or dir). */
	const char *force_control, *force_state_dir;
};

struct cni_conf {
	json_object *root; /* owns everything below */
	const char *version;
	const char *control;
	const char *mesh;
	const char *state_dir;
	bool fail_open;
	bool no_dns; /* "dns": false: leave the pod's DNS alone */
	int timeout_ms;
	json_object *prev_result;
	json_object *exclude_ns;
	json_object *dns_servers; /* the pod's resolvers: runtimeConfig.dns.servers, else prevResult.dns.nameservers */
};

/* Pod identity from CNI_ARGS ("K=V;K=V"): namespace, name, per-pod mesh and opt-out. */
struct cni_args {
	char ns[254], pod[254], mesh[254];
	bool opt_out;
};

/* Run one CNI call: reads config from in (stdin text), writes the result or
 * the error JSON to *ret_out (caller frees). Returns the process exit code. */
int cni_run(const struct cni_env *env, const char *in, char **ret_out);
int cni_parse_args(const char *s, struct cni_args *ret);
