import CCompresSAE

#if canImport(Glibc)
import Glibc
#endif

/// How many workers the library starts by default: the CPUs this process
/// may actually use, not the machine's. Under `taskset`, in a container with
/// a CPU limit or in one task of a Spark or Ray node, the online CPU count
/// is larger, and one worker per online CPU would oversubscribe the cores
/// the process shares.
enum WorkerBudget {
    /// Largest worker count an environment variable may set; larger values
    /// are ignored like malformed ones.
    static let maximumSetting = 65536

    /// CPUs this process may use: the number in its affinity mask, capped by
    /// the CPU quota of its cgroup (v2 `cpu.max`, v1 `cpu.cfs_quota_us`)
    /// and of every ancestor, rounded up to whole CPUs.
    ///
    /// - Complexity: reads a few small files under /proc and /sys/fs/cgroup.
    static func usableCPUs() -> Int {
        let affinity = Int(csae_internal_affinity_cpus())
        let quota = cgroupCPUs(mountinfo: "/proc/self/mountinfo", cgroups: "/proc/self/cgroup")
        return quota > 0 ? max(1, min(affinity, quota)) : max(1, affinity)
    }

    /// The smallest CPU quota, in whole CPUs rounded up, of the cgroup that
    /// `cgroups` (the format of /proc/self/cgroup) names and of its
    /// ancestors, in every cgroup v2 hierarchy and v1 `cpu` hierarchy that
    /// `mountinfo` (the format of /proc/self/mountinfo) lists; 0 when none
    /// is set or the files cannot be read.
    ///
    /// - Complexity: reads `mountinfo`, `cgroups` and one or two files per
    ///   level of each hierarchy.
    static func cgroupCPUs(mountinfo: String, cgroups: String) -> Int {
        Int(csae_internal_cgroup_cpus(mountinfo, cgroups))
    }

    /// A worker count from an environment variable's value: a positive
    /// decimal integer up to `maximumSetting`, or for `OMP_NUM_THREADS` a
    /// list of them (one per nesting level; the first is the outer level's).
    /// nil for anything else, which leaves the choice to the next source.
    static func setting(_ value: String?, list: Bool = false) -> Int? {
        guard var text = value else { return nil }
        if list, let comma = text.firstIndex(of: ",") { text = String(text[..<comma]) }
        let trimmed = text.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed()
        guard let count = Int(String(trimmed)), count >= 1, count <= maximumSetting else { return nil }
        return count
    }

    /// The value of an environment variable, or nil.
    static func environment(_ name: String) -> String? {
        #if canImport(Glibc)
        return getenv(name).map { String(cString: $0) }
        #else
        return nil
        #endif
    }

    /// The default worker count: `CSAE_NUM_THREADS` (the library's own
    /// setting wins), else `OMP_NUM_THREADS` (the convention numerical
    /// libraries share, so one setting caps all of them), else `usableCPUs()`.
    static func defaultWorkers(environment: (String) -> String?) -> Int {
        if let count = setting(environment("CSAE_NUM_THREADS")) { return count }
        if let count = setting(environment("OMP_NUM_THREADS"), list: true) { return count }
        return usableCPUs()
    }
}
