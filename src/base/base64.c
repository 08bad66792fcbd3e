/*
 * base64.c - strict base64 and base64url encoding and decoding (RFC 4648).
 *
 * Both directions work in groups: 3 bytes become 4 characters, and a final
 * group of 1 or 2 bytes becomes 2 or 3 characters (plus "==" or "=" when the
 * variant pads). The decoder checks everything the encoder would never
 * produce; see base64.h for the list.
 */
#include "base64.h"

#include "check.h"
#include "err.h"

#include <stdbool.h>
#include <stdint.h>

static const char base64_alphabet_standard[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char base64_alphabet_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static const char *base64_alphabet(enum base64_variant variant) {
    return variant == BASE64_URL ? base64_alphabet_url : base64_alphabet_standard;
}

static bool base64_padded(enum base64_variant variant) {
    return variant == BASE64_STANDARD;
}

/* The 6-bit value of one character in the variant's alphabet, or -1. */
static int base64_value(enum base64_variant variant, unsigned char character) {
    if (character >= 'A' && character <= 'Z') return character - 'A';
    if (character >= 'a' && character <= 'z') return character - 'a' + 26;
    if (character >= '0' && character <= '9') return character - '0' + 52;
    if (variant == BASE64_URL) {
        if (character == '-') return 62;
        if (character == '_') return 63;
    } else {
        if (character == '+') return 62;
        if (character == '/') return 63;
    }
    return -1;
}

size_t base64_encoded_length(enum base64_variant variant, size_t byte_count) {
    CHECK(byte_count <= SIZE_MAX / 2);
    size_t groups = byte_count / 3;
    size_t rest = byte_count % 3;
    if (base64_padded(variant)) return (groups + (rest != 0)) * 4;
    return groups * 4 + (rest == 0 ? 0 : rest + 1);
}

size_t base64_decoded_length_max(size_t character_count) {
    return character_count / 4 * 3 + (character_count % 4 == 0 ? 0 : 2);
}

int base64_encode(enum base64_variant variant, const void *data, size_t length, char *out,
                  size_t out_size, size_t *out_length) {
    CHECK(data != NULL || length == 0);
    CHECK(out != NULL);
    size_t needed = base64_encoded_length(variant, length);
    if (out_size < needed + 1) return ERR_LIMIT;
    const char *alphabet = base64_alphabet(variant);
    const uint8_t *bytes = data;
    size_t written = 0;
    size_t index = 0;
    for (; index + 3 <= length; index += 3) {
        uint32_t group = (uint32_t)bytes[index] << 16 | (uint32_t)bytes[index + 1] << 8 |
                         bytes[index + 2];
        out[written++] = alphabet[group >> 18 & 63];
        out[written++] = alphabet[group >> 12 & 63];
        out[written++] = alphabet[group >> 6 & 63];
        out[written++] = alphabet[group & 63];
    }
    size_t rest = length - index;
    if (rest > 0) {
        uint32_t group = (uint32_t)bytes[index] << 16;
        if (rest == 2) group |= (uint32_t)bytes[index + 1] << 8;
        out[written++] = alphabet[group >> 18 & 63];
        out[written++] = alphabet[group >> 12 & 63];
        if (rest == 2) out[written++] = alphabet[group >> 6 & 63];
        if (base64_padded(variant)) {
            if (rest == 1) out[written++] = '=';
            out[written++] = '=';
        }
    }
    CHECK(written == needed);
    out[written] = '\0';
    if (out_length != NULL) *out_length = written;
    return 0;
}

/* Strips the padding of a padded variant, checking it is exactly what the
 * encoder writes. Returns the number of data characters, or -1. */
static long base64_strip_padding(enum base64_variant variant, const char *text, size_t length) {
    if (!base64_padded(variant)) return (long)length;
    if (length % 4 != 0) return -1;
    size_t data_length = length;
    if (data_length > 0 && text[data_length - 1] == '=') data_length--;
    if (data_length > 0 && text[data_length - 1] == '=') data_length--;
    /* "xx==" pads a 1-byte group and "xxx=" a 2-byte one; a third "=" stays
     * among the data characters, where it is rejected as outside the alphabet. */
    return (long)data_length;
}

int base64_decode(enum base64_variant variant, const char *text, size_t length, void *out,
                  size_t out_size, size_t *out_length) {
    CHECK(text != NULL || length == 0);
    CHECK(out != NULL || out_size == 0);
    CHECK(out_length != NULL);
    if (length > (size_t)INT32_MAX) return ERR_LIMIT;
    long stripped = base64_strip_padding(variant, text, length);
    if (stripped < 0) return ERR_PARSE;
    size_t data_length = (size_t)stripped;
    size_t rest = data_length % 4;
    if (rest == 1) return ERR_PARSE;
    size_t needed = data_length / 4 * 3 + (rest == 0 ? 0 : rest - 1);
    if (needed > out_size) return ERR_LIMIT;
    uint8_t *bytes = out;
    size_t written = 0;
    uint32_t group = 0;
    for (size_t index = 0; index < data_length; index++) {
        int value = base64_value(variant, (unsigned char)text[index]);
        if (value < 0) return ERR_PARSE;
        group = group << 6 | (uint32_t)value;
        if (index % 4 == 3) {
            bytes[written++] = (uint8_t)(group >> 16);
            bytes[written++] = (uint8_t)(group >> 8);
            bytes[written++] = (uint8_t)group;
            group = 0;
        }
    }
    /* A final group of 2 characters carries 12 bits for 8, 3 carry 18 for
     * 16: the unused low bits must be zero or two texts would decode alike. */
    if (rest == 2) {
        if ((group & 0x0f) != 0) return ERR_PARSE;
        bytes[written++] = (uint8_t)(group >> 4);
    } else if (rest == 3) {
        if ((group & 0x03) != 0) return ERR_PARSE;
        bytes[written++] = (uint8_t)(group >> 10);
        bytes[written++] = (uint8_t)(group >> 2);
    }
    CHECK(written == needed);
    *out_length = written;
    return 0;
}
