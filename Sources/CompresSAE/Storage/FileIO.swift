#if canImport(Glibc)
import Glibc
#endif

/// Whole-file reads and atomic writes on POSIX calls (the library does not
/// use Foundation).
enum FileIO {
    private static func describeErrno() -> String {
        String(cString: strerror(errno))
    }

    /// An open file for reading, closed on deinit.
    final class Reader {
        let fd: Int32
        let path: String
        let size: Int

        init(path: String) throws {
            self.path = path
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw CompresSAEError.io("cannot open '\(path)': \(FileIO.describeErrno())") }
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                let message = FileIO.describeErrno()
                close(fd)
                throw CompresSAEError.io("cannot stat '\(path)': \(message)")
            }
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                close(fd)
                throw CompresSAEError.io("'\(path)' is not a regular file")
            }
            size = Int(info.st_size)
        }

        deinit { close(fd) }

        /// Reads exactly `count` bytes at `offset` into `buffer`.
        func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws {
            var done = 0
            while done < count {
                let n = pread(fd, buffer + done, count - done, off_t(offset + done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    throw n == 0
                        ? CompresSAEError.format("'\(path)' is truncated: expected \(count) bytes at offset \(offset)")
                        : CompresSAEError.io("cannot read '\(path)': \(FileIO.describeErrno())")
                }
                done += n
            }
        }
    }

    /// Writes a file atomically: the bytes go to a temporary file in the same
    /// directory, which is flushed to disk and then renamed over `path`. A crash
    /// or an error at any point leaves either the old file or the new one,
    /// never a mix, and no temporary file behind.
    ///
    /// - Parameter write: called with a function that appends bytes.
    static func writeAtomically(
        to path: String, _ write: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws {
        guard !path.isEmpty else { throw CompresSAEError.invalid("the path is empty") }
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CompresSAEError.io("cannot create '\(temporary)': \(describeErrno())") }
        var committed = false
        defer {
            if !committed {
                close(fd)
                unlink(temporary)
            }
        }
        try write { bytes in
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw CompresSAEError.io("cannot write '\(temporary)': \(describeErrno())") }
                done += n
            }
        }
        guard fsync(fd) == 0 else { throw CompresSAEError.io("cannot flush '\(temporary)': \(describeErrno())") }
        committed = true
        guard close(fd) == 0 else {
            unlink(temporary)
            throw CompresSAEError.io("cannot close '\(temporary)': \(describeErrno())")
        }
        guard rename(temporary, path) == 0 else {
            let message = describeErrno()
            unlink(temporary)
            throw CompresSAEError.io("cannot rename '\(temporary)' to '\(path)': \(message)")
        }
    }
}
