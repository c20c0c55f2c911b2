/* fuzz_log_escape.c - escaped output is bounded, terminated and printable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[256];
	size_t dstsz = size ? (size_t)data[0] % sizeof(out) + 1 : sizeof(out);

	memset(out, 0x55, sizeof(out));
	log_escape(out, dstsz, (const char *)data, size);
	size_t len = strnlen(out, dstsz);
	if (len >= dstsz)
		abort();
	for (size_t i = 0; i < len; i++)
		if (out[i] < 0x20 || out[i] >= 0x7f)
			abort();
	return 0;
}
