/*
 * tls.h - TLS sessions over memory buffers, on mbedtls.
 *
 * The transport reads ciphertext from the socket and hands it to
 * tls_session_feed(); plaintext comes out of tls_session_read(). Plaintext to
 * send goes into tls_session_write(), and the ciphertext to put on the wire
 * accumulates in `session->out`, which the transport drains. No socket is ever
 * touched here, so the module works with any event loop and in tests.
 */
#ifndef DOCKET_NET_TLS_H
#define DOCKET_NET_TLS_H

#include "../base/buf.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stddef.h>

struct tls_server_config {
    mbedtls_ssl_config ssl_config;   /* shared by every session */
    mbedtls_x509_crt certificate;    /* the chain presented to clients */
    mbedtls_pk_context private_key;  /* key for certificate */
    mbedtls_entropy_context entropy; /* OS entropy source */
    mbedtls_ctr_drbg_context drbg;   /* random generator seeded from entropy */
};

struct tls_session {
    mbedtls_ssl_context ssl; /* the connection state */
    struct buf in;           /* ciphertext received and not yet consumed */
    size_t in_offset;        /* bytes of `in` already consumed */
    struct buf out;          /* ciphertext waiting to be written to the socket */
    int handshake_done;      /* the handshake completed */
    int peer_closed;         /* the peer sent close_notify */
    int last_error;          /* the last mbedtls failure code, for messages (0: none) */
    int out_error;           /* appending to `out` failed (ERR_NOMEM, ERR_LIMIT): fatal */
};

/* The client side: whom outbound connections trust. */
struct tls_client_config {
    mbedtls_ssl_config ssl_config;   /* shared by every client session */
    mbedtls_x509_crt trusted;        /* CA certificates that may sign a server's chain */
    mbedtls_entropy_context entropy; /* OS entropy source */
    mbedtls_ctr_drbg_context drbg;   /* random generator seeded from entropy */
};

/* CA bundles tried in order when no CA file is configured (Debian/Ubuntu/Alpine,
 * RHEL/Fedora, OpenSUSE, macOS/BSD/OpenSSL default). */
#define TLS_SYSTEM_CA_FILES                                                               \
    {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",          \
     "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem", "/etc/pki/tls/cacert.pem"}

/* Loads a PEM certificate chain and key. On failure `error` holds a sentence. */
int tls_server_config_init(struct tls_server_config *config, const char *certificate_path,
                           const char *key_path, char *error, size_t error_size);
void tls_server_config_free(struct tls_server_config *config);

int tls_session_init(struct tls_session *session, struct tls_server_config *config);

/* A client configuration that verifies servers (MBEDTLS_SSL_VERIFY_REQUIRED, TLS 1.2
 * or later) against the PEM bundle `ca_file`, or the first system bundle of
 * TLS_SYSTEM_CA_FILES that exists when `ca_file` is NULL or "". Returns 0,
 * ERR_NOTFOUND (no bundle), ERR_TLS (nothing usable in it); `error` gets a sentence. */
int tls_client_config_init(struct tls_client_config *config, const char *ca_file, char *error,
                           size_t error_size);
void tls_client_config_free(struct tls_client_config *config);

/* A client session for `host_name`, which is sent as SNI and must match the
 * server certificate (a DNS name, or an IP address in the subjectAltName). The
 * handshake runs inside tls_session_read(), as for servers; the first call
 * sends the ClientHello. */
int tls_client_session_init(struct tls_session *session, struct tls_client_config *config,
                            const char *host_name);

/* Writes a sentence on why the session failed (the certificate check, or the
 * mbedtls error) into `error`. */
void tls_session_describe_error(const struct tls_session *session, char *error,
                                size_t error_size);
void tls_session_free(struct tls_session *session);

/* Adds received ciphertext (bounded; ERR_LIMIT if the peer floods). */
int tls_session_feed(struct tls_session *session, const char *data, size_t length);

/* Advances the handshake and decrypts. Returns the plaintext byte count
 * (> 0), 0 when more ciphertext is needed, or a negative code (ERR_TLS,
 * ERR_CLOSED after close_notify). Ciphertext to send may appear in `out`
 * even when 0 is returned (handshake messages). */
int tls_session_read(struct tls_session *session, char *plain, size_t plain_size);

/* Encrypts plaintext into `out`. Returns 0 or a negative code. */
int tls_session_write(struct tls_session *session, const char *plain, size_t length);

/* Queues close_notify into `out`. */
void tls_session_close(struct tls_session *session);

#endif
