/// The safetensors container: an 8-byte little-endian header length, a JSON
/// header (tensor name -> dtype, shape, byte range; optional `__metadata__`
/// of string pairs), then the raw little-endian tensor bytes.
/// Used for models (compatible with PyTorch's `safetensors.torch.save_file`)
/// and for anything else the library persists.
enum Safetensors {
    /// Largest header accepted, as in the reference implementation of the format.
    static let maxHeaderBytes = 100_000_000

    struct TensorInfo {
        let dtype: String
        let shape: [Int]
        let begin: Int  // byte offset from the start of the data section
        let end: Int
    }

    /// A validated, opened safetensors file: header parsed, every byte range
    /// checked against the file size.
    struct File {
        let reader: FileIO.Reader
        let metadata: [String: String]
        let tensors: [String: TensorInfo]
        let dataStart: Int

        init(path: String) throws {
            let reader = try FileIO.Reader(path: path)
            self.reader = reader
            let size = reader.size
            guard size >= 8 else {
                throw CompresSAEError.format("'\(path)' is not a safetensors file: \(size) bytes, shorter than its 8-byte header length")
            }
            var lengthLE: UInt64 = 0
            try reader.read(into: &lengthLE, count: 8, at: 0)
            let headerLength = UInt64(littleEndian: lengthLE)
            guard headerLength >= 2, headerLength <= UInt64(maxHeaderBytes) else {
                throw CompresSAEError.format("'\(path)': header length \(headerLength) is outside 2...\(maxHeaderBytes) bytes (corrupt or not a safetensors file)")
            }
            guard Int(headerLength) <= size - 8 else {
                throw CompresSAEError.format("'\(path)': the 8-byte length field plus a header of \(headerLength) bytes exceed the file size \(size) (truncated or corrupt)")
            }
            var header = [UInt8](repeating: 0, count: Int(headerLength))
            try header.withUnsafeMutableBytes { try reader.read(into: $0.baseAddress!, count: Int(headerLength), at: 8) }
            // Writers pad the header with spaces to an 8-byte boundary.
            while let last = header.last, last == 0x20 || last == 0 { header.removeLast() }
            let json: JSONValue
            do { json = try JSONParser.parse(header) } catch let e as CompresSAEError {
                throw CompresSAEError.format("'\(path)': \(e.message)")
            }
            guard case .object(let members) = json else {
                throw CompresSAEError.format("'\(path)': the header is not a JSON object")
            }
            dataStart = 8 + Int(headerLength)
            let dataSize = size - dataStart
            var metadata: [String: String] = [:]
            var tensors: [String: TensorInfo] = [:]
            for (name, value) in members {
                if name == "__metadata__" {
                    guard case .object(let pairs) = value else {
                        throw CompresSAEError.format("'\(path)': __metadata__ is not an object")
                    }
                    for (key, v) in pairs {
                        guard case .string(let s) = v else {
                            throw CompresSAEError.format("'\(path)': __metadata__[\"\(key)\"] is not a string")
                        }
                        metadata[key] = s
                    }
                    continue
                }
                tensors[name] = try Self.tensorInfo(name: name, value, dataSize: dataSize, path: path)
            }
            self.metadata = metadata
            self.tensors = tensors
        }

        private static func tensorInfo(name: String, _ value: JSONValue, dataSize: Int, path: String) throws -> TensorInfo {
            func bad(_ what: String) -> CompresSAEError { .format("'\(path)': tensor \"\(name)\": \(what)") }
            guard case .string(let dtype)? = value["dtype"] else { throw bad("missing or invalid dtype") }
            guard case .array(let dims)? = value["shape"] else { throw bad("missing or invalid shape") }
            guard case .array(let offsets)? = value["data_offsets"], offsets.count == 2 else {
                throw bad("missing or invalid data_offsets")
            }
            var shape: [Int] = []
            for dim in dims {
                guard case .number(let v) = dim, v >= 0, v <= Double(1 << 40), v == v.rounded() else {
                    throw bad("shape entries must be non-negative integers")
                }
                shape.append(Int(v))
            }
            var bounds: [Int] = []
            for offset in offsets {
                guard case .number(let v) = offset, v >= 0, v <= Double(1 << 50), v == v.rounded() else {
                    throw bad("data_offsets must be non-negative integers")
                }
                bounds.append(Int(v))
            }
            guard bounds[0] <= bounds[1], bounds[1] <= dataSize else {
                throw bad("byte range \(bounds[0])..<\(bounds[1]) lies outside the data section of \(dataSize) bytes (truncated or corrupt file)")
            }
            var elements = 1
            for dim in shape {
                let (p, overflow) = elements.multipliedReportingOverflow(by: dim)
                guard !overflow else { throw bad("shape \(shape) is too large") }
                elements = p
            }
            if let width = elementSize(dtype) {
                guard elements * width == bounds[1] - bounds[0] else {
                    throw bad("shape \(shape) of \(dtype) needs \(elements * width) bytes, the file gives \(bounds[1] - bounds[0])")
                }
            }
            return TensorInfo(dtype: dtype, shape: shape, begin: bounds[0], end: bounds[1])
        }

        static func elementSize(_ dtype: String) -> Int? {
            switch dtype {
            case "F64", "I64", "U64": return 8
            case "F32", "I32", "U32": return 4
            case "F16", "BF16", "I16", "U16": return 2
            case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2": return 1
            default: return nil
            }
        }

        /// Reads a float32 tensor of the given shape.
        ///
        /// - Throws: if the tensor is missing, is not F32, or has another shape.
        func readFloat32(_ name: String, shape expected: [Int]) throws -> [Float] {
            let info = try requireTensor(name, dtype: "F32", shape: expected)
            let count = (info.end - info.begin) / 4
            var out = [Float](repeating: 0, count: count)
            try out.withUnsafeMutableBytes {
                try reader.read(into: $0.baseAddress!, count: info.end - info.begin, at: dataStart + info.begin)
            }
            #if _endian(big)
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: out[i].bitPattern)) }
            #endif
            return out
        }

        func readInt32(_ name: String, shape: [Int]) throws -> [Int32] {
            try readBytes(name, dtype: "I32", shape: shape).withUnsafeBytes { raw in
                (0..<(raw.count / 4)).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
            }
        }

        func readInt64(_ name: String, shape: [Int]) throws -> [Int64] {
            try readBytes(name, dtype: "I64", shape: shape).withUnsafeBytes { raw in
                (0..<(raw.count / 8)).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
            }
        }

        /// 16-bit tensors (U16 indices, F16 values kept as their bit patterns).
        func readUInt16(_ name: String, dtype: String, shape: [Int]) throws -> [UInt16] {
            try readBytes(name, dtype: dtype, shape: shape).withUnsafeBytes { raw in
                (0..<(raw.count / 2)).map { UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
            }
        }

        /// Reads a tensor's raw bytes after checking its dtype and shape.
        func readBytes(_ name: String, dtype: String, shape expected: [Int]) throws -> [UInt8] {
            let info = try requireTensor(name, dtype: dtype, shape: expected)
            var out = [UInt8](repeating: 0, count: info.end - info.begin)
            try out.withUnsafeMutableBytes {
                try reader.read(into: $0.baseAddress!, count: info.end - info.begin, at: dataStart + info.begin)
            }
            return out
        }

        func requireTensor(_ name: String, dtype: String, shape expected: [Int]) throws -> TensorInfo {
            guard let info = tensors[name] else {
                throw CompresSAEError.format("'\(reader.path)' has no tensor \"\(name)\" (found: \(tensors.keys.sorted().joined(separator: ", ")))")
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

    /// One tensor to write: its raw little-endian bytes.
    struct OutputTensor {
        let name: String
        let dtype: String
        let shape: [Int]
        let byteCount: Int
        let writeBytes: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void

        static func int32(_ name: String, shape: [Int], _ values: [Int32]) -> OutputTensor {
            OutputTensor(name: name, dtype: "I32", shape: shape, byteCount: values.count * 4) { emit in
                try values.map { $0.littleEndian }.withUnsafeBytes { try emit($0) }
            }
        }

        static func int64(_ name: String, shape: [Int], _ values: [Int64]) -> OutputTensor {
            OutputTensor(name: name, dtype: "I64", shape: shape, byteCount: values.count * 8) { emit in
                try values.map { $0.littleEndian }.withUnsafeBytes { try emit($0) }
            }
        }

        /// A 16-bit tensor given as bit patterns: `dtype` is "U16" or "F16".
        static func uint16(_ name: String, dtype: String, shape: [Int], _ values: [UInt16]) -> OutputTensor {
            OutputTensor(name: name, dtype: dtype, shape: shape, byteCount: values.count * 2) { emit in
                try values.map { $0.littleEndian }.withUnsafeBytes { try emit($0) }
            }
        }

        static func float32(_ name: String, shape: [Int], _ values: [Float]) -> OutputTensor {
            OutputTensor(name: name, dtype: "F32", shape: shape, byteCount: values.count * 4) { emit in
                #if _endian(big)
                let le = values.map { $0.bitPattern.littleEndian }
                try le.withUnsafeBytes { try emit($0) }
                #else
                try values.withUnsafeBytes { try emit($0) }
                #endif
            }
        }
    }

    /// Writes tensors and metadata atomically to `path`.
    static func write(_ tensors: [OutputTensor], metadata: [(String, String)], to path: String) throws {
        var header = "{\"__metadata__\":{"
        header += metadata.map { "\(jsonQuoted($0.0)):\(jsonQuoted($0.1))" }.joined(separator: ",")
        header += "}"
        var offset = 0
        for t in tensors {
            header += ",\(jsonQuoted(t.name)):{\"dtype\":\(jsonQuoted(t.dtype)),\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + t.byteCount)]}"
            offset += t.byteCount
        }
        header += "}"
        // Pad so that the data section starts 8-byte aligned.
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
        try FileIO.writeAtomically(to: path) { emit in
            let length = UInt64(headerBytes.count).littleEndian
            try withUnsafeBytes(of: length) { try emit($0) }
            try headerBytes.withUnsafeBytes { try emit($0) }
            for t in tensors { try t.writeBytes(emit) }
        }
    }
}
