/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz.h: the libFuzzer entry point, shared by the fuzzers and the replay driver, and the
 * helpers of targets whose parser reads a file (fuzz-util.c). */
#pragma once
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* A private folder (0700) for the files a target writes, made on first use and removed with
 * its contents at exit. Static string. */
const char *fuzz_tmpdir (void);

/* Write @size bytes to @path (0600, replacing it); aborts if it cannot. */
void fuzz_write_file (const char *path, const uint8_t *data, size_t size);
