/* SPDX-License-Identifier: MIT */
/* Configs more than one unit test reads. */
#pragma once

/* A MeshExternalService of three IP endpoints on two priority levels: the
 * better level (0) holds 198.18.0.1:1 and 198.18.0.2:2, the lower one (1)
 * 198.18.0.9:9. Ends inside the last endpoint, so a test may add to it or
 * add endpoints after it. */
#define FIXTURE_LEVELS_IP                                                                    \
	"type: Mesh\nname: open\n"                                                           \
	"---\n"                                                                              \
	"apiVersion: kuma.io/v1alpha1\nkind: MeshExternalService\n"                          \
	"metadata:\n  name: levels\n  labels:\n    kuma.io/mesh: open\n"                     \
	"spec:\n  match:\n    type: HostnameGenerator\n    port: 80\n    protocol: tcp\n"    \
	"  endpoints:\n"                                                                     \
	"    - address: 198.18.0.9\n      port: 9\n      priority: 1\n"                      \
	"    - address: 198.18.0.1\n      port: 1\n"                                         \
	"    - address: 198.18.0.2\n      port: 2\n"
