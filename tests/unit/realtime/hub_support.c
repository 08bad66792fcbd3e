/*
 * hub_support.c - see hub_support.h.
 */
#include "hub_support.h"

#include "../../../src/base/check.h"
#include "../../../src/base/err.h"
#include "../../../src/base/logger.h"
#include "../../../src/base/mem.h"

#include <yyjson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_PREFIX "{\"type\":\"event\",\"event\":"

/* ---- source ------------------------------------------------------------ */

void fake_source_init(struct fake_source *source) {
    memset(source, 0, sizeof *source);
    for (int user = 0; user < FAKE_USERS; user++) {
        snprintf(source->users[user].id, UUID_STRING_BYTES, "0190a1b2-c3d4-7e5f-8a6b-%012d",
                 user + 1);
    }
}

void fake_source_free(struct fake_source *source) {
    for (int user = 0; user < FAKE_USERS; user++) {
        for (int64_t index = 0; index < source->users[user].count; index++) {
            mem_free(source->users[user].events[index]);
        }
    }
}

int64_t fake_source_build(struct fake_source *source, int user) {
    struct fake_user *owner = &source->users[user];
    CHECK(owner->count < FAKE_EVENTS);
    int64_t sequence = owner->count + 1;
    struct event_envelope envelope;
    memset(&envelope, 0, sizeof envelope);
    snprintf(envelope.id, sizeof envelope.id, "0190a1b2-c3d4-7e5f-%04d-%012lld", user + 1,
             (long long)sequence);
    snprintf(envelope.type, sizeof envelope.type, "task.created");
    envelope.time_ns = INT64_C(1770716700123000000) + sequence * 1000000;
    snprintf(envelope.subject, sizeof envelope.subject, "0190a1b2-c3d4-7e5f-9a6b-%012lld",
             (long long)sequence);
    memcpy(envelope.user_id, owner->id, UUID_STRING_BYTES);
    envelope.sequence = sequence;
    memcpy(envelope.correlation_id, envelope.id, UUID_STRING_BYTES);
    memcpy(envelope.actor, owner->id, UUID_STRING_BYTES);
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    CHECK(doc != NULL);
    yyjson_mut_val *data = yyjson_mut_obj(doc);
    yyjson_mut_obj_add_int(doc, data, "n", sequence);
    yyjson_mut_obj_add_str(doc, data, "title", "a task with \"quotes\" and \\ in it");
    size_t length = 0;
    char *text = event_to_json(&envelope, doc, data, &length);
    yyjson_mut_doc_free(doc);
    CHECK(text != NULL);
    owner->events[owner->count] = text;
    owner->lengths[owner->count] = length;
    owner->count++;
    return sequence;
}

static struct fake_user *fake_source_user(struct fake_source *source, const char *user_id) {
    for (int user = 0; user < FAKE_USERS; user++) {
        if (strcmp(source->users[user].id, user_id) == 0)
            return &source->users[user];
    }
    return NULL;
}

static int fake_source_read(void *arg, const char *user_id, int64_t after, size_t limit,
                            hub_event_each each, void *each_arg) {
    struct fake_source *source = arg;
    source->reads++;
    if (source->fail_read != 0)
        return source->fail_read;
    struct fake_user *owner = fake_source_user(source, user_id);
    if (owner == NULL)
        return 0;
    int passed = 0;
    for (int64_t sequence = after + 1; sequence <= owner->visible && (size_t)passed < limit;
         sequence++) {
        passed++;
        if (each(each_arg, sequence, owner->events[sequence - 1], owner->lengths[sequence - 1]))
            break;
    }
    return passed;
}

static int fake_source_last(void *arg, const char *user_id, int64_t *out) {
    struct fake_source *source = arg;
    if (source->fail_last != 0)
        return source->fail_last;
    struct fake_user *owner = fake_source_user(source, user_id);
    *out = owner != NULL ? owner->visible : 0;
    return 0;
}

struct hub_source fake_source_hub(struct fake_source *source) {
    return (struct hub_source){fake_source_read, fake_source_last, source};
}

/* ---- subscriber -------------------------------------------------------- */

static uint64_t fake_prng_next(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* Checks one event message against the source. */
static void fake_sub_event(struct fake_sub *sub, const char *text, size_t length) {
    sub->events++;
    yyjson_doc *doc = yyjson_read(text, length, 0);
    yyjson_val *event = yyjson_obj_get(yyjson_doc_get_root(doc), "event");
    int64_t sequence = yyjson_get_sint(yyjson_obj_get(event, "sequence"));
    const char *user_id = yyjson_get_str(yyjson_obj_get(event, "userid"));
    const struct fake_user *owner = &sub->source->users[sub->user];
    int good = doc != NULL && user_id != NULL && strcmp(user_id, owner->id) == 0 &&
               sequence == sub->expect_next && sequence >= 1 && sequence <= owner->count;
    if (good) {
        size_t event_length = owner->lengths[sequence - 1];
        good =
            length == sizeof FAKE_PREFIX - 1 + event_length + 1 &&
            memcmp(text + sizeof FAKE_PREFIX - 1, owner->events[sequence - 1], event_length) == 0 &&
            text[length - 1] == '}';
    }
    yyjson_doc_free(doc);
    if (!good) {
        if (sub->errors == 0) {
            fprintf(stderr, "    fake_sub user %d: expected %lld, got %lld (%.*s)\n", sub->user,
                    (long long)sub->expect_next, (long long)sequence,
                    (int)(length > 80 ? 80 : length), text);
        }
        sub->errors++;
    }
    sub->expect_next = sequence + 1;
}

static int fake_sub_refuses(struct fake_sub *sub) {
    if (sub->refuse_next > 0) {
        sub->refuse_next--;
        return 1;
    }
    if (sub->capacity != 0 && sub->queued >= sub->capacity)
        return 1;
    if (sub->refuse_mask != 0 && (fake_prng_next(sub->prng) & sub->refuse_mask) == 0)
        return 1;
    return 0;
}

static int fake_sub_send(void *arg, const char *text, size_t length) {
    struct fake_sub *sub = arg;
    CHECK(sub->handle != NULL); /* the hub never calls a detached subscriber */
    sub->sends++;
    if (sub->detach_other != NULL) {
        struct fake_sub *other = sub->detach_other;
        sub->detach_other = NULL;
        fake_sub_detach(other);
    }
    if (sub->fail_with != 0)
        return sub->fail_with;
    if (fake_sub_refuses(sub))
        return ERR_AGAIN;
    sub->queued++;
    if (length >= sizeof FAKE_PREFIX - 1 &&
        memcmp(text, FAKE_PREFIX, sizeof FAKE_PREFIX - 1) == 0) {
        fake_sub_event(sub, text, length);
    } else {
        sub->others++;
        snprintf(sub->last_other, sizeof sub->last_other, "%.*s", (int)length, text);
    }
    if (sub->detach_on_send) {
        sub->detach_on_send = 0;
        fake_sub_detach(sub);
    }
    return 0;
}

static void fake_sub_close(void *arg, uint16_t code, const char *reason) {
    struct fake_sub *sub = arg;
    CHECK(sub->handle != NULL);
    sub->closed++;
    sub->close_code = code;
    snprintf(sub->close_reason, sizeof sub->close_reason, "%s", reason);
    if (sub->detach_on_close)
        fake_sub_detach(sub);
}

const struct hub_subscriber_ops fake_sub_ops = {fake_sub_send, fake_sub_close};

void fake_sub_init(struct fake_sub *sub, struct fake_source *source, int user) {
    memset(sub, 0, sizeof *sub);
    sub->source = source;
    sub->user = user;
}

int fake_sub_attach(struct fake_sub *sub, struct hub *hub, int64_t since, uint64_t now_ms) {
    CHECK(sub->handle == NULL);
    const struct fake_user *owner = &sub->source->users[sub->user];
    sub->expect_next = (since < 0 ? owner->visible : since) + 1;
    int rc = hub_attach(hub, owner->id, since, &fake_sub_ops, sub, now_ms, &sub->handle);
    if (rc != 0)
        CHECK(sub->handle == NULL);
    return rc;
}

void fake_sub_detach(struct fake_sub *sub) {
    if (sub->handle == NULL)
        return;
    struct hub_subscriber *handle = sub->handle;
    sub->handle = NULL;
    hub_detach(handle);
}

void fake_sub_drain(struct fake_sub *sub, uint64_t now_ms) {
    sub->queued = 0;
    if (sub->handle != NULL)
        hub_writable(sub->handle, now_ms);
}

/* ---- environment ------------------------------------------------------- */

/* The hub tests read what the log holds; durability is the log's own
 * tests' business, and thousands of fdatasyncs would only make them slow. */
static int hub_env_sync(struct evlog_io *io, int fd) {
    (void)io;
    (void)fd;
    return 0;
}

static int hub_env_sync_directory(struct evlog_io *io, const char *path) {
    (void)io;
    (void)path;
    return 0;
}

int hub_env_open(struct hub_env *env, const char *tag, int64_t segment_bytes_max) {
    static struct evlog_io io;
    io = *evlog_io_posix();
    io.sync = hub_env_sync;
    io.sync_directory = hub_env_sync_directory;
    memset(env, 0, sizeof *env);
    env->root = support_directory(tag);
    int rc = support_open(&env->log, env->root, &io, segment_bytes_max);
    if (rc != 0)
        return rc;
    env->source = calloc(1, sizeof *env->source);
    CHECK(env->source != NULL);
    fake_source_init(env->source);
    env->now_ms = 1000;
    return 0;
}

int hub_env_open_hub(struct hub_env *env, const struct hub_options *options) {
    struct hub_options chosen = {
        .max_connections = 1000,
        .max_connections_per_user = 64,
        .stall_timeout_ms = 60000,
    };
    if (options != NULL)
        chosen = *options;
    chosen.topic = env->log.topic;
    chosen.source = fake_source_hub(env->source);
    env->options = chosen;
    return hub_open(&env->hub, &chosen);
}

void hub_env_close(struct hub_env *env) {
    hub_close(env->hub);
    env->hub = NULL;
    support_close(&env->log);
    support_remove_tree(env->root);
    if (env->source != NULL) {
        fake_source_free(env->source);
        free(env->source);
        env->source = NULL;
    }
}

static int hub_env_append_bytes(struct hub_env *env, const char *key, const char *value,
                                size_t value_bytes) {
    struct evlog_record record = {
        .key = (const uint8_t *)key,
        .key_bytes = strlen(key),
        .value = (const uint8_t *)value,
        .value_bytes = value_bytes,
    };
    struct support_ack ack;
    memset(&ack, 0, sizeof ack);
    int64_t offset = evlog_append(env->log.topic, &record, support_on_append, &ack);
    if (offset < 0)
        return (int)offset;
    support_executor_run(&env->log.executor);
    return ack.called == 1 ? ack.status : ERR_IO;
}

int64_t hub_env_publish(struct hub_env *env, int user) {
    int64_t sequence = fake_source_build(env->source, user);
    struct fake_user *owner = &env->source->users[user];
    int rc = hub_env_append_bytes(env, owner->id, owner->events[sequence - 1],
                                  owner->lengths[sequence - 1]);
    CHECK(rc == 0);
    owner->visible = sequence;
    return sequence;
}

int hub_env_append(struct hub_env *env, const char *key, const char *value) {
    return hub_env_append_bytes(env, key, value, strlen(value));
}

int hub_env_advance(struct hub_env *env) {
    return hub_advance(env->hub, evlog_topic_end_offset(env->log.topic), env->now_ms);
}
