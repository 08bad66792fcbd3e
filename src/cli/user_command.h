/*
 * user_command.h - `docket user ...` (accounts) and `docket rebuild`
 * (projections from the log), for a stopped server's data directory.
 */
#ifndef DOCKET_CLI_USER_COMMAND_H
#define DOCKET_CLI_USER_COMMAND_H

#include <stdio.h>

/* argv[0] is the action ("add", "list", ...); the rest are its arguments
 * and settings. Returns the process exit code. */
int user_command_run(int argc, char **argv);
void user_command_help(FILE *stream);

int rebuild_command_run(int argc, char **argv);
void rebuild_command_help(FILE *stream);

#endif
