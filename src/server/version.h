/*
 * version.h - Docket's version string. build.zig defines DOCKET_VERSION from
 * its pinned version (and the git commit when available); this fallback keeps
 * unit tests and ad-hoc builds compiling.
 */
#ifndef DOCKET_SERVER_VERSION_H
#define DOCKET_SERVER_VERSION_H

#ifndef DOCKET_VERSION
#define DOCKET_VERSION "0.0.0-dev"
#endif

#endif
