#if canImport(Glibc)
import Glibc
#endif

/// Whole-file reads and atomic writes on POSIX calls (the library does not
/// use Foundation).
enum FileIO {
    private static func describeErrno(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }

    /// An open regular file for reading, closed on deinit.
    ///
    /// Only regular files are opened: the path is checked with `stat` first
    /// (a FIFO, a device or a socket is never opened, so opening cannot block
    /// or act on a device), then opened with `O_NONBLOCK` and checked again
    /// with `fstat`, which settles what was opened if the path changed in
    /// between. The size is taken once, at open; a file that shrinks later
    /// reads as truncated.
    final class Reader {
        let fd: Int32
        let path: String
        let size: Int

        init(path: String) throws {
            self.path = path
            var info = stat()
            guard stat(path, &info) == 0 else {
                throw CompresSAEError.io("cannot open '\(path)': \(FileIO.describeErrno())")
            }
            try Self.requireRegular(info, path)
            fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
            guard fd >= 0 else { throw CompresSAEError.io("cannot open '\(path)': \(FileIO.describeErrno())") }
            do {
                guard fstat(fd, &info) == 0 else {
                    throw CompresSAEError.io("cannot stat '\(path)': \(FileIO.describeErrno())")
                }
                try Self.requireRegular(info, path)
                // Regular files ignore O_NONBLOCK; cleared so that reads have their usual meaning.
                let flags = fcntl(fd, F_GETFL)
                if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
            } catch {
                close(fd)
                throw error
            }
            size = Int(info.st_size)
        }

        private static func requireRegular(_ info: stat, _ path: String) throws {
            let type = info.st_mode & S_IFMT
            guard type == S_IFREG else {
                let what = type == S_IFDIR ? "a directory" : type == S_IFIFO ? "a FIFO"
                    : type == S_IFCHR || type == S_IFBLK ? "a device" : type == S_IFSOCK ? "a socket" : "not a regular file"
                throw CompresSAEError.io("'\(path)' is \(what == "not a regular file" ? what : what + ", not a regular file")")
            }
        }

        deinit { close(fd) }

        /// Reads exactly `count` bytes at `offset` into `buffer`.
        ///
        /// - Throws: `format` when the file ends first (it is shorter than
        ///   its header says), `io` on a read error.
        func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws(CompresSAEError) {
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

    /// The temporary file a save of `path` writes before renaming it over
    /// `path`: `.<name>.tmp` beside it. One fixed name per target, so that
    /// the leftover of a writer killed mid-save is reused (and renamed away)
    /// by the next save of the same target instead of piling up.
    static func temporaryPath(for path: String) -> String {
        let (directory, name) = split(path)
        return directory + "." + name + ".tmp"
    }

    /// `path` as (directory with its trailing `/`, or "" for the current
    /// directory; last component).
    private static func split(_ path: String) -> (String, String) {
        let bytes = Array(path.utf8)
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return ("", path) }
        return (String(decoding: bytes[...slash], as: UTF8.self),
                String(decoding: bytes[(slash + 1)...], as: UTF8.self))
    }

    /// Writes a file atomically and durably: the bytes go to the temporary
    /// file of `temporaryPath(for:)`, which is flushed to disk, renamed over
    /// `path`, and the directory flushed so that the rename itself survives a
    /// power loss. A crash or an error at any point leaves either the old file
    /// or the new one, never a mix.
    ///
    /// Concurrent saves of one target (threads or processes) take turns: each
    /// holds an exclusive `flock` on the temporary file while it writes, and
    /// checks after locking that the name still refers to the file it
    /// locked (the previous holder may have renamed it over the target). A
    /// writer that died left its temporary unlocked; the next save truncates
    /// and reuses it. The temporary is opened without following symlinks and
    /// must be a regular file with one link, so a planted link cannot
    /// redirect the write.
    ///
    /// - Parameter write: called with a function that appends bytes.
    static func writeAtomically(
        to path: String, _ write: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws {
        guard !path.isEmpty else { throw CompresSAEError.invalid("the path is empty") }
        guard path.utf8.last != UInt8(ascii: "/") else { throw CompresSAEError.invalid("'\(path)' names a directory") }
        let temporary = temporaryPath(for: path)
        let fd = try openLockedTemporary(temporary)
        var renamed = false
        defer {
            if !renamed { unlink(temporary) }
            close(fd)  // releases the lock, after the rename or the unlink
        }
        try write { bytes in
            guard var p = bytes.baseAddress else { return }
            var remaining = bytes.count
            while remaining > 0 {
                let n = Glibc.write(fd, p, remaining)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw CompresSAEError.io("cannot write '\(temporary)': \(describeErrno())") }
                p += n
                remaining -= n
            }
        }
        guard fsync(fd) == 0 else { throw CompresSAEError.io("cannot flush '\(temporary)': \(describeErrno())") }
        guard rename(temporary, path) == 0 else {
            throw CompresSAEError.io("cannot rename '\(temporary)' to '\(path)': \(describeErrno())")
        }
        renamed = true
        try syncDirectory(of: path)
    }

    /// Opens (creating if needed) the temporary file, takes its exclusive
    /// lock (waiting for a live writer of the same target) and empties it.
    private static func openLockedTemporary(_ temporary: String) throws -> Int32 {
        while true {
            let fd = open(temporary, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o644)
            guard fd >= 0 else { throw CompresSAEError.io("cannot create '\(temporary)': \(describeErrno())") }
            var locked: Int32
            repeat { locked = flock(fd, LOCK_EX) } while locked != 0 && errno == EINTR
            guard locked == 0 else {
                let message = describeErrno()
                close(fd)
                throw CompresSAEError.io("cannot lock '\(temporary)': \(message)")
            }
            var mine = stat(), named = stat()
            guard fstat(fd, &mine) == 0 else {
                let message = describeErrno()
                close(fd)
                throw CompresSAEError.io("cannot stat '\(temporary)': \(message)")
            }
            // The previous holder renamed the file we locked: start again with a new one.
            guard lstat(temporary, &named) == 0, named.st_dev == mine.st_dev, named.st_ino == mine.st_ino else {
                close(fd)
                continue
            }
            guard (mine.st_mode & S_IFMT) == S_IFREG, mine.st_nlink == 1 else {
                close(fd)
                throw CompresSAEError.io("'\(temporary)' is not a plain file of its own (a link?): remove it and save again")
            }
            let flags = fcntl(fd, F_GETFL)
            if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
            guard ftruncate(fd, 0) == 0 else {
                let message = describeErrno()
                close(fd)
                throw CompresSAEError.io("cannot truncate '\(temporary)': \(message)")
            }
            return fd
        }
    }

    /// fsync of the directory holding `path`, which makes a rename in it
    /// durable. File systems that cannot sync a directory (EINVAL) are skipped.
    private static func syncDirectory(of path: String) throws {
        let (directory, _) = split(path)
        let dirPath = directory.isEmpty ? "." : directory
        let fd = open(dirPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CompresSAEError.io("saved '\(path)', but cannot open its directory to flush it: \(describeErrno())")
        }
        defer { close(fd) }
        guard fsync(fd) == 0 || errno == EINVAL || errno == ENOTSUP else {
            throw CompresSAEError.io("saved '\(path)', but cannot flush its directory: \(describeErrno())")
        }
    }
}
