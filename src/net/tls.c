/*
 * tls.c - mbedtls glue: certificate loading, per-session memory BIOs, and the
 * handshake/read/write loop. TLS 1.2 and 1.3 are both enabled (mbedtls' own
 * defaults); PSA crypto is initialised once, as mbedtls 3.6 requires for 1.3.
 */
#include "tls.h"

#include "../base/check.h"
#include "../base/err.h"

#include <mbedtls/error.h>
#include <psa/crypto.h>
#include <string.h>

/* Ciphertext received and not yet decrypted. A TLS record is at most ~16.7 KiB;
 * the transport decrypts after every read, so a few records of slack is plenty. */
#define TLS_INPUT_LIMIT (256u * 1024)

/* Ciphertext of one response waiting to be handed to the socket: a response body
 * is bounded by the HTTP layer (64 MiB), plus per-record overhead. */
#define TLS_OUTPUT_LIMIT (80u * 1024 * 1024)

static int tls_psa_ready = 0; /* psa_crypto_init() succeeded once */

static void tls_error_text(int code, char *error, size_t error_size) {
    char text[160];
    mbedtls_strerror(code, text, sizeof text);
    snprintf(error + strlen(error), error_size - strlen(error), ": %s (-0x%04x)", text,
             (unsigned)-code);
}

/* PSA crypto must be initialised once before any TLS 1.3 handshake (mbedtls 3.6). */
static int tls_psa_init(char *error, size_t error_size) {
    if (tls_psa_ready) return 0;
    if (psa_crypto_init() != PSA_SUCCESS) {
        snprintf(error, error_size, "PSA crypto initialisation failed");
        return ERR_TLS;
    }
    tls_psa_ready = 1;
    return 0;
}

int tls_server_config_init(struct tls_server_config *config, const char *certificate_path,
                           const char *key_path, char *error, size_t error_size) {
    error[0] = '\0';
    if (tls_psa_init(error, error_size) != 0) return ERR_TLS;
    mbedtls_ssl_config_init(&config->ssl_config);
    mbedtls_x509_crt_init(&config->certificate);
    mbedtls_pk_init(&config->private_key);
    mbedtls_entropy_init(&config->entropy);
    mbedtls_ctr_drbg_init(&config->drbg);
    int rc = mbedtls_ctr_drbg_seed(&config->drbg, mbedtls_entropy_func, &config->entropy,
                                   (const unsigned char *)"docket", 6);
    if (rc != 0) {
        snprintf(error, error_size, "cannot seed the random generator");
        goto fail;
    }
    rc = mbedtls_x509_crt_parse_file(&config->certificate, certificate_path);
    if (rc != 0) {
        snprintf(error, error_size, "cannot load certificate '%s'", certificate_path);
        goto fail;
    }
    rc = mbedtls_pk_parse_keyfile(&config->private_key, key_path, NULL, mbedtls_ctr_drbg_random,
                                  &config->drbg);
    if (rc != 0) {
        snprintf(error, error_size, "cannot load private key '%s'", key_path);
        goto fail;
    }
    rc = mbedtls_pk_check_pair(&config->certificate.pk, &config->private_key,
                               mbedtls_ctr_drbg_random, &config->drbg);
    if (rc != 0) {
        snprintf(error, error_size, "certificate '%s' and key '%s' do not match",
                 certificate_path, key_path);
        goto fail;
    }
    rc = mbedtls_ssl_config_defaults(&config->ssl_config, MBEDTLS_SSL_IS_SERVER,
                                     MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc != 0) {
        snprintf(error, error_size, "cannot set TLS defaults");
        goto fail;
    }
    mbedtls_ssl_conf_rng(&config->ssl_config, mbedtls_ctr_drbg_random, &config->drbg);
    mbedtls_ssl_conf_min_tls_version(&config->ssl_config, MBEDTLS_SSL_VERSION_TLS1_2);
    rc = mbedtls_ssl_conf_own_cert(&config->ssl_config, &config->certificate,
                                   &config->private_key);
    if (rc != 0) {
        snprintf(error, error_size, "cannot use the certificate and key");
        goto fail;
    }
    return 0;
fail:
    tls_error_text(rc, error, error_size);
    tls_server_config_free(config);
    return ERR_TLS;
}

void tls_server_config_free(struct tls_server_config *config) {
    mbedtls_ssl_config_free(&config->ssl_config);
    mbedtls_x509_crt_free(&config->certificate);
    mbedtls_pk_free(&config->private_key);
    mbedtls_ctr_drbg_free(&config->drbg);
    mbedtls_entropy_free(&config->entropy);
}

static int tls_bio_send(void *context, const unsigned char *data, size_t length) {
    struct tls_session *session = context;
    int rc = buf_append(&session->out, data, length);
    if (rc != 0) {
        /* mbedtls would retry a WANT_WRITE forever; remember the failure so the
         * read and write calls report it instead of stalling. */
        session->out_error = rc;
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    }
    return (int)length;
}

static int tls_bio_recv(void *context, unsigned char *data, size_t length) {
    struct tls_session *session = context;
    size_t available = session->in.length - session->in_offset;
    if (available == 0) return MBEDTLS_ERR_SSL_WANT_READ;
    if (length > available) length = available;
    memcpy(data, session->in.data + session->in_offset, length);
    session->in_offset += length;
    if (session->in_offset == session->in.length) {
        buf_reset(&session->in);
        session->in_offset = 0;
    }
    return (int)length;
}

int tls_session_init(struct tls_session *session, struct tls_server_config *config) {
    memset(session, 0, sizeof *session);
    buf_init(&session->in, TLS_INPUT_LIMIT);
    buf_init(&session->out, TLS_OUTPUT_LIMIT);
    mbedtls_ssl_init(&session->ssl);
    if (mbedtls_ssl_setup(&session->ssl, &config->ssl_config) != 0) {
        tls_session_free(session);
        return ERR_TLS;
    }
    mbedtls_ssl_set_bio(&session->ssl, session, tls_bio_send, tls_bio_recv, NULL);
    return 0;
}

void tls_session_free(struct tls_session *session) {
    mbedtls_ssl_free(&session->ssl);
    buf_free(&session->in);
    buf_free(&session->out);
}

int tls_session_feed(struct tls_session *session, const char *data, size_t length) {
    if (session->in_offset > 0) {
        buf_consume(&session->in, session->in_offset);
        session->in_offset = 0;
    }
    return buf_append(&session->in, data, length);
}

int tls_session_read(struct tls_session *session, char *plain, size_t plain_size) {
    CHECK(plain_size > 0);
    if (session->peer_closed) return ERR_CLOSED;
    if (session->out_error != 0) return session->out_error;
    if (!session->handshake_done) {
        int rc = mbedtls_ssl_handshake(&session->ssl);
        if (session->out_error != 0) return session->out_error;
        if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return 0;
        if (rc != 0) {
            session->last_error = rc;
            return ERR_TLS;
        }
        session->handshake_done = 1;
    }
    for (;;) {
        int rc = mbedtls_ssl_read(&session->ssl, (unsigned char *)plain, plain_size);
        if (rc > 0) return rc;
        if (session->out_error != 0) return session->out_error;
        if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return 0;
        /* TLS 1.3 post-handshake messages: keep reading. */
        if (rc == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) continue;
        if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || rc == 0) {
            session->peer_closed = 1;
            return ERR_CLOSED;
        }
        session->last_error = rc;
        return ERR_TLS;
    }
}

int tls_session_write(struct tls_session *session, const char *plain, size_t length) {
    size_t written = 0;
    while (written < length) {
        int rc = mbedtls_ssl_write(&session->ssl, (const unsigned char *)plain + written,
                                   length - written);
        if (rc < 0) {
            session->last_error = rc;
            if (session->out_error != 0) return session->out_error;
            return rc == MBEDTLS_ERR_SSL_WANT_WRITE ? ERR_LIMIT : ERR_TLS;
        }
        written += (size_t)rc;
    }
    return 0;
}

void tls_session_close(struct tls_session *session) {
    mbedtls_ssl_close_notify(&session->ssl);
}

/* ---- Client side ------------------------------------------------------ */

/* Parses the PEM bundle into config->trusted. A system bundle may hold a few
 * certificates mbedtls cannot parse (it then returns how many); that is fine as
 * long as at least one CA was loaded. */
static int tls_client_load_trust(struct tls_client_config *config, const char *ca_file,
                                 char *error, size_t error_size) {
    const char *path = ca_file;
    if (path == NULL || path[0] == '\0') {
        static const char *const system_files[] = TLS_SYSTEM_CA_FILES;
        path = NULL;
        for (size_t index = 0; index < sizeof system_files / sizeof system_files[0]; index++) {
            FILE *file = fopen(system_files[index], "rb");
            if (file == NULL) continue;
            fclose(file);
            path = system_files[index];
            break;
        }
        if (path == NULL) {
            snprintf(error, error_size,
                     "no system CA bundle found (set notify.ca_file to a PEM bundle)");
            return ERR_NOTFOUND;
        }
    }
    int rc = mbedtls_x509_crt_parse_file(&config->trusted, path);
    if (rc == MBEDTLS_ERR_PK_FILE_IO_ERROR || rc == MBEDTLS_ERR_X509_FILE_IO_ERROR) {
        snprintf(error, error_size, "cannot read CA bundle '%s'", path);
        return ERR_NOTFOUND;
    }
    if (rc < 0 || config->trusted.version == 0) {
        snprintf(error, error_size, "no usable CA certificate in '%s'", path);
        if (rc < 0) tls_error_text(rc, error, error_size);
        return ERR_TLS;
    }
    return 0;
}

int tls_client_config_init(struct tls_client_config *config, const char *ca_file, char *error,
                           size_t error_size) {
    CHECK(config != NULL && error != NULL && error_size > 0);
    error[0] = '\0';
    if (tls_psa_init(error, error_size) != 0) return ERR_TLS;
    mbedtls_ssl_config_init(&config->ssl_config);
    mbedtls_x509_crt_init(&config->trusted);
    mbedtls_entropy_init(&config->entropy);
    mbedtls_ctr_drbg_init(&config->drbg);
    int status = tls_client_load_trust(config, ca_file, error, error_size);
    if (status != 0) goto fail;
    status = ERR_TLS;
    int rc = mbedtls_ctr_drbg_seed(&config->drbg, mbedtls_entropy_func, &config->entropy,
                                   (const unsigned char *)"docket-client", 13);
    if (rc != 0) {
        snprintf(error, error_size, "cannot seed the random generator");
        tls_error_text(rc, error, error_size);
        goto fail;
    }
    rc = mbedtls_ssl_config_defaults(&config->ssl_config, MBEDTLS_SSL_IS_CLIENT,
                                     MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc != 0) {
        snprintf(error, error_size, "cannot set TLS client defaults");
        tls_error_text(rc, error, error_size);
        goto fail;
    }
    mbedtls_ssl_conf_rng(&config->ssl_config, mbedtls_ctr_drbg_random, &config->drbg);
    mbedtls_ssl_conf_min_tls_version(&config->ssl_config, MBEDTLS_SSL_VERSION_TLS1_2);
    mbedtls_ssl_conf_authmode(&config->ssl_config, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&config->ssl_config, &config->trusted, NULL);
    return 0;
fail:
    tls_client_config_free(config);
    return status;
}

void tls_client_config_free(struct tls_client_config *config) {
    mbedtls_ssl_config_free(&config->ssl_config);
    mbedtls_x509_crt_free(&config->trusted);
    mbedtls_ctr_drbg_free(&config->drbg);
    mbedtls_entropy_free(&config->entropy);
}

int tls_client_session_init(struct tls_session *session, struct tls_client_config *config,
                            const char *host_name) {
    CHECK(host_name != NULL && host_name[0] != '\0');
    memset(session, 0, sizeof *session);
    buf_init(&session->in, TLS_INPUT_LIMIT);
    buf_init(&session->out, TLS_OUTPUT_LIMIT);
    mbedtls_ssl_init(&session->ssl);
    int rc = mbedtls_ssl_setup(&session->ssl, &config->ssl_config);
    if (rc == 0) rc = mbedtls_ssl_set_hostname(&session->ssl, host_name);
    if (rc != 0) {
        tls_session_free(session);
        return rc == MBEDTLS_ERR_SSL_ALLOC_FAILED ? ERR_NOMEM : ERR_TLS;
    }
    mbedtls_ssl_set_bio(&session->ssl, session, tls_bio_send, tls_bio_recv, NULL);
    return 0;
}

void tls_session_describe_error(const struct tls_session *session, char *error,
                                size_t error_size) {
    CHECK(error_size > 0);
    error[0] = '\0';
    uint32_t flags = mbedtls_ssl_get_verify_result(&session->ssl);
    if (session->last_error == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && flags != 0 &&
        flags != (uint32_t)-1) {
        char reasons[256];
        int length = mbedtls_x509_crt_verify_info(reasons, sizeof reasons, "", flags);
        /* One reason per line; keep the sentence on one line. */
        for (int index = 0; index < length; index++) {
            if (reasons[index] == '\n') reasons[index] = index + 1 == length ? '\0' : ';';
        }
        snprintf(error, error_size, "certificate rejected: %s", length > 0 ? reasons : "?");
        return;
    }
    if (session->last_error == 0) {
        snprintf(error, error_size, "TLS failure");
        return;
    }
    char text[160];
    mbedtls_strerror(session->last_error, text, sizeof text);
    snprintf(error, error_size, "%s (-0x%04x)", text, (unsigned)-session->last_error);
}
