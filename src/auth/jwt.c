/*
 * jwt.c - signing and verifying HS256 JWTs with mbedtls (HMAC) and yyjson.
 *
 * The file has three layers: the key ring and its configuration, a bounded
 * JSON reader shared by header and payload (nesting, member count, duplicate
 * names), and the verification steps, each returning the jwt_failure that
 * stops the token. jwt_verify() runs them in the order documented in jwt.h.
 */
#include "jwt.h"

#include "../base/json.h"
#include "../base/base64.h"
#include "../base/check.h"
#include "../base/err.h"
#include "../base/mem.h"

#include <mbedtls/constant_time.h>
#include <mbedtls/md.h>
#include <yyjson.h>

#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* Bytes a segment of a maximal token can decode to. */
#define JWT_DECODED_BYTES_MAX (LIMIT_JWT_TOKEN_BYTES / 4 * 3)

/* Largest HMAC output (SHA-512). */
#define JWT_MAC_BYTES_MAX 64

/* 9999-12-31T23:59:59Z: the largest NumericDate accepted. It keeps every
 * sum with the leeway far from overflow. */
#define JWT_NUMERIC_DATE_MAX INT64_C(253402300799)

static const char *const jwt_failure_names[] = {
#define JWT_FAILURE_NAME(name, text) #name,
    JWT_FAILURE_TABLE(JWT_FAILURE_NAME)
#undef JWT_FAILURE_NAME
};

static const char *const jwt_failure_texts[] = {
#define JWT_FAILURE_TEXT(name, text) text,
    JWT_FAILURE_TABLE(JWT_FAILURE_TEXT)
#undef JWT_FAILURE_TEXT
};

#define JWT_FAILURE_COUNT (sizeof jwt_failure_names / sizeof jwt_failure_names[0])

const char *jwt_failure_name(enum jwt_failure failure) {
    if ((unsigned)failure >= JWT_FAILURE_COUNT) return "JWT_FAILURE_UNKNOWN";
    return jwt_failure_names[failure];
}

const char *jwt_failure_str(enum jwt_failure failure) {
    if ((unsigned)failure >= JWT_FAILURE_COUNT) return "unknown failure";
    return jwt_failure_texts[failure];
}

/* ---- Configuration ------------------------------------------------------ */

void jwt_config_init(struct jwt_config *config) {
    CHECK(config != NULL);
    memset(config, 0, sizeof *config);
    config->algorithms = JWT_ALGORITHM_HS256;
    config->leeway_s = LIMIT_JWT_LEEWAY_S_DEFAULT;
}

/* Copies a NUL-terminated string into a fixed field; false if it is too long. */
static bool jwt_copy_string(char *out, size_t out_size, const char *text) {
    size_t length = strlen(text);
    if (length >= out_size) return false;
    memcpy(out, text, length + 1);
    return true;
}

int jwt_config_add_key(struct jwt_config *config, const char *key_id, const void *secret,
                       size_t secret_length) {
    CHECK(config != NULL && secret != NULL);
    CHECK(config->key_count >= 0 && config->key_count <= LIMIT_JWT_KEYS);
    if (key_id == NULL) key_id = "";
    if (secret_length < LIMIT_JWT_SECRET_BYTES_MIN || secret_length > LIMIT_JWT_SECRET_BYTES_MAX) {
        return ERR_INVAL;
    }
    if (strlen(key_id) > LIMIT_JWT_KEY_ID_BYTES) return ERR_INVAL;
    for (int index = 0; index < config->key_count; index++) {
        if (strcmp(config->keys[index].key_id, key_id) == 0) return ERR_EXISTS;
    }
    if (config->key_count == LIMIT_JWT_KEYS) return ERR_LIMIT;
    struct jwt_key *key = &config->keys[config->key_count];
    CHECK(jwt_copy_string(key->key_id, sizeof key->key_id, key_id));
    memcpy(key->secret, secret, secret_length);
    key->secret_length = secret_length;
    config->key_count++;
    return 0;
}

int jwt_config_set_issuer(struct jwt_config *config, const char *issuer) {
    CHECK(config != NULL && issuer != NULL);
    return jwt_copy_string(config->issuer, sizeof config->issuer, issuer) ? 0 : ERR_INVAL;
}

int jwt_config_set_audience(struct jwt_config *config, const char *audience) {
    CHECK(config != NULL && audience != NULL);
    return jwt_copy_string(config->audience, sizeof config->audience, audience) ? 0 : ERR_INVAL;
}

int jwt_config_set_leeway(struct jwt_config *config, int64_t leeway_s) {
    CHECK(config != NULL);
    if (leeway_s < 0 || leeway_s > LIMIT_JWT_LEEWAY_S_MAX) return ERR_INVAL;
    config->leeway_s = leeway_s;
    return 0;
}

/* ---- Bounded JSON ------------------------------------------------------- */

/* True when two members of `object` have the same name. yyjson keeps them
 * all and lookups find the first, but another parser might take the last:
 * such a token means different things to different readers. */
static bool jwt_json_has_duplicates(yyjson_val *object) {
    yyjson_val *names[LIMIT_JWT_JSON_MEMBERS];
    size_t count = 0;
    yyjson_obj_iter iterator = yyjson_obj_iter_with(object);
    yyjson_val *name;
    while ((name = yyjson_obj_iter_next(&iterator)) != NULL) {
        CHECK(count < LIMIT_JWT_JSON_MEMBERS);
        for (size_t index = 0; index < count; index++) {
            if (yyjson_equals_strn(names[index], yyjson_get_str(name), yyjson_get_len(name))) {
                return true;
            }
        }
        names[count++] = name;
    }
    return false;
}

/* Parses one decoded segment. 0 with `*document` set (free with
 * yyjson_doc_free), ERR_NOMEM, ERR_EXISTS for duplicate names, or ERR_PARSE
 * for anything else that is not a bounded JSON object. */
static int jwt_json_parse(const char *json, size_t length, yyjson_doc **document) {
    if (!json_depth_ok(json, length, LIMIT_JWT_JSON_DEPTH)) return ERR_PARSE;
    yyjson_read_err error;
    yyjson_doc *parsed = yyjson_read_opts((char *)json, length, YYJSON_READ_NOFLAG,
                                          &json_allocator, &error);
    if (parsed == NULL) {
        return error.code == YYJSON_READ_ERROR_MEMORY_ALLOCATION ? ERR_NOMEM : ERR_PARSE;
    }
    yyjson_val *root = yyjson_doc_get_root(parsed);
    int rc = 0;
    if (!yyjson_is_obj(root) || yyjson_obj_size(root) > LIMIT_JWT_JSON_MEMBERS) {
        rc = ERR_PARSE;
    } else if (jwt_json_has_duplicates(root)) {
        rc = ERR_EXISTS;
    }
    if (rc != 0) {
        yyjson_doc_free(parsed);
        return rc;
    }
    *document = parsed;
    return 0;
}

/* Reads member `name` as a string of at most `limit` bytes without NUL.
 * 1 when present and valid, 0 when absent, -1 when of the wrong type or
 * length. */
static int jwt_json_string(yyjson_val *object, const char *name, size_t limit,
                           const char **value) {
    yyjson_val *member = yyjson_obj_get(object, name);
    if (member == NULL) return 0;
    if (!yyjson_is_str(member)) return -1;
    const char *text = yyjson_get_str(member);
    size_t length = yyjson_get_len(member);
    if (length > limit || memchr(text, '\0', length) != NULL) return -1;
    *value = text;
    return 1;
}

/* ---- Verification steps ------------------------------------------------- */

/* The three segments of a compact JWS, pointing into the token. */
struct jwt_segments {
    const char *header;       /* base64url header */
    size_t header_length;     /* its length */
    const char *payload;      /* base64url payload */
    size_t payload_length;    /* its length */
    const char *signature;    /* base64url signature */
    size_t signature_length;  /* its length */
    size_t signed_length;     /* bytes of "header.payload", the HMAC input */
};

static enum jwt_failure jwt_split(const char *token, size_t length,
                                  struct jwt_segments *segments) {
    size_t dots[3];
    int dot_count = 0;
    for (size_t index = 0; index < length; index++) {
        if (token[index] != '.') continue;
        if (dot_count == 2) return JWT_FAILURE_SEGMENTS;
        dots[dot_count++] = index;
    }
    if (dot_count != 2) return JWT_FAILURE_SEGMENTS;
    segments->header = token;
    segments->header_length = dots[0];
    segments->payload = token + dots[0] + 1;
    segments->payload_length = dots[1] - dots[0] - 1;
    segments->signature = token + dots[1] + 1;
    segments->signature_length = length - dots[1] - 1;
    segments->signed_length = dots[1];
    return JWT_FAILURE_NONE;
}

static const mbedtls_md_info_t *jwt_algorithm_md(enum jwt_algorithm algorithm) {
    switch (algorithm) {
    case JWT_ALGORITHM_HS256: return mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    case JWT_ALGORITHM_HS384: return mbedtls_md_info_from_type(MBEDTLS_MD_SHA384);
    case JWT_ALGORITHM_HS512: return mbedtls_md_info_from_type(MBEDTLS_MD_SHA512);
    }
    CHECK(!"unknown algorithm");
    return NULL;
}

/* Maps the header's "alg" to an allowed algorithm. Names are case-sensitive
 * (RFC 7515 section 4.1.1), except that "none" is singled out in any case. */
static enum jwt_failure jwt_check_algorithm(const struct jwt_config *config, yyjson_val *header,
                                            enum jwt_algorithm *algorithm) {
    const char *name = NULL;
    if (jwt_json_string(header, "alg", 16, &name) != 1) return JWT_FAILURE_ALGORITHM;
    if (strcasecmp(name, "none") == 0) return JWT_FAILURE_ALGORITHM_NONE;
    if (strcmp(name, "HS256") == 0) *algorithm = JWT_ALGORITHM_HS256;
    else if (strcmp(name, "HS384") == 0) *algorithm = JWT_ALGORITHM_HS384;
    else if (strcmp(name, "HS512") == 0) *algorithm = JWT_ALGORITHM_HS512;
    else return JWT_FAILURE_ALGORITHM;
    if ((config->algorithms & (unsigned)*algorithm) == 0) return JWT_FAILURE_ALGORITHM;
    return JWT_FAILURE_NONE;
}

static enum jwt_failure jwt_check_header(const struct jwt_config *config, yyjson_val *header,
                                         enum jwt_algorithm *algorithm,
                                         const struct jwt_key **key) {
    enum jwt_failure failure = jwt_check_algorithm(config, header, algorithm);
    if (failure != JWT_FAILURE_NONE) return failure;
    if (yyjson_obj_get(header, "crit") != NULL) return JWT_FAILURE_CRITICAL;
    const char *key_id = "";
    int found = jwt_json_string(header, "kid", LIMIT_JWT_KEY_ID_BYTES, &key_id);
    if (found < 0) return JWT_FAILURE_KEY_ID;
    for (int index = 0; index < config->key_count; index++) {
        if (strcmp(config->keys[index].key_id, key_id) == 0) {
            *key = &config->keys[index];
            return JWT_FAILURE_NONE;
        }
    }
    return JWT_FAILURE_KEY_ID;
}

/* HMAC of `length` bytes with `key`; returns the MAC length. */
static size_t jwt_mac(const struct jwt_key *key, enum jwt_algorithm algorithm, const char *data,
                      size_t length, uint8_t mac[JWT_MAC_BYTES_MAX]) {
    const mbedtls_md_info_t *info = jwt_algorithm_md(algorithm);
    CHECK(info != NULL);
    size_t mac_length = mbedtls_md_get_size(info);
    CHECK(mac_length <= JWT_MAC_BYTES_MAX);
    int rc = mbedtls_md_hmac(info, key->secret, key->secret_length, (const unsigned char *)data,
                             length, mac);
    CHECK(rc == 0);
    return mac_length;
}

static enum jwt_failure jwt_check_signature(const struct jwt_key *key,
                                            enum jwt_algorithm algorithm,
                                            const struct jwt_segments *segments) {
    uint8_t given[JWT_MAC_BYTES_MAX];
    size_t given_length = 0;
    int rc = base64_decode(BASE64_URL, segments->signature, segments->signature_length, given,
                           sizeof given, &given_length);
    if (rc == ERR_LIMIT) return JWT_FAILURE_SIGNATURE;
    if (rc != 0) return JWT_FAILURE_BASE64;
    uint8_t expected[JWT_MAC_BYTES_MAX];
    size_t expected_length = jwt_mac(key, algorithm, segments->header, segments->signed_length,
                                     expected);
    if (given_length != expected_length) return JWT_FAILURE_SIGNATURE;
    if (mbedtls_ct_memcmp(given, expected, expected_length) != 0) return JWT_FAILURE_SIGNATURE;
    return JWT_FAILURE_NONE;
}

/* Reads a NumericDate claim: *present is false when absent. */
static enum jwt_failure jwt_read_date(yyjson_val *payload, const char *name, bool *present,
                                      int64_t *value_s) {
    yyjson_val *member = yyjson_obj_get(payload, name);
    *present = member != NULL;
    *value_s = 0;
    if (member == NULL) return JWT_FAILURE_NONE;
    if (yyjson_is_uint(member)) {
        uint64_t value = yyjson_get_uint(member);
        if (value > (uint64_t)JWT_NUMERIC_DATE_MAX) return JWT_FAILURE_CLAIM_TYPE;
        *value_s = (int64_t)value;
        return JWT_FAILURE_NONE;
    }
    if (yyjson_is_real(member)) {
        double value = yyjson_get_real(member);
        /* The comparisons are false for NaN, which yyjson rejects anyway. */
        if (!(value >= 0.0 && value <= (double)JWT_NUMERIC_DATE_MAX)) {
            return JWT_FAILURE_CLAIM_TYPE;
        }
        *value_s = (int64_t)value;
        return JWT_FAILURE_NONE;
    }
    return JWT_FAILURE_CLAIM_TYPE; /* negative integers, strings, booleans, ... */
}

static enum jwt_failure jwt_check_times(const struct jwt_config *config, yyjson_val *payload,
                                        int64_t now_s, struct jwt_claims *claims) {
    bool has_expiry = false;
    bool has_not_before = false;
    bool has_issued_at = false;
    int64_t not_before_s = 0;
    enum jwt_failure failure = jwt_read_date(payload, "exp", &has_expiry, &claims->expires_at_s);
    if (failure == JWT_FAILURE_NONE) {
        failure = jwt_read_date(payload, "nbf", &has_not_before, &not_before_s);
    }
    if (failure == JWT_FAILURE_NONE) {
        failure = jwt_read_date(payload, "iat", &has_issued_at, &claims->issued_at_s);
    }
    if (failure != JWT_FAILURE_NONE) return failure;
    if (!has_expiry) return JWT_FAILURE_EXPIRY_MISSING;
    /* RFC 7519 4.1.4: the token is good only while now < exp. */
    if (now_s >= claims->expires_at_s + config->leeway_s) return JWT_FAILURE_EXPIRED;
    if (has_not_before && not_before_s > now_s + config->leeway_s) {
        return JWT_FAILURE_NOT_YET_VALID;
    }
    if (has_issued_at && claims->issued_at_s > now_s + config->leeway_s) {
        return JWT_FAILURE_ISSUED_IN_FUTURE;
    }
    return JWT_FAILURE_NONE;
}

/* Copies an optional string claim into a fixed field ("" when absent). */
static enum jwt_failure jwt_read_string(yyjson_val *payload, const char *name, char *out,
                                        size_t out_size) {
    const char *value = "";
    if (jwt_json_string(payload, name, out_size - 1, &value) < 0) return JWT_FAILURE_CLAIM_TYPE;
    CHECK(jwt_copy_string(out, out_size, value));
    return JWT_FAILURE_NONE;
}

static enum jwt_failure jwt_check_identity(yyjson_val *payload, struct jwt_claims *claims) {
    enum jwt_failure failure =
        jwt_read_string(payload, "sub", claims->subject, sizeof claims->subject);
    if (failure == JWT_FAILURE_NONE) {
        failure = jwt_read_string(payload, "role", claims->role, sizeof claims->role);
    }
    if (failure == JWT_FAILURE_NONE) {
        failure = jwt_read_string(payload, "jti", claims->token_id, sizeof claims->token_id);
    }
    if (failure != JWT_FAILURE_NONE) return failure;
    if (claims->subject[0] == '\0') return JWT_FAILURE_SUBJECT_MISSING;
    return JWT_FAILURE_NONE;
}

/* True when `value` is a string equal to `wanted`. */
static bool jwt_string_equals(yyjson_val *value, const char *wanted) {
    return yyjson_is_str(value) && yyjson_equals_strn(value, wanted, strlen(wanted));
}

static enum jwt_failure jwt_check_issuer_audience(const struct jwt_config *config,
                                                  yyjson_val *payload) {
    if (config->issuer[0] != '\0' &&
        !jwt_string_equals(yyjson_obj_get(payload, "iss"), config->issuer)) {
        return JWT_FAILURE_ISSUER;
    }
    yyjson_val *audience = yyjson_obj_get(payload, "aud");
    if (audience == NULL) {
        return config->audience[0] == '\0' ? JWT_FAILURE_NONE : JWT_FAILURE_AUDIENCE;
    }
    if (config->audience[0] == '\0') return JWT_FAILURE_AUDIENCE;
    if (jwt_string_equals(audience, config->audience)) return JWT_FAILURE_NONE;
    if (!yyjson_is_arr(audience) || yyjson_arr_size(audience) > LIMIT_JWT_AUDIENCES) {
        return JWT_FAILURE_AUDIENCE;
    }
    size_t index;
    size_t count;
    yyjson_val *entry;
    yyjson_arr_foreach(audience, index, count, entry) {
        if (jwt_string_equals(entry, config->audience)) return JWT_FAILURE_NONE;
    }
    return JWT_FAILURE_AUDIENCE;
}

/* Decodes a base64url segment and parses it as a bounded JSON object. The
 * failure for a bad document is `invalid` (header or payload). */
static int jwt_read_segment(const char *text, size_t length, enum jwt_failure invalid,
                            yyjson_doc **document, enum jwt_failure *failure) {
    char decoded[JWT_DECODED_BYTES_MAX];
    size_t decoded_length = 0;
    if (base64_decode(BASE64_URL, text, length, decoded, sizeof decoded, &decoded_length) != 0) {
        *failure = JWT_FAILURE_BASE64;
        return ERR_DENIED;
    }
    int rc = jwt_json_parse(decoded, decoded_length, document);
    if (rc == ERR_NOMEM) return rc;
    if (rc != 0) {
        *failure = rc == ERR_EXISTS ? JWT_FAILURE_DUPLICATE : invalid;
        return ERR_DENIED;
    }
    return 0;
}

/* Everything about the payload, once the signature is known to be good. */
static enum jwt_failure jwt_check_payload(const struct jwt_config *config, yyjson_val *payload,
                                          int64_t now_s, struct jwt_claims *claims) {
    enum jwt_failure failure = jwt_check_times(config, payload, now_s, claims);
    if (failure == JWT_FAILURE_NONE) failure = jwt_check_identity(payload, claims);
    if (failure == JWT_FAILURE_NONE) failure = jwt_check_issuer_audience(config, payload);
    return failure;
}

int jwt_verify(const struct jwt_config *config, const char *token, size_t length, int64_t now_s,
               struct jwt_claims *claims, enum jwt_failure *failure) {
    CHECK(config != NULL && claims != NULL);
    CHECK(token != NULL || length == 0);
    CHECK(config->leeway_s >= 0 && config->leeway_s <= LIMIT_JWT_LEEWAY_S_MAX);
    enum jwt_failure ignored;
    if (failure == NULL) failure = &ignored;
    *failure = JWT_FAILURE_NONE;
    memset(claims, 0, sizeof *claims);
    if (length > LIMIT_JWT_TOKEN_BYTES) *failure = JWT_FAILURE_TOO_LARGE;
    struct jwt_segments segments;
    if (*failure == JWT_FAILURE_NONE) *failure = jwt_split(token, length, &segments);
    if (*failure != JWT_FAILURE_NONE) return ERR_DENIED;

    yyjson_doc *header = NULL;
    int rc = jwt_read_segment(segments.header, segments.header_length, JWT_FAILURE_HEADER,
                              &header, failure);
    if (rc != 0) return rc;
    enum jwt_algorithm algorithm = JWT_ALGORITHM_HS256;
    const struct jwt_key *key = NULL;
    *failure = jwt_check_header(config, yyjson_doc_get_root(header), &algorithm, &key);
    yyjson_doc_free(header);
    if (*failure == JWT_FAILURE_NONE) *failure = jwt_check_signature(key, algorithm, &segments);
    if (*failure != JWT_FAILURE_NONE) return ERR_DENIED;

    yyjson_doc *payload = NULL;
    rc = jwt_read_segment(segments.payload, segments.payload_length, JWT_FAILURE_PAYLOAD, &payload,
                          failure);
    if (rc != 0) return rc;
    *failure = jwt_check_payload(config, yyjson_doc_get_root(payload), now_s, claims);
    yyjson_doc_free(payload);
    return *failure == JWT_FAILURE_NONE ? 0 : ERR_DENIED;
}

/* ---- Signing ------------------------------------------------------------ */

/* Serialises `document` (consumed) into a mem_alloc'd string. */
static int jwt_json_write(yyjson_mut_doc *document, char **json, size_t *length) {
    *json = yyjson_mut_write_opts(document, YYJSON_WRITE_NOFLAG, &json_allocator, length,
                                  NULL);
    yyjson_mut_doc_free(document);
    return *json == NULL ? ERR_NOMEM : 0;
}

static int jwt_header_json(const struct jwt_key *key, char **json, size_t *length) {
    yyjson_mut_doc *document = yyjson_mut_doc_new(&json_allocator);
    if (document == NULL) return ERR_NOMEM;
    yyjson_mut_val *root = yyjson_mut_obj(document);
    bool ok = root != NULL && yyjson_mut_obj_add_str(document, root, "alg", "HS256") &&
              yyjson_mut_obj_add_str(document, root, "typ", "JWT");
    if (ok && key->key_id[0] != '\0') {
        ok = yyjson_mut_obj_add_str(document, root, "kid", key->key_id);
    }
    if (!ok) {
        yyjson_mut_doc_free(document);
        return ERR_NOMEM;
    }
    yyjson_mut_doc_set_root(document, root);
    return jwt_json_write(document, json, length);
}

static int jwt_payload_json(const struct jwt_config *config, const struct jwt_claims *claims,
                            char **json, size_t *length) {
    yyjson_mut_doc *document = yyjson_mut_doc_new(&json_allocator);
    if (document == NULL) return ERR_NOMEM;
    yyjson_mut_val *root = yyjson_mut_obj(document);
    bool ok = root != NULL && yyjson_mut_obj_add_str(document, root, "sub", claims->subject);
    if (ok && claims->role[0] != '\0') {
        ok = yyjson_mut_obj_add_str(document, root, "role", claims->role);
    }
    if (ok && claims->token_id[0] != '\0') {
        ok = yyjson_mut_obj_add_str(document, root, "jti", claims->token_id);
    }
    if (ok && config->issuer[0] != '\0') {
        ok = yyjson_mut_obj_add_str(document, root, "iss", config->issuer);
    }
    if (ok && config->audience[0] != '\0') {
        ok = yyjson_mut_obj_add_str(document, root, "aud", config->audience);
    }
    if (ok && claims->issued_at_s != 0) {
        ok = yyjson_mut_obj_add_int(document, root, "iat", claims->issued_at_s);
    }
    ok = ok && yyjson_mut_obj_add_int(document, root, "exp", claims->expires_at_s);
    if (!ok) {
        yyjson_mut_doc_free(document);
        return ERR_NOMEM;
    }
    yyjson_mut_doc_set_root(document, root);
    return jwt_json_write(document, json, length);
}

/* Writes "b64(header).b64(payload).b64(mac)" into out. */
static int jwt_assemble(const struct jwt_key *key, const char *header, size_t header_length,
                        const char *payload, size_t payload_length, char *out, size_t out_size,
                        size_t *out_length) {
    size_t mac_text_length = base64_encoded_length(BASE64_URL, 32);
    size_t total = base64_encoded_length(BASE64_URL, header_length) + 1 +
                   base64_encoded_length(BASE64_URL, payload_length) + 1 + mac_text_length;
    if (total > LIMIT_JWT_TOKEN_BYTES || total + 1 > out_size) return ERR_LIMIT;
    size_t written = 0;
    size_t part = 0;
    CHECK(base64_encode(BASE64_URL, header, header_length, out, out_size, &part) == 0);
    written += part;
    out[written++] = '.';
    CHECK(base64_encode(BASE64_URL, payload, payload_length, out + written, out_size - written,
                        &part) == 0);
    written += part;
    uint8_t mac[JWT_MAC_BYTES_MAX];
    size_t mac_length = jwt_mac(key, JWT_ALGORITHM_HS256, out, written, mac);
    out[written++] = '.';
    CHECK(base64_encode(BASE64_URL, mac, mac_length, out + written, out_size - written, &part) ==
          0);
    written += part;
    CHECK(written == total && out[written] == '\0');
    if (out_length != NULL) *out_length = written;
    return 0;
}

int jwt_sign(const struct jwt_config *config, const struct jwt_claims *claims, char *out,
             size_t out_size, size_t *out_length) {
    CHECK(config != NULL && claims != NULL && out != NULL);
    CHECK(config->key_count > 0 && config->key_count <= LIMIT_JWT_KEYS);
    CHECK(claims->subject[0] != '\0');
    CHECK(claims->expires_at_s > 0 && claims->expires_at_s <= JWT_NUMERIC_DATE_MAX);
    CHECK(claims->issued_at_s >= 0 && claims->issued_at_s <= JWT_NUMERIC_DATE_MAX);
    const struct jwt_key *key = &config->keys[0];
    char *header = NULL;
    char *payload = NULL;
    size_t header_length = 0;
    size_t payload_length = 0;
    int rc = jwt_header_json(key, &header, &header_length);
    if (rc != 0) goto fail;
    rc = jwt_payload_json(config, claims, &payload, &payload_length);
    if (rc != 0) goto fail;
    rc = jwt_assemble(key, header, header_length, payload, payload_length, out, out_size,
                      out_length);
fail:
    mem_free(header);
    mem_free(payload);
    return rc;
}
