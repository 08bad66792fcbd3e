/*
 * main.c - the `docket` command line: picks a command, loads settings
 * (defaults < config file < DOCKET_* environment < flags) and runs it.
 *
 *   docket [serve] [--setting value ...]   run the server (the default)
 *   docket config  [--setting value ...]   print the effective settings
 *   docket log SUBCOMMAND ...              inspect or load the event log (cli/log_command.h)
 *   docket version | --version             print the version
 *   docket help [COMMAND] | --help         print help
 *
 * Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#include "base/err.h"
#include "base/logger.h"
#include "cli/log_command.h"
#include "cli/user_command.h"
#include "config/config.h"
#include "server/server.h"
#include "server/version.h"

#include <stdio.h>
#include <string.h>

extern char **environ;

struct command {
    const char *name;    /* word on the command line */
    const char *summary; /* one line for `docket help` */
    int (*run)(int argc, char **argv);
    void (*help)(FILE *stream);
};

static void main_help_serve(FILE *stream) {
    fprintf(stream, "Usage: docket serve [--SETTING VALUE ...]\n\n"
                    "Runs the Docket server: HTTP API and web UI on --listen, data in "
                    "--data-dir.\nStops gracefully on SIGTERM or SIGINT.\n\n");
    config_print_help(stream);
}

static void main_help_config(FILE *stream) {
    fprintf(stream, "Usage: docket config [--SETTING VALUE ...]\n\n"
                    "Prints the settings that `docket serve` would use with the same flags and "
                    "environment, in config-file form.\n\n");
    config_print_help(stream);
}

static void main_help_version(FILE *stream) {
    fprintf(stream, "Usage: docket version\n\nPrints the version of this binary.\n");
}

static int main_load_config(struct config *config, int argc, char **argv) {
    if (config_init(config) != 0) {
        fprintf(stderr, "docket: out of memory\n");
        return 1;
    }
    struct config_error error = {{0}};
    if (config_load(config, argc, argv, environ, &error) != 0) {
        fprintf(stderr, "docket: %s\n", error.message[0] ? error.message : "invalid settings");
        config_free(config);
        return 2;
    }
    enum logger_level level;
    if (logger_level_parse(config->log_level, &level) != 0) {
        fprintf(stderr, "docket: setting 'log_level' must be debug, info, warn or error\n");
        config_free(config);
        return 2;
    }
    logger_set_level(level);
    return 0;
}

static int main_run_serve(int argc, char **argv) {
    struct config config;
    int rc = main_load_config(&config, argc, argv);
    if (rc != 0) return rc;
    rc = server_run(&config);
    config_free(&config);
    if (rc == ERR_CONFIG) return 2;
    return rc == 0 ? 0 : 1;
}

static int main_run_config(int argc, char **argv) {
    struct config config;
    int rc = main_load_config(&config, argc, argv);
    if (rc != 0) return rc;
    config_print(&config, stdout);
    config_free(&config);
    return 0;
}

static int main_run_version(int argc, char **argv) {
    (void)argv;
    if (argc > 0) {
        fprintf(stderr, "docket: 'version' takes no arguments\n");
        return 2;
    }
    printf("docket %s\n", DOCKET_VERSION);
    return 0;
}

static const struct command main_commands[] = {
    {"serve", "Run the server (the default command).", main_run_serve, main_help_serve},
    {"config", "Print the effective settings.", main_run_config, main_help_config},
    {"log", "Inspect the event log: topics, tail, verify, consumers.", log_command_run,
     log_command_help},
    {"user", "Manage accounts: add, list, set-role, reset-password.", user_command_run,
     user_command_help},
    {"rebuild", "Rebuild the database projections from the event log.", rebuild_command_run,
     rebuild_command_help},
    {"version", "Print the version.", main_run_version, main_help_version},
};

#define MAIN_COMMAND_COUNT (sizeof main_commands / sizeof main_commands[0])

static const struct command *main_find(const char *name) {
    for (size_t index = 0; index < MAIN_COMMAND_COUNT; index++) {
        if (strcmp(main_commands[index].name, name) == 0) return &main_commands[index];
    }
    return NULL;
}

static void main_help(FILE *stream) {
    fprintf(stream, "docket %s - an event-driven task server in one binary\n\n", DOCKET_VERSION);
    fprintf(stream, "Usage: docket [COMMAND] [--SETTING VALUE ...]\n\nCommands:\n");
    for (size_t index = 0; index < MAIN_COMMAND_COUNT; index++) {
        fprintf(stream, "  %-8s %s\n", main_commands[index].name, main_commands[index].summary);
    }
    fprintf(stream, "  %-8s %s\n\n", "help", "Show help for a command: docket help COMMAND.");
    fprintf(stream, "With no command, docket serves on 127.0.0.1:8080 with data in "
                    "./docket-data.\nRun `docket help serve` for every setting.\n");
}

static int main_is_help_flag(const char *argument) {
    return strcmp(argument, "--help") == 0 || strcmp(argument, "-h") == 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        return main_run_version(0, NULL);
    }
    if (argc >= 2 && (main_is_help_flag(argv[1]) || strcmp(argv[1], "help") == 0)) {
        if (argc >= 3 && strcmp(argv[1], "help") == 0) {
            const struct command *command = main_find(argv[2]);
            if (command == NULL) {
                fprintf(stderr, "docket: unknown command '%s'\n", argv[2]);
                return 2;
            }
            command->help(stdout);
            return 0;
        }
        main_help(stdout);
        return 0;
    }
    const struct command *command = main_find("serve");
    int first = 1;
    if (argc >= 2 && strncmp(argv[1], "-", 1) != 0) {
        command = main_find(argv[1]);
        if (command == NULL) {
            fprintf(stderr, "docket: unknown command '%s' (see docket --help)\n", argv[1]);
            return 2;
        }
        first = 2;
    }
    for (int index = first; index < argc; index++) {
        if (main_is_help_flag(argv[index])) {
            command->help(stdout);
            return 0;
        }
    }
    return command->run(argc - first, argv + first);
}
