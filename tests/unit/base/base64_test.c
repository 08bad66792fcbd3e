/* base64_test.c - proves the three base64 variants encode the RFC 4648
 * section 10 vectors, round-trip every length, and that decoding accepts
 * only the canonical spelling (no stray padding, whitespace, foreign
 * alphabet, impossible lengths or non-zero trailing bits). */
#include "../../../src/base/base64.h"
#include "../../../src/base/err.h"
#include "test.h"

#include <stdint.h>
#include <string.h>

static int decode_text(enum base64_variant variant, const char *text, char *out, size_t out_size,
                       size_t *out_length) {
    return base64_decode(variant, text, strlen(text), out, out_size, out_length);
}

TEST(base64_encodes_rfc4648_vectors) {
    static const char *const inputs[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const padded[] = {"",     "Zg==",     "Zm8=",    "Zm9v",
                                         "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const unpadded[] = {"",       "Zg",      "Zm8",     "Zm9v",
                                           "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t index = 0; index < 7; index++) {
        char out[16];
        size_t length = 0;
        size_t input_length = strlen(inputs[index]);
        EXPECT_EQ_INT(base64_encode(BASE64_STANDARD, inputs[index], input_length, out, sizeof out,
                                    &length),
                      0);
        EXPECT_STR(out, padded[index]);
        EXPECT_EQ_INT(length, base64_encoded_length(BASE64_STANDARD, input_length));
        EXPECT_EQ_INT(base64_encode(BASE64_URL, inputs[index], input_length, out, sizeof out,
                                    &length),
                      0);
        EXPECT_STR(out, unpadded[index]);
        EXPECT_EQ_INT(base64_encode(BASE64_STANDARD_UNPADDED, inputs[index], input_length, out,
                                    sizeof out, &length),
                      0);
        EXPECT_STR(out, unpadded[index]);
        char decoded[16];
        EXPECT_EQ_INT(decode_text(BASE64_STANDARD, padded[index], decoded, sizeof decoded, &length),
                      0);
        EXPECT_EQ_INT(length, input_length);
        EXPECT(memcmp(decoded, inputs[index], length) == 0);
        EXPECT_EQ_INT(decode_text(BASE64_URL, unpadded[index], decoded, sizeof decoded, &length),
                      0);
        EXPECT_EQ_INT(length, input_length);
        EXPECT(memcmp(decoded, inputs[index], length) == 0);
    }
}

TEST(base64_url_and_standard_alphabets_differ_only_in_two_characters) {
    const uint8_t bytes[] = {0xfb, 0xff};
    char out[8];
    EXPECT_EQ_INT(base64_encode(BASE64_URL, bytes, 2, out, sizeof out, NULL), 0);
    EXPECT_STR(out, "-_8");
    EXPECT_EQ_INT(base64_encode(BASE64_STANDARD_UNPADDED, bytes, 2, out, sizeof out, NULL), 0);
    EXPECT_STR(out, "+/8");
    char decoded[4];
    size_t length = 0;
    EXPECT_EQ_INT(decode_text(BASE64_URL, "+/8", decoded, sizeof decoded, &length), ERR_PARSE);
    EXPECT_EQ_INT(decode_text(BASE64_STANDARD_UNPADDED, "-_8", decoded, sizeof decoded, &length),
                  ERR_PARSE);
    EXPECT_EQ_INT(decode_text(BASE64_URL, "-_8", decoded, sizeof decoded, &length), 0);
    EXPECT(length == 2 && memcmp(decoded, bytes, 2) == 0);
}

TEST(base64_round_trips_every_length_and_byte_value) {
    uint8_t data[300];
    for (size_t index = 0; index < sizeof data; index++) data[index] = (uint8_t)(index * 7 + 3);
    enum base64_variant variants[] = {BASE64_URL, BASE64_STANDARD, BASE64_STANDARD_UNPADDED};
    for (size_t variant = 0; variant < 3; variant++) {
        for (size_t length = 0; length <= sizeof data; length++) {
            char text[512];
            size_t text_length = 0;
            EXPECT_EQ_INT(base64_encode(variants[variant], data, length, text, sizeof text,
                                        &text_length),
                          0);
            EXPECT(base64_decoded_length_max(text_length) >= length);
            uint8_t back[300];
            size_t back_length = 0;
            EXPECT_EQ_INT(base64_decode(variants[variant], text, text_length, back, sizeof back,
                                        &back_length),
                          0);
            EXPECT_EQ_INT(back_length, length);
            EXPECT(memcmp(back, data, length) == 0);
        }
    }
}

TEST(base64_rejects_non_canonical_text) {
    char out[32];
    size_t length = 0;
    static const char *const bad_url[] = {
        "Zg==",  /* padding in an unpadded variant */
        "Zg=",   /* partial padding */
        "Z",     /* 4k+1 characters: no encoding has this length */
        "Zm9vY", /* likewise */
        "Zh",    /* 0x66 with non-zero unused bits ("Zg" is canonical) */
        "Zm9",   /* "fo" would be Zm8: unused bits set */
        "Zm 9v", /* whitespace */
        "Zm9v\n", "Zm9v\r\n", " Zm9v",
        "Zm9+",  /* standard alphabet in url */
        "Zm9/", "Zm\x80v", "Zm.v", "Zm9v=",
    };
    for (size_t index = 0; index < sizeof bad_url / sizeof bad_url[0]; index++) {
        EXPECT_EQ_INT(decode_text(BASE64_URL, bad_url[index], out, sizeof out, &length), ERR_PARSE);
    }
    static const char *const bad_padded[] = {
        "Zg",   "Zg=",   "Zg===", "Z===", "====", "Zm9vYg=", "Zh==", "Zm9=",
        "Zg==Zg==", /* padding in the middle */
        "Zm=v", "Zm9v\n",
    };
    for (size_t index = 0; index < sizeof bad_padded / sizeof bad_padded[0]; index++) {
        EXPECT_EQ_INT(decode_text(BASE64_STANDARD, bad_padded[index], out, sizeof out, &length),
                      ERR_PARSE);
    }
    /* An embedded NUL is a character outside the alphabet, not an end. */
    EXPECT_EQ_INT(base64_decode(BASE64_URL, "Zm\0v", 4, out, sizeof out, &length), ERR_PARSE);
}

TEST(base64_reports_small_output_buffers) {
    char out[4];
    EXPECT_EQ_INT(base64_encode(BASE64_URL, "foo", 3, out, sizeof out, NULL), ERR_LIMIT);
    char exact[5];
    EXPECT_EQ_INT(base64_encode(BASE64_URL, "foo", 3, exact, sizeof exact, NULL), 0);
    EXPECT_STR(exact, "Zm9v");
    size_t length = 0;
    char decoded[8];
    EXPECT_EQ_INT(decode_text(BASE64_URL, "Zm9vYmFy", decoded, 5, &length), ERR_LIMIT);
    EXPECT_EQ_INT(decode_text(BASE64_URL, "Zm9vYmE", decoded, 5, &length), 0);
    EXPECT_EQ_INT(length, 5);
    EXPECT_EQ_INT(decode_text(BASE64_URL, "", out, 0, &length), 0);
    EXPECT_EQ_INT(length, 0);
}
