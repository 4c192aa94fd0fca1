// SPDX-License-Identifier: MIT
/* The name rules Kuma applies to every resource (pkg/core/resources/apis/mesh/
 * meta_validator.go, pkg/api-server's validateLabels) and Kubernetes' own
 * (apimachinery validation.IsQualifiedName, IsValidLabelValue), which Kuma
 * calls. Pure string checks; messages are Kuma's words where it has them. */
#include <ctype.h>
#include <string.h>

#include "loader.h"
#include "util.h"

#define NAME_MAX_LEN 253
#define LABEL_MAX_LEN 63

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? labels joined by dots */
static bool rfc1123_subdomain(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
			if (label == 0 && c == '-')
				return false;
			label++;
		} else {
			return false;
		}
	}
	return label > 0 && s[len - 1] != '-';
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], at most 63: a label value, and
 * the name part of a key */
static bool label_token(const char *s, size_t len)
{
	if (len > LABEL_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool edge = i == 0 || i == len - 1;
		if (!isalnum(c) && (edge || (c != '-' && c != '_' && c != '.')))
			return false;
	}
	return true;
}

const char *cfg_name_check(const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return "cannot be empty";
	if (len > NAME_MAX_LEN)
		return "value length must less or equal 253";
	if (!rfc1123_subdomain(name, len))
		return "invalid characters. A lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
		       "characters, '-' or '.', and must start and end with an alphanumeric character";
	return NULL;
}

const char *cfg_mesh_name_check(const char *mesh)
{
	for (const char *p = mesh; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return "invalid characters. Valid characters are numbers, lowercase latin letters and '-', '_', '.' symbols.";
	return NULL;
}

const char *cfg_label_key_check(const char *key)
{
	const char *slash = strchr(key, '/');
	const char *name = slash ? slash + 1 : key;

	if (slash && (strchr(name, '/') || !rfc1123_subdomain(key, (size_t)(slash - key))))
		return "a qualified name's prefix must be a lowercase RFC 1123 subdomain, one \"/\" at most";
	if (!*name)
		return "name part must be non-empty";
	if (!label_token(name, strlen(name)))
		return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
		       "with an alphanumeric character (at most 63)";
	return NULL;
}

const char *cfg_label_value_check(const char *value)
{
	if (!label_token(value, strlen(value)))
		return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
		       "and must start and end with an alphanumeric character (at most 63)";
	return NULL;
}
