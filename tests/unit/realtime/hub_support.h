/*
 * hub_support.h - fakes for the realtime hub tests: a source backed by an
 * in-memory array of CloudEvents per user (what the projection's event table
 * would hold), subscribers that check every message they get and can refuse
 * on demand, and an environment that appends the same events to a real
 * event log (manual executor) so hub_advance reads real records.
 */
#ifndef DOCKET_TEST_HUB_SUPPORT_H
#define DOCKET_TEST_HUB_SUPPORT_H

#include "../../../src/realtime/hub.h"
#include "../../../src/tasks/event.h"
#include "../evlog/evlog_support.h"

#include <stddef.h>
#include <stdint.h>

#define FAKE_USERS 4
#define FAKE_EVENTS 8192

/* One user's events, index i = sequence i + 1. */
struct fake_user {
    char id[UUID_STRING_BYTES];  /* user id (the record key) */
    char *events[FAKE_EVENTS];   /* CloudEvent JSON (mem_alloc'd) */
    size_t lengths[FAKE_EVENTS]; /* their bytes */
    int64_t count;               /* events built */
    int64_t visible;             /* events the source shows (applied); <= count */
};

struct fake_source {
    struct fake_user users[FAKE_USERS]; /* users 0..FAKE_USERS-1 */
    int fail_read;                      /* read returns this when non-zero */
    int fail_last;                      /* last_sequence returns this when non-zero */
    uint64_t reads;                     /* read calls */
};

void fake_source_init(struct fake_source *source);
void fake_source_free(struct fake_source *source);
/* Builds the user's next event (not yet visible); returns its sequence. */
int64_t fake_source_build(struct fake_source *source, int user);
struct hub_source fake_source_hub(struct fake_source *source);

/* A subscriber that checks each event message: exact bytes of the source's
 * event, its own user's, and exactly `expect_next`. */
struct fake_sub {
    struct hub_subscriber *handle; /* NULL when not attached */
    struct fake_source *source;    /* to compare messages against */
    int user;                      /* index of its user */
    int64_t expect_next;           /* the sequence its next event must have */
    int64_t events;                /* event messages received */
    int errors;                    /* wrong bytes, wrong user, gap or duplicate */
    int others;                    /* other messages (reminders) */
    char last_other[128];          /* the last of them */
    size_t queued;                 /* messages accepted since the last drain */
    size_t capacity;               /* refuse with ERR_AGAIN at this many queued; 0 = never */
    int refuse_next;               /* refuse this many sends regardless */
    uint64_t refuse_mask;          /* with a PRNG: refuse when (rand & mask) == 0; 0 = never */
    uint64_t *prng;                /* the PRNG state for refuse_mask */
    int fail_with;                 /* send returns this error when non-zero */
    int closed;                    /* close calls */
    uint16_t close_code;           /* the last close code */
    char close_reason[128];        /* its reason */
    int detach_on_send;            /* detach itself inside its next send */
    int detach_on_close;           /* detach itself inside close */
    struct fake_sub *detach_other; /* detach this one inside the next send */
    uint64_t sends;                /* send calls */
};

extern const struct hub_subscriber_ops fake_sub_ops;

void fake_sub_init(struct fake_sub *sub, struct fake_source *source, int user);
int fake_sub_attach(struct fake_sub *sub, struct hub *hub, int64_t since, uint64_t now_ms);
void fake_sub_detach(struct fake_sub *sub);
/* Empties its queue and tells the hub. */
void fake_sub_drain(struct fake_sub *sub, uint64_t now_ms);

/* Real log + fake source + hub. */
struct hub_env {
    struct support_log log;     /* topic "events" in a scratch directory */
    const char *root;           /* the scratch directory */
    struct fake_source *source; /* calloc'd (large) */
    struct hub *hub;            /* NULL until hub_env_open_hub */
    struct hub_options options; /* as the hub was opened */
    uint64_t now_ms;            /* fake time */
};

/* Opens the log (segment_bytes_max 0 = default) and the source. */
int hub_env_open(struct hub_env *env, const char *tag, int64_t segment_bytes_max);
/* Opens the hub with the defaults of the tests, adjusted by `options` when
 * not NULL (topic and source are always the environment's). */
int hub_env_open_hub(struct hub_env *env, const struct hub_options *options);
void hub_env_close(struct hub_env *env);

/* Builds the user's next event, appends it to the log (durable) and makes
 * it visible in the source, as an applied projection would. */
int64_t hub_env_publish(struct hub_env *env, int user);
/* Appends an arbitrary record (durable). */
int hub_env_append(struct hub_env *env, const char *key, const char *value);
/* hub_advance up to the log's end. */
int hub_env_advance(struct hub_env *env);

#endif
