/*
 * zoneinfo_fuzz.c - libFuzzer target for the TZif reader. The input is a
 * whole file. Rejections must use the documented codes; an accepted zone
 * must answer offsets within bounds and convert every probed instant to
 * local time and back: local_to_utc() of the local time an instant shows
 * is an instant showing that same local time, no later than the probe
 * (folds resolve to the earlier one), and exactly the probe when the
 * strict policy accepts it.
 */
#include "../../src/base/check.h"
#include "../../src/base/err.h"
#include "../../src/tasks/zoneinfo.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Probes per end of the transition table; keeps one input fast. */
#define FUZZ_PROBES_PER_END 32

static void fuzz_probe(const struct zoneinfo *zone, int64_t utc_s) {
    /* Stay away from the range ends so the local time is in 1..9999. */
    if (utc_s < ZONEINFO_TIME_S_MIN + 3 * 86400 || utc_s > ZONEINFO_TIME_S_MAX - 3 * 86400)
        return;
    int32_t offset_s = 0;
    bool is_dst = false;
    CHECK(zoneinfo_utc_offset(zone, utc_s, &offset_s, &is_dst) == 0);
    CHECK(offset_s >= -ZONEINFO_OFFSET_S_MAX && offset_s <= ZONEINFO_OFFSET_S_MAX);
    struct zoneinfo_civil local;
    CHECK(zoneinfo_utc_to_local(zone, utc_s, &local) == 0);
    int64_t back = 0;
    int rc = zoneinfo_local_to_utc(zone, &local, ZONEINFO_POLICY_RFC5545, &back);
    if (rc == ERR_LIMIT)
        return;
    CHECK(rc == 0);
    CHECK(back <= utc_s);
    int32_t back_offset_s = 0;
    CHECK(zoneinfo_utc_offset(zone, back, &back_offset_s, NULL) == 0);
    CHECK(back + back_offset_s == utc_s + offset_s);
    int64_t strict = 0;
    rc = zoneinfo_local_to_utc(zone, &local, ZONEINFO_POLICY_STRICT, &strict);
    CHECK(rc == 0 || rc == ERR_RANGE);
    if (rc == 0)
        CHECK(strict == utc_s);
}

static void fuzz_transition(const struct zoneinfo *zone, size_t index) {
    int64_t at_s = zone->transitions[index].at_s;
    fuzz_probe(zone, at_s - 1);
    fuzz_probe(zone, at_s);
    fuzz_probe(zone, at_s + 1800);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct zoneinfo zone;
    int rc = zoneinfo_parse(data, size, &zone);
    if (rc != 0) {
        CHECK(rc == ERR_PARSE || rc == ERR_LIMIT || rc == ERR_UNSUPPORTED || rc == ERR_NOMEM);
        CHECK(zone.transitions == NULL);
        return 0;
    }
    CHECK(zone.type_count >= 1 && zone.type_count <= ZONEINFO_TYPES_MAX);
    for (size_t index = 0; index < zone.transition_count && index < FUZZ_PROBES_PER_END; index++)
        fuzz_transition(&zone, index);
    size_t tail = zone.transition_count > FUZZ_PROBES_PER_END
                      ? zone.transition_count - FUZZ_PROBES_PER_END
                      : 0;
    for (size_t index = tail; index < zone.transition_count; index++)
        fuzz_transition(&zone, index);
    /* 1970, spring and autumn 2026, 2100 (footer territory), 9999. */
    static const int64_t fixed[] = {0,
                                    INT64_C(1774746000),
                                    INT64_C(1792890000),
                                    INT64_C(4102444800),
                                    INT64_C(4118000000),
                                    INT64_C(253402000000)};
    for (size_t index = 0; index < sizeof fixed / sizeof fixed[0]; index++)
        fuzz_probe(&zone, fixed[index]);
    zoneinfo_free(&zone);
    return 0;
}
