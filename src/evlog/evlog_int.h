/*
 * evlog_int.h - the event log's private structures, shared by evlog.c (open,
 * recovery, topics), commit.c (appends and group commit), cursor.c (reads)
 * and consumer.c (named offsets and retention). Not for use outside
 * src/evlog/.
 */
#ifndef DOCKET_EVLOG_EVLOG_INT_H
#define DOCKET_EVLOG_EVLOG_INT_H

#include "evlog.h"
#include "segment.h"

/* An accepted append waiting for its batch to become durable. */
struct pending_record {
    int64_t offset;                 /* offset assigned */
    int64_t timestamp_ns;           /* timestamp assigned */
    uint32_t batch_position;        /* byte position of its frame in the batch */
    evlog_append_callback callback; /* told the outcome */
    void *arg;                      /* for callback */
};

/* Framed records written by one commit job. */
struct batch {
    uint8_t *data;                  /* concatenated frames (owned) */
    size_t length;                  /* bytes in use */
    size_t capacity;                /* bytes allocated, <= LIMIT_EVLOG_PENDING_BYTES */
    struct pending_record *records; /* one per frame, in offset order (owned) */
    size_t count;                   /* records in use */
    size_t record_capacity;         /* allocated, <= LIMIT_EVLOG_PENDING_RECORDS */
};

enum job_kind {
    JOB_COMMIT, /* write a batch (rolling first if needed) and fdatasync it */
    JOB_REPAIR, /* truncate the active segment back to its durable length */
};

/* The one job a topic may have on the executor. The loop thread fills the
 * inputs, the worker only reads them and fills the outputs, and the loop
 * thread reads the outputs in the done callback. */
struct job {
    struct evlog_topic *topic;   /* owner */
    enum job_kind kind;          /* what work() does */
    struct batch *batch;         /* COMMIT: the batch written */
    int fd;                      /* segment written or repaired (-1: the new one) */
    int64_t position;            /* COMMIT: where the batch goes; REPAIR: length to keep */
    int roll;                    /* COMMIT: create a new segment first */
    int64_t roll_base;           /* base offset of that segment (REPAIR: the active one) */
    struct segment *new_segment; /* COMMIT with roll: preallocated, owned until pushed */
    uint8_t *index_data;         /* index of the segment being sealed (owned), or NULL */
    size_t index_bytes;          /* length of index_data */
    int64_t sealed_base;         /* base offset of the segment being sealed */
    int64_t deleted_bases[LIMIT_EVLOG_RETENTION_SEGMENTS_PER_ROLL]; /* retention victims */
    size_t deleted_count;                                           /* entries of deleted_bases */
    int reopen;              /* REPAIR: open the segment again (after an fsync error) */
    int64_t orphan_base;     /* REPAIR: half-created segment to remove, -1 none */
    int new_fd;              /* out: descriptor of a created or reopened segment, -1 */
    int rolled;              /* out: the new segment exists durably */
    int status;              /* out: 0 or the first error */
    int sync_failed;         /* out: the error came from fdatasync */
    const char *failed_step; /* out: which operation failed, for the log line */
    int syncs;               /* out: fdatasync calls made on segment files */
};

enum topic_state {
    TOPIC_WRITABLE,  /* appends accepted */
    TOPIC_REPAIRING, /* a repair job runs; appends refused */
    TOPIC_BROKEN,    /* repair failed; retried after LIMIT_EVLOG_RETRY_MS */
    TOPIC_COOLING,   /* repaired; appends accepted again LIMIT_EVLOG_RETRY_MS after failure */
};

/* An in-process consumer to wake. */
struct subscriber {
    evlog_wake_callback callback; /* called with the new end offset */
    void *arg;                    /* for callback */
};

/* A named consumer's stored position. */
struct consumer {
    char name[LIMIT_EVLOG_CONSUMER_NAME_BYTES + 1]; /* NUL-terminated */
    int64_t offset;                                 /* next offset to consume */
    int required;                                   /* holds retention back */
};

struct evlog_topic {
    struct evlog *log;                           /* owner */
    char name[LIMIT_EVLOG_TOPIC_NAME_BYTES + 1]; /* directory name */
    char path[LIMIT_EVLOG_PATH_BYTES];           /* <log dir>/<name> */
    struct segment **segments;                   /* ascending base offsets (owned) */
    size_t segment_count;                        /* in use; the last is active */
    size_t segment_capacity;                     /* allocated */
    int64_t next_offset;                         /* offset the next append gets */
    int64_t last_timestamp_ns;                   /* timestamp of the last append */
    struct batch batches[2];                     /* storage for pending and committing */
    struct batch *pending;                       /* appends waiting for the next job */
    struct batch *committing;                    /* the batch of the running job */
    int job_running;                             /* job is on the executor or completing */
    struct job job;                              /* the running job */
    enum topic_state state;                      /* write health */
    int error;                                   /* last write error while not writable */
    int64_t failed_ms;                           /* monotonic ms of that failure */
    int sync_failed;                             /* that failure was an fdatasync */
    int64_t orphan_base;                         /* half-created segment, -1 none */
    struct subscriber subscribers[LIMIT_EVLOG_SUBSCRIBERS]; /* woken on new durable data */
    size_t subscriber_count;                                /* in use */
    struct consumer consumers[LIMIT_EVLOG_CONSUMERS];       /* named offsets */
    size_t consumer_count;                                  /* in use */
};

struct evlog {
    char directory[LIMIT_EVLOG_PATH_BYTES];         /* the log directory */
    struct evlog_io *io;                            /* file operations */
    struct evlog_executor *executor;                /* runs jobs */
    struct clock *clock;                            /* time source */
    int64_t segment_bytes_max;                      /* roll size */
    int64_t segment_age_ms_max;                     /* roll age */
    int64_t retention_bytes_max;                    /* 0 = unlimited */
    int64_t retention_age_ms_max;                   /* 0 = unlimited */
    int read_only;                                  /* inspection mode */
    int repair;                                     /* cut corruption instead of failing */
    int lock_handle;                                /* io->lock handle, -1 when read-only */
    struct evlog_topic *topics[LIMIT_EVLOG_TOPICS]; /* open topics (owned) */
    size_t topic_count;                             /* in use */
    struct evlog_stats stats;                       /* counters */
};

/* evlog.c */
struct segment *topic_active_segment(const struct evlog_topic *topic);
/* Ensures room for one more segment, so a later push cannot fail. */
int topic_segment_reserve(struct evlog_topic *topic);
int topic_segment_push(struct evlog_topic *topic, struct segment *seg);
void topic_segments_drop_front(struct evlog_topic *topic, size_t count);
void evlog_error_set(struct evlog_error *error, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* commit.c */
void commit_topic_free(struct evlog_topic *topic);

/* consumer.c */
int consumer_load(struct evlog_topic *topic);
int64_t consumer_required_offset(const struct evlog_topic *topic);
size_t consumer_retention_victims(const struct evlog_topic *topic, int64_t now_ns,
                                  int64_t incoming_bytes, int64_t *bases_out, size_t capacity);

#endif
