import Testing
@testable import CompresSAE

#if canImport(Glibc)
import Glibc
#endif

/// A directory tree of fake cgroup files, removed by `cleanup`.
private struct FakeTree {
    let root: String
    private(set) var files: [String] = []
    private(set) var directories: [String] = []

    init() {
        var template = Array("/tmp/compressae-cgroup-XXXXXX".utf8CString)
        root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    /// Writes `text` to `root/relative`, creating the directories on the way.
    mutating func write(_ relative: String, _ text: String) {
        var directory = root
        for part in relative.split(separator: "/").dropLast() {
            directory += "/" + part
            if mkdir(directory, 0o700) == 0 { directories.append(directory) }
        }
        let path = root + "/" + relative
        let file = fopen(path, "w")!
        fputs(text, file)
        fclose(file)
        files.append(path)
    }

    func cleanup() {
        for file in files { unlink(file) }
        for directory in directories.reversed() { rmdir(directory) }
        rmdir(root)
    }
}

@Suite("Default worker count: environment, affinity, cgroup quota")
struct WorkerBudgetTests {
    @Test("environment settings: positive integers, OMP lists, anything else ignored")
    func settings() {
        #expect(WorkerBudget.setting("3") == 3)
        #expect(WorkerBudget.setting(" 12 ") == 12)
        #expect(WorkerBudget.setting("4,2", list: true) == 4)
        #expect(WorkerBudget.setting("4,2") == nil)
        for bad in ["", "0", "-1", "two", "1.5", "65537", "99999999999999999999"] {
            #expect(WorkerBudget.setting(bad) == nil, "\(bad)")
        }
        #expect(WorkerBudget.setting(nil) == nil)
    }

    @Test("CSAE_NUM_THREADS wins over OMP_NUM_THREADS, which wins over the CPU count")
    func precedence() {
        let usable = WorkerBudget.usableCPUs()
        func workers(_ env: [String: String]) -> Int { WorkerBudget.defaultWorkers(environment: { env[$0] }) }
        #expect(workers([:]) == usable)
        #expect(workers(["OMP_NUM_THREADS": "1"]) == 1)
        #expect(workers(["OMP_NUM_THREADS": "3,1"]) == 3)
        #expect(workers(["CSAE_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"]) == 2)
        #expect(workers(["CSAE_NUM_THREADS": "junk", "OMP_NUM_THREADS": "5"]) == 5)
        #expect(workers(["CSAE_NUM_THREADS": "0", "OMP_NUM_THREADS": ""]) == usable)
    }

    @Test("the usable CPUs are between 1 and the online CPUs")
    func usable() {
        let usable = WorkerBudget.usableCPUs()
        #expect(usable >= 1)
        #if canImport(Glibc)
        #expect(usable <= sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #endif
    }

    @Test("cgroup v2: the smallest quota on the path to the root, rounded up")
    func cgroupV2() {
        var tree = FakeTree()
        defer { tree.cleanup() }
        let mount = tree.root + "/fs"
        tree.write("mountinfo", """
            22 1 0:21 / /proc rw,nosuid - proc proc rw
            30 22 0:26 / \(mount) rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate

            """)
        tree.write("cgroup", "0::/job/task\n")
        tree.write("fs/cpu.max", "max 100000\n")
        tree.write("fs/job/cpu.max", "250000 100000\n")
        tree.write("fs/job/task/cpu.max", "max 100000\n")
        #expect(WorkerBudget.cgroupCPUs(mountinfo: tree.root + "/mountinfo", cgroups: tree.root + "/cgroup") == 3)
        tree.write("fs/job/task/cpu.max", "50000 100000\n")
        #expect(WorkerBudget.cgroupCPUs(mountinfo: tree.root + "/mountinfo", cgroups: tree.root + "/cgroup") == 1)
        tree.write("fs/job/cpu.max", "max 100000\n")
        tree.write("fs/job/task/cpu.max", "max 100000\n")
        #expect(WorkerBudget.cgroupCPUs(mountinfo: tree.root + "/mountinfo", cgroups: tree.root + "/cgroup") == 0)
    }

    @Test("cgroup v1: cfs quota and period of the cpu hierarchy; a mount of a subtree")
    func cgroupV1() {
        var tree = FakeTree()
        defer { tree.cleanup() }
        // A container's view: the mount shows the hierarchy from /docker/abc down.
        tree.write("mountinfo", """
            40 31 0:37 /docker/abc \(tree.root)/cpu\\040dir rw,relatime - cgroup cgroup rw,cpu,cpuacct
            41 31 0:38 / \(tree.root)/memory rw,relatime - cgroup cgroup rw,memory

            """)
        tree.write("cgroup", "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n")
        tree.write("cpu dir/cpu.cfs_quota_us", "400000\n")
        tree.write("cpu dir/cpu.cfs_period_us", "100000\n")
        tree.write("memory/cpu.cfs_quota_us", "100000\n")  // not the cpu hierarchy: ignored
        tree.write("memory/cpu.cfs_period_us", "100000\n")
        #expect(WorkerBudget.cgroupCPUs(mountinfo: tree.root + "/mountinfo", cgroups: tree.root + "/cgroup") == 4)
        tree.write("cpu dir/cpu.cfs_quota_us", "-1\n")
        #expect(WorkerBudget.cgroupCPUs(mountinfo: tree.root + "/mountinfo", cgroups: tree.root + "/cgroup") == 0)
        #expect(WorkerBudget.cgroupCPUs(mountinfo: tree.root + "/missing", cgroups: tree.root + "/cgroup") == 0)
    }
}
