#ifndef MIGAUTH_CZSTD_SHIM_H
#define MIGAUTH_CZSTD_SHIM_H
// Facebook's zstd (Debian: libzstd-dev), for MigrationService's chunk codec (ChunkCodec.swift) only.
#include <zstd.h>
#endif
