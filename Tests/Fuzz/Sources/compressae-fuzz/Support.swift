import CompresSAE
#if canImport(Glibc)
import Glibc
#endif

/// Reads the fuzz input front to back; past its end every read is zero, so a
/// short input is still a complete program.
struct ByteReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0

    init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = UnsafeBufferPointer(start: data, count: data == nil ? 0 : size)
    }

    var isAtEnd: Bool { position >= bytes.count }

    mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func uint32() -> UInt32 {
        var v: UInt32 = 0
        for s in stride(from: 0, to: 32, by: 8) { v |= UInt32(byte()) << UInt32(s) }
        return v
    }

    mutating func uint64() -> UInt64 { UInt64(uint32()) | UInt64(uint32()) << 32 }

    /// A value in 0..<bound (bound >= 1).
    mutating func below(_ bound: Int) -> Int { Int(byte()) % bound }

    /// A float: mostly small finite values, sometimes the raw bits (NaN, Inf, huge).
    mutating func float() -> Float {
        let tag = byte()
        if tag & 0xF0 == 0xF0 { return Float(bitPattern: uint32()) }
        return Float(Int8(bitPattern: byte())) / 16
    }

    /// A latent index: mostly in 0..<h, sometimes anything.
    mutating func latent(_ h: Int64) -> Int32 {
        let tag = byte()
        if tag == 0xFF { return Int32(bitPattern: uint32()) }
        return Int32(Int64(tag) % max(h, 1))
    }
}

/// The status codes csae_ functions may return.
let knownStatuses: ClosedRange<Int32> = 0...7

/// A failed call must return a known status and describe itself; anything
/// else is a bug worth stopping the fuzzer for.
/// COMPRESSAE_FUZZ_TRACE=1: every checked call and its status go to stderr
/// (to read what a crash input does).
let tracing = getenv("COMPRESSAE_FUZZ_TRACE") != nil

@discardableResult
func checkStatus(_ status: Int32, _ call: @autoclosure () -> String) -> Bool {
    if tracing { fputs("\(call()) -> \(status) \(status == 0 ? "" : String(cString: csae_last_error()))\n", stderr) }
    guard knownStatuses.contains(status) else {
        fatalError("\(call()) returned unknown status \(status)")
    }
    if status != 0 {
        let message = String(cString: csae_last_error())
        guard !message.isEmpty else { fatalError("\(call()) failed with status \(status) and no message") }
    }
    return status == 0
}

func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("invariant broken: \(message())") }
}

/// Scratch files of this process (one fuzzer process per PID, also under -fork/-jobs).
enum Scratch {
    static let directory: String = {
        if let dir = getenv("COMPRESSAE_FUZZ_TMP") { return String(cString: dir) }
        if let dir = getenv("TMPDIR") { return String(cString: dir) }
        return "/tmp"
    }()
    static let input = "\(directory)/compressae-fuzz-\(getpid())-input"
    static let output = "\(directory)/compressae-fuzz-\(getpid())-output"

    /// Writes `bytes` to `path` (replacing it).
    static func write(_ bytes: UnsafeBufferPointer<UInt8>, to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { fatalError("cannot create scratch file \(path)") }
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            guard n > 0 else { fatalError("cannot write scratch file \(path)") }
            done += n
        }
        close(fd)
    }

    static func readAll(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n <= 0 { break }
            result.append(contentsOf: chunk[0..<n])
        }
        return result
    }
}

/// Rows of finite, non-zero floats for encode/search calls.
func denseRows(_ n: Int, _ d: Int, salt: Int) -> [Float] {
    (0..<(n * d)).map { i in Float(((i &* 7 &+ salt &* 13) % 17) - 8) / 8 + (i % d == 0 ? 0.5 : 0) }
}

/// The shape of a live model.
func shape(_ model: OpaquePointer?) -> (d: Int64, h: Int64, k: Int64)? {
    var d: Int64 = 0, h: Int64 = 0, k: Int64 = 0
    guard checkStatus(csae_model_get_shape(model, &d, &h, &k), "csae_model_get_shape") else { return nil }
    return (d, h, k)
}
