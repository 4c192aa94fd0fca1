/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>

#include "config.h"

/* New JSON objects; the caller owns them (json_object_put). */
json_object *cfg_render_json(const struct ms_config *c);
json_object *cfg_service_json(const struct ms_service *s);
json_object *cfg_errors_json(const struct cfg_errors *e);
