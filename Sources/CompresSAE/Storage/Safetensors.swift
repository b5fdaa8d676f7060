/// The safetensors container: an 8-byte little-endian header length, a JSON
/// header (tensor name -> dtype, shape, byte range; optional `__metadata__`
/// of string pairs), then the raw little-endian tensor bytes.
/// Used for models (compatible with PyTorch's `safetensors.torch.save_file`)
/// and for anything else the library persists.
///
/// A file is trusted only after it is verified: every size is
/// overflow-checked, the header is bounded by the file, and the tensors tile
/// the data section exactly (contiguous, non-overlapping, no byte outside
/// any tensor, each the size its dtype and shape say), as the format's
/// reference implementation requires.
enum Safetensors {
    /// Largest header accepted. The files the library reads have a handful of
    /// tensors (a few hundred bytes of header); 16 MB admits some hundred
    /// thousand tensor entries while keeping a hostile header's parse cheap.
    static let maxHeaderBytes = 16 << 20

    /// Metadata key of the file's checksum: the XXH64 of the whole file,
    /// read with the 16 hex digits of this value taken as "0" (so that the
    /// checksum covers the header, metadata and tensor table included, as
    /// well as the data).
    static let checksumKey = "file_xxh64"

    /// The checksum as the writer spells it in the header: found by this
    /// exact text, which JSON string escaping cannot produce elsewhere.
    static let checksumPrefix = Array("\"\(checksumKey)\":\"".utf8)

    struct TensorInfo {
        let dtype: String
        let shape: [Int]
        let begin: Int  // byte offset from the start of the data section
        let end: Int
    }

    /// The running XXH64 of a file read tensor by tensor, in file order
    /// (started with the length field and the header), and the data offset
    /// the next tensor must start at. Made by `File.digest()`.
    struct PayloadDigest {
        fileprivate var hasher = XXH64()
        fileprivate var next = 0
    }

    /// A validated, opened safetensors file: header parsed, every byte range
    /// checked against the file size.
    struct File {
        let reader: FileIO.Reader
        let metadata: [String: String]
        let tensors: [String: TensorInfo]
        let dataStart: Int
        let dataSize: Int
        /// The header as stored (padding included), for the checksum.
        private let rawHeader: [UInt8]
        /// Where the checksum's 16 hex digits start in `rawHeader`, if recorded.
        private let checksumOffset: Int?

        /// Opens and verifies `path`.
        ///
        /// - Throws: `io` when the path cannot be opened or is not a regular
        ///   file; `format` for anything the format does not allow.
        /// - Complexity: O(header bytes + tensors log tensors).
        init(path: String) throws {
            let reader = try FileIO.Reader(path: path)
            self.reader = reader
            let size = reader.size
            func bad(_ what: String) -> CompresSAEError { .format("'\(path)': \(what)") }
            guard size >= 8 else {
                throw CompresSAEError.format("'\(path)' is not a safetensors file: \(size) bytes, shorter than its 8-byte header length")
            }
            var lengthLE: UInt64 = 0
            try reader.read(into: &lengthLE, count: 8, at: 0)
            let headerLength = UInt64(littleEndian: lengthLE)
            guard headerLength >= 2, headerLength <= UInt64(maxHeaderBytes) else {
                throw bad("header length \(headerLength) is outside 2...\(maxHeaderBytes) bytes (corrupt or not a safetensors file)")
            }
            let length = Int(headerLength)
            guard length <= size - 8 else {
                throw bad("the 8-byte length field plus a header of \(headerLength) bytes exceed the file size \(size) (truncated or corrupt)")
            }
            var header = try [UInt8].fallible(count: length, "the header of '\(path)'") {
                (out: inout UnsafeMutableBufferPointer<UInt8>) throws(CompresSAEError) in
                try reader.read(into: out.baseAddress!, count: length, at: 8)
            }
            rawHeader = header
            // Writers pad the header with spaces (0x20) to an 8-byte boundary;
            // nothing else is padding (a NUL there is damage the JSON parser reports).
            while let last = header.last, last == 0x20 { header.removeLast() }
            let json: JSONValue
            do { json = try JSONParser.parse(header) } catch let e as CompresSAEError {
                throw bad(e.message)
            }
            guard case .object(let members) = json else { throw bad("the header is not a JSON object") }
            dataStart = 8 + length
            dataSize = size - dataStart
            var metadata: [String: String] = [:]
            var tensors: [String: TensorInfo] = [:]
            for (name, value) in members {
                if name == "__metadata__" {
                    guard case .object(let pairs) = value else { throw bad("__metadata__ is not an object") }
                    for (key, v) in pairs {
                        guard case .string(let s) = v else { throw bad("__metadata__[\"\(key)\"] is not a string") }
                        metadata[key] = s
                    }
                    continue
                }
                tensors[name] = try Self.tensorInfo(name: name, value, dataSize: dataSize, path: path)
            }
            try Self.checkTiling(tensors, dataSize: dataSize, path: path)
            if let recorded = metadata[Safetensors.checksumKey] {
                checksumOffset = try Self.locateChecksum(recorded, in: rawHeader, path: path)
            } else {
                checksumOffset = nil
            }
            self.metadata = metadata
            self.tensors = tensors
        }

        /// The offset of the recorded checksum's digits: the header must
        /// spell it exactly once, as the writer does.
        private static func locateChecksum(_ recorded: String, in header: [UInt8], path: String) throws -> Int {
            let prefix = Safetensors.checksumPrefix
            let digits = Array(recorded.utf8)
            guard digits.count == 16, digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }) else {
                throw CompresSAEError.format("'\(path)': the checksum \(Safetensors.checksumKey) is not 16 lowercase hex digits")
            }
            var found: Int? = nil
            var i = 0
            // O(header bytes x prefix length): the prefix is 14 bytes.
            while i + prefix.count + 16 < header.count {
                if header[i] == prefix[0], header[i..<(i + prefix.count)].elementsEqual(prefix) {
                    guard found == nil else {
                        throw CompresSAEError.format("'\(path)': the header spells \(Safetensors.checksumKey) more than once")
                    }
                    found = i + prefix.count
                }
                i += 1
            }
            guard let at = found, header[at..<(at + 16)].elementsEqual(digits), header[at + 16] == UInt8(ascii: "\"") else {
                throw CompresSAEError.format("'\(path)': the checksum \(Safetensors.checksumKey) is not written as the writer writes it")
            }
            return at
        }

        /// A digest started with the length field and the header (the
        /// checksum's digits read as "0"), ready for the tensors in file order.
        ///
        /// - Complexity: O(header bytes).
        func digest() -> PayloadDigest {
            var digest = PayloadDigest()
            withUnsafeBytes(of: UInt64(rawHeader.count).littleEndian) { digest.hasher.update($0) }
            var header = rawHeader
            if let at = checksumOffset {
                for i in at..<(at + 16) { header[i] = UInt8(ascii: "0") }
            }
            header.withUnsafeBytes { digest.hasher.update($0) }
            return digest
        }

        /// A JSON number that is a non-negative integer at most `limit`.
        private static func integer(_ value: JSONValue, limit: Int) -> Int? {
            guard case .number(let v) = value, v >= 0, v <= Double(limit), v == v.rounded(.towardZero) else { return nil }
            return Int(v)
        }

        private static func tensorInfo(name: String, _ value: JSONValue, dataSize: Int, path: String) throws -> TensorInfo {
            func bad(_ what: String) -> CompresSAEError { .format("'\(path)': tensor \"\(name)\": \(what)") }
            guard case .object(let fields) = value else { throw bad("the entry is not an object") }
            guard fields.count == 3, case .string(let dtype)? = value["dtype"] else {
                throw bad("missing or invalid dtype (an entry has exactly dtype, shape and data_offsets)")
            }
            guard case .array(let dims)? = value["shape"], dims.count <= 16 else { throw bad("missing or invalid shape") }
            guard case .array(let offsets)? = value["data_offsets"], offsets.count == 2 else {
                throw bad("missing or invalid data_offsets")
            }
            guard let width = elementSize(dtype) else { throw bad("unknown dtype \(dtype)") }
            // Integers up to 2^53 are exact in the parser's doubles.
            var shape: [Int] = []
            for dim in dims {
                guard let n = integer(dim, limit: 1 << 53) else { throw bad("shape entries must be non-negative integers") }
                shape.append(n)
            }
            guard let begin = integer(offsets[0], limit: 1 << 53), let end = integer(offsets[1], limit: 1 << 53) else {
                throw bad("data_offsets must be non-negative integers")
            }
            guard begin <= end, end <= dataSize else {
                throw bad("byte range \(begin)..<\(end) lies outside the data section of \(dataSize) bytes (truncated or corrupt file)")
            }
            // Elements times width, overflow-checked: a shape may claim any size.
            var bytes = width
            for dim in shape {
                let (p, overflow) = bytes.multipliedReportingOverflow(by: dim)
                guard !overflow else { throw bad("shape \(shape) of \(dtype) is too large") }
                bytes = p
            }
            guard bytes == end - begin else {
                throw bad("shape \(shape) of \(dtype) needs \(bytes) bytes, the file gives \(end - begin)")
            }
            return TensorInfo(dtype: dtype, shape: shape, begin: begin, end: end)
        }

        /// The tensors, in offset order, must cover the data section exactly
        /// once: no overlap (two names for one byte), no gap, nothing after.
        private static func checkTiling(_ tensors: [String: TensorInfo], dataSize: Int, path: String) throws {
            let ordered = tensors.sorted { ($0.value.begin, $0.value.end, $0.key) < ($1.value.begin, $1.value.end, $1.key) }
            var next = 0
            for (name, info) in ordered {
                guard info.begin == next else {
                    throw CompresSAEError.format(info.begin < next
                        ? "'\(path)': tensor \"\(name)\" at bytes \(info.begin)..<\(info.end) overlaps another tensor"
                        : "'\(path)': bytes \(next)..<\(info.begin) of the data section belong to no tensor")
                }
                next = info.end
            }
            guard next == dataSize else {
                throw CompresSAEError.format("'\(path)': the data section has \(dataSize - next) bytes after its last tensor")
            }
        }

        static func elementSize(_ dtype: String) -> Int? {
            switch dtype {
            case "F64", "I64", "U64", "C64": return 8
            case "F32", "I32", "U32": return 4
            case "F16", "BF16", "I16", "U16": return 2
            case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "F8_E8M0": return 1
            default: return nil
            }
        }

        /// Reads a tensor of the given dtype and shape as elements of `T`
        /// (whose size is the dtype's), verifying its place in the payload
        /// digest when one is given.
        ///
        /// - Throws: `format` if the tensor is missing, of another dtype or
        ///   shape, or (with a digest) not the next tensor in the file;
        ///   `outOfMemory` when its buffer cannot be had.
        /// - Complexity: O(tensor bytes).
        func read<T: BitwiseCopyable>(_ name: String, dtype: String, shape: [Int], as _: T.Type,
                                      digest: inout PayloadDigest?) throws -> [T] {
            let info = try requireTensor(name, dtype: dtype, shape: shape)
            let bytes = info.end - info.begin
            guard MemoryLayout<T>.stride == Self.elementSize(dtype), bytes % MemoryLayout<T>.stride == 0 else {
                throw CompresSAEError.format("'\(reader.path)': tensor \"\(name)\" cannot be read as \(T.self)")
            }
            if let d = digest, d.next != info.begin {
                throw CompresSAEError.format("'\(reader.path)': tensor \"\(name)\" is not where the writer puts it (tensors out of order)")
            }
            let out = try [T].fallible(count: bytes / MemoryLayout<T>.stride, "tensor \"\(name)\" of '\(reader.path)'") {
                (out: inout UnsafeMutableBufferPointer<T>) throws(CompresSAEError) in
                guard bytes > 0, let base = out.baseAddress else { return }
                try reader.read(into: UnsafeMutableRawPointer(base), count: bytes, at: dataStart + info.begin)
            }
            if digest != nil {
                out.withUnsafeBytes { digest!.hasher.update($0) }
                digest!.next = info.end
            }
            return out
        }

        /// Reads a float32 tensor of the given shape.
        func readFloat32(_ name: String, shape: [Int], digest: inout PayloadDigest?) throws -> [Float] {
            #if _endian(big)
            var out = try read(name, dtype: "F32", shape: shape, as: Float.self, digest: &digest)
            for i in out.indices { out[i] = Float(bitPattern: UInt32(littleEndian: out[i].bitPattern)) }
            return out
            #else
            return try read(name, dtype: "F32", shape: shape, as: Float.self, digest: &digest)
            #endif
        }

        func readFloat32(_ name: String, shape: [Int]) throws -> [Float] {
            var none: PayloadDigest? = nil
            return try readFloat32(name, shape: shape, digest: &none)
        }

        func readInt32(_ name: String, shape: [Int], digest: inout PayloadDigest?) throws -> [Int32] {
            try read(name, dtype: "I32", shape: shape, as: Int32.self, digest: &digest).map { Int32(littleEndian: $0) }
        }

        func readInt64(_ name: String, shape: [Int], digest: inout PayloadDigest?) throws -> [Int64] {
            try read(name, dtype: "I64", shape: shape, as: Int64.self, digest: &digest).map { Int64(littleEndian: $0) }
        }

        /// 16-bit tensors (U16 indices, F16 values kept as their bit patterns).
        func readUInt16(_ name: String, dtype: String, shape: [Int], digest: inout PayloadDigest?) throws -> [UInt16] {
            try read(name, dtype: dtype, shape: shape, as: UInt16.self, digest: &digest).map { UInt16(littleEndian: $0) }
        }

        /// Checks the digest of the file read against its recorded checksum:
        /// every byte of the data section must have been read.
        func verify(_ digest: PayloadDigest) throws {
            guard digest.next == dataSize else {
                throw CompresSAEError.format("'\(reader.path)': \(dataSize - digest.next) bytes of the data section belong to no tensor the format has")
            }
            guard let recorded = metadata[Safetensors.checksumKey], checksumOffset != nil else {
                throw CompresSAEError.format("'\(reader.path)' has no checksum (\(Safetensors.checksumKey))")
            }
            let actual = XXH64.hex(digest.hasher.finalize())
            guard recorded == actual else {
                throw CompresSAEError.format("'\(reader.path)' is damaged: its bytes do not match its checksum (recorded \(recorded), computed \(actual))")
            }
        }

        func requireTensor(_ name: String, dtype: String, shape expected: [Int]) throws -> TensorInfo {
            guard let info = tensors[name] else {
                throw CompresSAEError.format("'\(reader.path)' has no tensor \"\(name)\" (found: \(tensors.keys.sorted().prefix(20).joined(separator: ", ")))")
            }
            guard info.dtype == dtype else {
                throw CompresSAEError.format("'\(reader.path)': tensor \"\(name)\" has dtype \(info.dtype), expected \(dtype)")
            }
            guard info.shape == expected else {
                throw CompresSAEError.format("'\(reader.path)': tensor \"\(name)\" has shape \(info.shape), expected \(expected)")
            }
            return info
        }
    }

    /// One tensor to write: its raw little-endian bytes, handed out as often
    /// as asked (once for the checksum, once for the file).
    struct OutputTensor {
        let name: String
        let dtype: String
        let shape: [Int]
        let byteCount: Int
        let withBytes: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void

        private static func of<T: FixedWidthInteger>(_ name: String, dtype: String, shape: [Int], _ values: [T]) -> OutputTensor {
            OutputTensor(name: name, dtype: dtype, shape: shape, byteCount: values.count * MemoryLayout<T>.stride) { body in
                #if _endian(big)
                try values.map { $0.littleEndian }.withUnsafeBytes { try body($0) }
                #else
                try values.withUnsafeBytes { try body($0) }
                #endif
            }
        }

        static func int32(_ name: String, shape: [Int], _ values: [Int32]) -> OutputTensor {
            of(name, dtype: "I32", shape: shape, values)
        }

        static func int64(_ name: String, shape: [Int], _ values: [Int64]) -> OutputTensor {
            of(name, dtype: "I64", shape: shape, values)
        }

        /// A 16-bit tensor given as bit patterns: `dtype` is "U16" or "F16".
        static func uint16(_ name: String, dtype: String, shape: [Int], _ values: [UInt16]) -> OutputTensor {
            of(name, dtype: dtype, shape: shape, values)
        }

        /// A byte tensor: `dtype` is "U8" or "I8" (bytes as two's complement).
        static func bytes(_ name: String, dtype: String, shape: [Int], _ values: [UInt8]) -> OutputTensor {
            of(name, dtype: dtype, shape: shape, values)
        }

        static func float32(_ name: String, shape: [Int], _ values: [Float]) -> OutputTensor {
            OutputTensor(name: name, dtype: "F32", shape: shape, byteCount: values.count * 4) { body in
                #if _endian(big)
                try values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { try body($0) }
                #else
                try values.withUnsafeBytes { try body($0) }
                #endif
            }
        }
    }

    /// Writes tensors and metadata atomically to `path`, in the given order,
    /// with the file's checksum under `checksumKey` in the metadata.
    ///
    /// - Complexity: O(payload bytes): one pass to hash, one to write.
    static func write(_ tensors: [OutputTensor], metadata: [(String, String)], to path: String) throws {
        var header = "{\"__metadata__\":{"
        header += metadata.map { "\(jsonQuoted($0.0)):\(jsonQuoted($0.1)),"}.joined()
        let checksumAt = header.utf8.count + checksumPrefix.count
        header += String(decoding: checksumPrefix, as: UTF8.self) + String(repeating: "0", count: 16) + "\"}"
        var offset = 0
        for t in tensors {
            header += ",\(jsonQuoted(t.name)):{\"dtype\":\(jsonQuoted(t.dtype)),\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + t.byteCount)]}"
            offset += t.byteCount
        }
        header += "}"
        // Pad so that the data section starts 8-byte aligned.
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
        var digest = XXH64()
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { digest.update($0) }
        headerBytes.withUnsafeBytes { digest.update($0) }
        for t in tensors { try t.withBytes { digest.update($0) } }
        headerBytes.replaceSubrange(checksumAt..<(checksumAt + 16), with: Array(XXH64.hex(digest.finalize()).utf8))
        try FileIO.writeAtomically(to: path) { emit in
            let length = UInt64(headerBytes.count).littleEndian
            try withUnsafeBytes(of: length) { try emit($0) }
            try headerBytes.withUnsafeBytes { try emit($0) }
            for t in tensors { try t.withBytes(emit) }
        }
    }
}
