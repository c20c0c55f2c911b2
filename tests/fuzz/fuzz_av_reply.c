/* fuzz_av_reply.c - clamd's answers as moat-smtpd parses them (scan verdict,
 * VERSION line): any bytes give a result, a bounded printable name, no
 * crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[128], v[512];
	size_t namesz = size ? (size_t)data[0] % sizeof(name) + 1 : sizeof(name);
	time_t t;

	memset(name, 0x55, sizeof(name));
	enum av_result r = av_parse_reply((const char *)data, size, name, namesz);
	if (r != AV_CLEAN && r != AV_VIRUS && r != AV_ERROR)
		abort();
	size_t len = strnlen(name, namesz);
	if (len >= namesz)
		abort();
	for (size_t i = 0; i < len; i++)
		if (name[i] < 0x20 || name[i] >= 0x7f || name[i] == '"' || (name[i] == ' ' && r != AV_ERROR))
			abort();
	if (r == AV_VIRUS && !len)
		abort();
	size_t n = size < sizeof(v) - 1 ? size : sizeof(v) - 1;
	memcpy(v, data, n);
	v[n] = '\0';
	(void)av_parse_version(v, &t);
	return 0;
}
