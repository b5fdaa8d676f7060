/* How many CPUs this process may use: its affinity mask (taskset, cpuset,
 * a scheduler's pinning) and its cgroup's CPU quota (a container's --cpus,
 * a Kubernetes CPU limit), whichever is smaller. The number of online CPUs
 * overstates both, and one worker per online CPU then oversubscribes every
 * task of a Spark or Ray node. */
#define _GNU_SOURCE
#include "CCompresSAE.h"
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
int64_t csae_internal_affinity_cpus(void) {
    /* The mask may be wider than cpu_set_t's 1024 CPUs: grow until it fits. */
    for (int size = 1024; size <= (1 << 20); size *= 2) {
        cpu_set_t *set = CPU_ALLOC(size);
        if (set == NULL) break;
        size_t bytes = CPU_ALLOC_SIZE(size);
        if (sched_getaffinity(0, bytes, set) == 0) {
            int count = CPU_COUNT_S(bytes, set);
            CPU_FREE(set);
            return count > 0 ? count : 1;
        }
        CPU_FREE(set);
        if (errno != EINVAL) break;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? online : 1;
}

#else
int64_t csae_internal_affinity_cpus(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? online : 1;
}
#endif

/* CPUs granted by a quota of `quota` microseconds per `period`, rounded up
 * (a quota of 1.5 CPUs keeps 2 workers busy part of the time), or 0 for none. */
static int64_t quota_cpus(double quota, double period) {
    if (!(quota > 0) || !(period > 0)) return 0;
    double cpus = quota / period;
    if (cpus >= (double)INT32_MAX) return 0;
    int64_t whole = (int64_t)cpus;
    if ((double)whole < cpus) whole++;
    return whole > 0 ? whole : 1;
}

/* The limit written in one cgroup directory: cgroup v2's cpu.max ("max
 * 100000" or "<quota> <period>"), v1's cpu.cfs_quota_us (-1: none) and
 * cpu.cfs_period_us. 0 when there is none or it cannot be read. */
static int64_t directory_limit(const char *dir, int v2) {
    char path[PATH_MAX + 32];
    if (v2) {
        snprintf(path, sizeof path, "%s/cpu.max", dir);
        FILE *f = fopen(path, "r");
        if (!f) return 0;
        char quota[32] = "";
        double period = 0;
        int fields = fscanf(f, "%31s %lf", quota, &period);
        fclose(f);
        if (fields != 2 || strcmp(quota, "max") == 0) return 0;
        return quota_cpus(strtod(quota, NULL), period);
    }
    double quota = 0, period = 0;
    snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = fscanf(f, "%lf", &quota) == 1;
    fclose(f);
    snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
    f = fopen(path, "r");
    if (!f) return 0;
    ok = ok && fscanf(f, "%lf", &period) == 1;
    fclose(f);
    return ok ? quota_cpus(quota, period) : 0;
}

/* True when the comma-separated list `list` holds `item`. */
static int list_has(const char *list, const char *item) {
    size_t n = strlen(item);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, item, n) == 0) return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* mountinfo writes a space in a path as \040 (and so on): decode in place. */
static void unescape_octal(char *s) {
    char *out = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
            p[3] <= '7') {
            *out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
}

/* The process's cgroup path in one hierarchy, from /proc/self/cgroup:
 * v2's "0::<path>" line or the v1 line whose controllers include "cpu". */
static int cgroup_path(const char *cgroup_file, int v2, char *out, size_t size) {
    FILE *f = fopen(cgroup_file, "r");
    if (!f) return 0;
    char line[PATH_MAX + 256];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *first = strchr(line, ':');
        char *second = first ? strchr(first + 1, ':') : NULL;
        if (!second) continue;
        *first = '\0';
        *second = '\0';
        int match = v2 ? strcmp(line, "0") == 0 && first[1] == '\0' : list_has(first + 1, "cpu");
        if (match && strlen(second + 1) < size) {
            snprintf(out, size, "%s", second + 1);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

int64_t csae_internal_cgroup_cpus(const char *mountinfo_file, const char *cgroup_file) {
    FILE *f = fopen(mountinfo_file, "r");
    if (!f) return 0;
    int64_t best = 0;
    char line[2 * PATH_MAX + 512];
    while (fgets(line, sizeof line, f)) {
        /* "<id> <parent> <dev> <root> <mount point> <options> [optional...] - <type> <source> <super options>" */
        char *fields[6] = {0};
        char *save = NULL, *token = strtok_r(line, " \n", &save);
        int count = 0;
        while (token && count < 6) {
            fields[count++] = token;
            token = strtok_r(NULL, " \n", &save);
        }
        while (token && strcmp(token, "-") != 0) token = strtok_r(NULL, " \n", &save);
        char *type = token ? strtok_r(NULL, " \n", &save) : NULL;
        char *source = type ? strtok_r(NULL, " \n", &save) : NULL;
        char *super = source ? strtok_r(NULL, " \n", &save) : NULL;
        if (count < 5 || !type) continue;
        int v2 = strcmp(type, "cgroup2") == 0;
        if (!v2 && !(strcmp(type, "cgroup") == 0 && super && list_has(super, "cpu"))) continue;
        char *root = fields[3], *mount = fields[4];
        unescape_octal(root);
        unescape_octal(mount);
        char path[PATH_MAX];
        if (!cgroup_path(cgroup_file, v2, path, sizeof path)) continue;
        /* The cgroup path is relative to the hierarchy's root; the mount
         * shows that hierarchy from `root` down. */
        const char *relative = path;
        size_t root_len = strlen(root);
        if (strcmp(root, "/") != 0) {
            if (strncmp(path, root, root_len) == 0 && (path[root_len] == '/' || path[root_len] == '\0'))
                relative = path + root_len;
            else
                relative = "";  /* outside the mounted subtree (a cgroup namespace): its root */
        }
        char dir[2 * PATH_MAX];
        if ((size_t)snprintf(dir, sizeof dir, "%s%s", mount, strcmp(relative, "/") == 0 ? "" : relative) >=
            sizeof dir)
            continue;
        /* The quota of every ancestor applies too: the smallest one binds. */
        size_t mount_len = strlen(mount);
        for (;;) {
            int64_t limit = directory_limit(dir, v2);
            if (limit > 0 && (best == 0 || limit < best)) best = limit;
            char *slash = strrchr(dir, '/');
            if (strlen(dir) <= mount_len || slash == NULL || (size_t)(slash - dir) < mount_len) break;
            *slash = '\0';
        }
    }
    fclose(f);
    return best;
}
