/*
 * replay.c - runs a libFuzzer target over every file of a corpus directory,
 * so the committed corpus is an ordinary regression test in `zig build test`
 * (no clang needed). Usage: replay-NAME CORPUS_DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) return -1;
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    uint8_t *data = malloc(size > 0 ? (size_t)size : 1);
    if (data == NULL || fread(data, 1, (size_t)size, file) != (size_t)size) {
        fclose(file);
        free(data);
        return -1;
    }
    fclose(file);
    LLVMFuzzerTestOneInput(data, (size_t)size);
    free(data);
    return 0;
}

int main(int argc, char **argv) {
    int count = 0;
    int failed = 0;
    for (int index = 1; index < argc; index++) {
        DIR *dir = opendir(argv[index]);
        if (dir == NULL) {
            fprintf(stderr, "replay: cannot open %s\n", argv[index]);
            return 1;
        }
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (entry->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[index], entry->d_name);
            if (replay_file(path) != 0) failed++;
            count++;
        }
        closedir(dir);
    }
    printf("fuzz replay: %d passed, %d failed\n", count - failed, failed);
    return count == 0 || failed > 0 ? 1 : 0;
}
