/*
 * user_command.c - `docket user add|list|set-role|reset-password` and
 * `docket rebuild`: account administration and projection rebuilds from
 * the command line, on a stopped server's data directory.
 *
 * User changes are ordinary commands: they go through the same command layer
 * as the API (events appended durably to the log, then applied), with the
 * actor "cli", so they show in the audit trail like any other change. The
 * event log allows one writer; while a server runs on the data directory
 * these commands refuse with exit 1 and say so.
 */
#include "user_command.h"

#include "../auth/password.h"
#include "../base/err.h"
#include "../config/config.h"
#include "../base/logger.h"
#include "../base/mem.h"
#include "../evlog/evlog_uv.h"
#include "../store/db.h"
#include "../tasks/projection.h"
#include "../tasks/service.h"
#include "../tasks/timezone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

extern char **environ;

/* Everything a user command opens. */
struct cli_domain {
    struct config config;                  /* settings (--data-dir etc.) */
    int config_loaded;                     /* config needs freeing */
    uv_loop_t loop;                        /* runs the log's commits */
    int loop_ready;                        /* loop initialised */
    struct evlog_uv_executor *executor;    /* commits on the thread pool */
    struct evlog *evlog;                   /* the log */
    struct evlog_topic *events;            /* the "events" topic */
    struct db *db;                         /* projections */
    struct projection *projection;         /* applies the log */
    struct service *service;               /* commands */
};

/* The outcome of one command, filled by the done callback. */
struct cli_outcome {
    int finished;                          /* done was called */
    int status;                            /* HTTP-style status */
    char detail[256];                      /* problem detail */
    char field_message[256];               /* first field error */
};

static void cli_domain_close(struct cli_domain *domain) {
    service_close(domain->service);
    if (domain->loop_ready) {
        uv_run(&domain->loop, UV_RUN_DEFAULT);
        uv_loop_close(&domain->loop);
    }
    projection_close(domain->projection);
    if (domain->db != NULL) db_close(domain->db);
    if (domain->evlog != NULL) evlog_close(domain->evlog);
    mem_free(domain->executor);
    if (domain->config_loaded) config_free(&domain->config);
}

static int cli_load_config(struct config *config, int argc, char **argv) {
    if (config_init(config) != 0) return 1;
    struct config_error error = {{0}};
    if (config_load(config, argc, argv, environ, &error) != 0) {
        fprintf(stderr, "docket: %s\n", error.message[0] ? error.message : "invalid settings");
        config_free(config);
        return 2;
    }
    logger_set_level(LOGGER_WARN);
    return 0;
}

/* Opens log, database, projection and (with_service) the command layer.
 * Returns 0, or an exit code after printing why. */
static int cli_domain_open(struct cli_domain *domain, int argc, char **argv, int with_service) {
    memset(domain, 0, sizeof *domain);
    int exit_code = cli_load_config(&domain->config, argc, argv);
    if (exit_code != 0) return exit_code;
    domain->config_loaded = 1;
    uv_loop_init(&domain->loop);
    domain->loop_ready = 1;
    domain->executor = mem_calloc(1, sizeof *domain->executor);
    if (domain->executor == NULL) return 1;
    evlog_uv_executor_init(domain->executor, &domain->loop);
    char path[4200];
    snprintf(path, sizeof path, "%s/log", domain->config.data_dir);
    struct evlog_options options = {.directory = path, .executor = &domain->executor->base};
    struct evlog_error error = {{0}};
    int rc = evlog_open(&domain->evlog, &options, &error);
    if (rc == ERR_BUSY) {
        fprintf(stderr, "docket: the data directory %s is in use by a running server; stop it "
                        "first\n", domain->config.data_dir);
        domain->evlog = NULL;
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "docket: cannot open the event log: %s\n",
                error.message[0] ? error.message : err_str(rc));
        domain->evlog = NULL;
        return 1;
    }
    snprintf(path, sizeof path, "%s/docket.db", domain->config.data_dir);
    struct db_error db_error = {{0}};
    rc = db_open(&domain->db, path, &db_error);
    if (rc != 0) {
        fprintf(stderr, "docket: cannot open the database: %s\n", db_error.message);
        domain->db = NULL;
        return 1;
    }
    rc = evlog_topic_open(domain->evlog, "events", &domain->events);
    if (rc == 0) rc = projection_open(&domain->projection, domain->db, domain->events);
    if (rc == 0 && with_service) {
        struct service_options service_options = {
            .topic = domain->events, .db = domain->db, .projection = domain->projection};
        rc = service_open(&domain->service, &service_options);
    }
    if (rc != 0) {
        fprintf(stderr, "docket: cannot apply the event log to the database: %s\n", err_str(rc));
        return 1;
    }
    return 0;
}

static void cli_done(void *arg, const struct command_result *result) {
    struct cli_outcome *outcome = arg;
    outcome->finished = 1;
    outcome->status = result->status;
    snprintf(outcome->detail, sizeof outcome->detail, "%s",
             result->detail != NULL ? result->detail : "");
    if (result->errors.count > 0) {
        snprintf(outcome->field_message, sizeof outcome->field_message, "%s %s",
                 result->errors.items[0].field, result->errors.items[0].message);
    }
}

/* Runs a command to completion (durable and applied). Returns an exit code. */
static int cli_execute(struct cli_domain *domain, const struct command *command) {
    struct cli_outcome outcome;
    memset(&outcome, 0, sizeof outcome);
    service_execute(domain->service, command, cli_done, &outcome);
    while (!outcome.finished && uv_run(&domain->loop, UV_RUN_ONCE) != 0) {
    }
    if (!outcome.finished) {
        fprintf(stderr, "docket: the change did not complete\n");
        return 1;
    }
    if (outcome.status >= 400) {
        fprintf(stderr, "docket: %s%s%s\n", outcome.detail, outcome.field_message[0] ? ": " : "",
                outcome.field_message);
        return 1;
    }
    return 0;
}

/* Reads one line (the password) from stdin, without its newline. */
static int cli_read_password(char *out, size_t size, size_t *length) {
    if (fgets(out, (int)size, stdin) == NULL) {
        fprintf(stderr, "docket: expected the password on standard input (one line)\n");
        return 2;
    }
    *length = strcspn(out, "\r\n");
    out[*length] = '\0';
    const char *why = password_check(out, *length);
    if (why != NULL) {
        fprintf(stderr, "docket: the password %s\n", why);
        return 2;
    }
    return 0;
}

static int cli_hash_password(const struct cli_domain *domain, char hash[PASSWORD_HASH_BYTES]) {
    char password[LIMIT_PASSWORD_BYTES_MAX + 2];
    size_t length = 0;
    int exit_code = cli_read_password(password, sizeof password, &length);
    if (exit_code != 0) return exit_code;
    int rc = password_hash(password, length, (uint32_t)domain->config.auth_password_iterations, hash);
    memset(password, 0, sizeof password);
    if (rc != 0) {
        fprintf(stderr, "docket: cannot hash the password: %s\n", err_str(rc));
        return 1;
    }
    return 0;
}

static int cli_find_user(struct cli_domain *domain, const char *name, struct user_record *user) {
    if (query_user_by_name(domain->db, name, user) == 0) return 0;
    fprintf(stderr, "docket: no user named '%s'\n", name);
    return 1;
}

static int cli_valid_role(const char *role) {
    if (strcmp(role, "admin") == 0 || strcmp(role, "user") == 0) return 1;
    fprintf(stderr, "docket: a role is admin or user, not '%s'\n", role);
    return 0;
}

/* Takes "--NAME VALUE" out of argv (shifting the rest). */
static const char *cli_take_option(int *argc, char **argv, const char *name) {
    for (int index = 0; index + 1 < *argc; index++) {
        if (strcmp(argv[index], name) != 0) continue;
        const char *value = argv[index + 1];
        for (int move = index; move + 2 < *argc; move++) argv[move] = argv[move + 2];
        *argc -= 2;
        return value;
    }
    return NULL;
}

static int cli_user_add(struct cli_domain *domain, const char *name, const char *role,
                        const char *zone) {
    if (role != NULL && !cli_valid_role(role)) return 2;
    if (zone != NULL && !timezone_is_valid(zone, strlen(zone))) {
        fprintf(stderr, "docket: '%s' is not an IANA timezone name\n", zone);
        return 2;
    }
    char hash[PASSWORD_HASH_BYTES];
    int exit_code = cli_hash_password(domain, hash);
    if (exit_code != 0) return exit_code;
    struct command command = {.kind = COMMAND_USER_CREATE, .actor = "cli", .username = name,
                              .password_hash = hash, .role = role, .timezone = zone};
    exit_code = cli_execute(domain, &command);
    if (exit_code == 0) printf("added user %s\n", name);
    return exit_code;
}

static void cli_print_user(void *arg, const char *id, int64_t last) {
    struct cli_domain *domain = arg;
    (void)last;
    struct user_record user;
    if (query_user_by_id(domain->db, id, &user) == 0) {
        printf("%s  %-24s %s\n", user.id, user.username, user.role);
    }
}

int user_command_run(int argc, char **argv) {
    if (argc < 1) {
        user_command_help(stderr);
        return 2;
    }
    const char *action = argv[0];
    int rest = argc - 1;
    char **args = argv + 1;
    const char *role = cli_take_option(&rest, args, "--role");
    const char *zone = cli_take_option(&rest, args, "--timezone");
    int positional = 0;
    while (positional < rest && strncmp(args[positional], "--", 2) != 0) positional++;
    int wanted = strcmp(action, "list") == 0 ? 0 : strcmp(action, "set-role") == 0 ? 2 : 1;
    if (strcmp(action, "add") != 0 && strcmp(action, "list") != 0 &&
        strcmp(action, "set-role") != 0 && strcmp(action, "reset-password") != 0) {
        fprintf(stderr, "docket: unknown user command '%s'\n", action);
        return 2;
    }
    if (positional != wanted || (role != NULL && strcmp(action, "add") != 0)) {
        user_command_help(stderr);
        return 2;
    }
    struct cli_domain domain;
    int exit_code = cli_domain_open(&domain, rest - positional, args + positional, 1);
    struct user_record user;
    if (exit_code != 0) {
    } else if (strcmp(action, "list") == 0) {
        exit_code = query_user_sequences(domain.db, cli_print_user, &domain) == 0 ? 0 : 1;
    } else if (strcmp(action, "add") == 0) {
        exit_code = cli_user_add(&domain, args[0], role, zone);
    } else if ((exit_code = cli_find_user(&domain, args[0], &user)) != 0) {
    } else if (strcmp(action, "set-role") == 0) {
        if (!cli_valid_role(args[1])) {
            exit_code = 2;
        } else {
            struct command command = {.kind = COMMAND_USER_ROLE, .user_id = user.id,
                                      .actor = "cli", .role = args[1]};
            exit_code = cli_execute(&domain, &command);
            if (exit_code == 0) printf("%s is now %s\n", user.username, args[1]);
        }
    } else {
        char hash[PASSWORD_HASH_BYTES];
        exit_code = cli_hash_password(&domain, hash);
        struct command command = {.kind = COMMAND_USER_UPDATE, .user_id = user.id,
                                  .actor = "cli", .password_hash = hash};
        if (exit_code == 0) exit_code = cli_execute(&domain, &command);
        if (exit_code == 0) printf("password of %s reset\n", user.username);
    }
    cli_domain_close(&domain);
    return exit_code;
}

void user_command_help(FILE *stream) {
    fprintf(stream,
            "Usage: docket user add NAME [--role admin|user] [--timezone ZONE]\n"
            "       docket user list\n"
            "       docket user set-role NAME admin|user\n"
            "       docket user reset-password NAME\n\n"
            "Manages accounts in the data directory (--data-dir) of a stopped server. add and\n"
            "reset-password read the password from standard input (one line). Changes are\n"
            "events in the log like any API change, with actor \"cli\" in the audit trail.\n");
}

/* ---- rebuild ------------------------------------------------------------------- */

static void cli_progress(void *arg, int64_t applied, int64_t end) {
    (void)arg;
    int percent = end > 0 ? (int)(applied * 100 / end) : 100;
    int filled = percent / 4;
    fprintf(stderr, "\rrebuild [%.*s%*s] %3d%%  %lld/%lld events", filled,
            "=========================", 25 - filled, "", percent, (long long)applied,
            (long long)end);
    fflush(stderr);
}

int rebuild_command_run(int argc, char **argv) {
    struct cli_domain domain;
    int exit_code = cli_domain_open(&domain, argc, argv, 0);
    if (exit_code == 0) {
        int rc = projection_rebuild(domain.projection, cli_progress, NULL);
        fprintf(stderr, "\n");
        if (rc != 0) {
            fprintf(stderr, "docket: rebuild failed: %s%s\n", err_str(rc),
                    rc == ERR_RANGE ? " (retention removed the oldest events)" : "");
            exit_code = 1;
        } else {
            fprintf(stderr, "rebuild: done, %lld events applied\n",
                    (long long)projection_offset(domain.projection));
        }
    }
    cli_domain_close(&domain);
    return exit_code;
}

void rebuild_command_help(FILE *stream) {
    fprintf(stream, "Usage: docket rebuild [--data-dir DIR]\n\n"
                    "Drops the SQLite projections (tasks, users, events, audit, idempotency keys)\n"
                    "and rebuilds them by applying the whole event log, with a progress bar.\n"
                    "The server must be stopped.\n");
}
