/*
 * assets.h - the web UI files embedded in the binary at build time.
 *
 * build.zig runs the host tool embed.c over web/ and links the generated
 * table; assets_find() looks a request path up in it. Each asset carries a
 * strong ETag (a hash of its bytes) so browsers revalidate cheaply.
 */
#ifndef DOCKET_WEB_ASSETS_H
#define DOCKET_WEB_ASSETS_H

#include <stddef.h>

struct asset {
    const char *path;         /* URL path: "/index.html" */
    const char *content_type; /* "text/html; charset=utf-8" */
    const unsigned char *data; /* file bytes */
    size_t length;            /* bytes of data */
    const char *etag;         /* quoted strong validator: "\"9f2c...\"" */
};

extern const struct asset assets_table[];
extern const size_t assets_count;

/* Finds the asset for a URL path; "/" means "/index.html". NULL if none. */
const struct asset *assets_find(const char *path, size_t path_length);

#endif
