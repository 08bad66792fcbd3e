/*
 * base64.h - strict base64 (RFC 4648) in the three spellings Docket needs.
 *
 * JWTs use base64url without padding (RFC 7515 section 2), PHC password
 * strings use the standard alphabet without padding, and the standard padded
 * form is there for everything else. Decoding is strict, because both users
 * of this module compare or sign the encoded text: exactly one spelling of
 * every byte string is accepted. Rejected are characters outside the
 * variant's alphabet (whitespace and line breaks included), padding where the
 * variant has none (and missing or misplaced padding where it has some), a
 * length that no encoding produces (4k+1 characters), and non-zero unused
 * bits in the last character ("QR" instead of "QQ" for the byte 0x41).
 *
 * mbedtls/base64.h is not used: it knows only the padded standard alphabet,
 * skips spaces and line breaks, and ignores the trailing bits.
 */
#ifndef DOCKET_BASE_BASE64_H
#define DOCKET_BASE_BASE64_H

#include <stddef.h>

enum base64_variant {
    BASE64_URL,              /* RFC 4648 section 5 alphabet ("-_"), no padding */
    BASE64_STANDARD,         /* RFC 4648 section 4 alphabet ("+/"), "=" padding */
    BASE64_STANDARD_UNPADDED /* section 4 alphabet, no padding (PHC strings) */
};

/* Characters that encoding `byte_count` bytes produces (excluding the NUL). */
size_t base64_encoded_length(enum base64_variant variant, size_t byte_count);

/* Upper bound on the bytes that decoding `character_count` characters yields. */
size_t base64_decoded_length_max(size_t character_count);

/* Encodes `length` bytes into `out` and NUL-terminates it; `*out_length` (may
 * be NULL) receives the characters written. ERR_LIMIT when `out_size` cannot
 * hold base64_encoded_length() + 1 bytes (nothing is written then). */
int base64_encode(enum base64_variant variant, const void *data, size_t length, char *out,
                  size_t out_size, size_t *out_length);

/* Decodes `length` characters of `text` into `out`; `*out_length` receives the
 * bytes written. ERR_PARSE for any text that is not the canonical encoding
 * of some byte string in this variant, ERR_LIMIT when `out_size` is too small.
 * On error the contents of `out` are unspecified. */
int base64_decode(enum base64_variant variant, const char *text, size_t length, void *out,
                  size_t out_size, size_t *out_length);

#endif
