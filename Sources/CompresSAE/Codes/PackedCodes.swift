/// k-sparse codes in a packed byte layout: per row a float32 scale, the
/// latent indices bit-packed (fixed width or Elias-Fano), and the values
/// quantised to 8- or 4-bit signed levels of that scale. A row takes
/// `rowBytes` bytes, fixed by `h`, `k`, the bits and the index coding
/// (docs/file-formats.md, "Packed codes").
///
/// Packing loses only the values' precision: unpacked, a row holds the same
/// latents with values `level * scale`. Cosine rankings depend on the
/// levels alone (the scale cancels).
public struct PackedCodes: Sendable, Equatable {
    /// Number of rows.
    public let rows: Int
    /// Nonzeros per row.
    public var k: Int { layout.k }
    /// The latent dimension `h`.
    public var dim: Int { layout.dim }
    /// Bits per value level: 8 or 4.
    public var bits: Int { layout.bits }
    /// How the indices are coded.
    public var indexCoding: PackedIndexCoding { layout.coding }
    /// Bytes per packed row.
    public var rowBytes: Int { layout.rowBytes }
    /// `rows * rowBytes` bytes, row after row.
    public let payload: [UInt8]

    let layout: PackedLayout

    /// Bytes of the serialized form's header.
    public static let headerBytes = 28
    static let magic: [UInt8] = Array("CSAEPACK".utf8)
    static let formatVersion: UInt8 = 1

    /// The bytes of one packed row for codes of `dim` latents and `k`
    /// nonzeros, with `bits`-bit values and `indexCoding` (`nil`: the smaller).
    ///
    /// - Complexity: O(1).
    public static func rowBytes(dim: Int, k: Int, bits: Int, indexCoding: PackedIndexCoding? = nil) throws -> Int {
        try PackedLayout(dim: dim, k: k, bits: bits, coding: indexCoding).rowBytes
    }

    /// Packs codes: values quantised to `bits` (8 or 4) with a scale per row,
    /// indices in `indexCoding` (`nil`: whichever is smaller for `h` and `k`).
    ///
    /// - Throws: `invalidArgument` for indices out of range or repeated in
    ///   a row, non-finite values, or bad sizes; `outOfMemory`.
    /// - Complexity: O(rows (k log k + h / 2^L)).
    public init(_ codes: SparseCodes, bits: Int, indexCoding: PackedIndexCoding? = nil) throws {
        try InputValidation.checkCount(codes.indices.count, rows: codes.rows, cols: codes.k, name: "indices")
        try InputValidation.checkCount(codes.values.count, rows: codes.rows, cols: codes.k, name: "values")
        let layout = try PackedLayout(dim: codes.dim, k: codes.k, bits: bits, coding: indexCoding)
        let payload = try codes.indices.withUnsafeBufferPointer { ib in
            try codes.values.withUnsafeBufferPointer { vb in
                try Self.pack(indices: ib, values: vb, rows: codes.rows, layout: layout)
            }
        }
        self.init(rows: codes.rows, layout: layout, payload: payload)
    }

    init(rows: Int, layout: PackedLayout, payload: [UInt8]) {
        self.rows = rows
        self.layout = layout
        self.payload = payload
    }

    /// Packs `rows` codes given as buffers (see `init(_:bits:indexCoding:)`).
    static func pack(indices: UnsafeBufferPointer<Int32>, values: UnsafeBufferPointer<Float>, rows: Int,
                     layout: PackedLayout) throws -> [UInt8] {
        let total = try Size.product(rows, layout.rowBytes, what: "the packed codes")
        var out = try [UInt8].fallible(repeating: 0, count: total, "the packed codes")
        try out.withUnsafeMutableBufferPointer { try pack(indices: indices, values: values, rows: rows, layout: layout, into: $0) }
        return out
    }

    /// Packs `rows` codes into `out` (at least `rows * layout.rowBytes`
    /// bytes), after validating every code: on a throw nothing is written.
    ///
    /// - Complexity: O(rows (k log k + h / 2^L)).
    static func pack(indices: UnsafeBufferPointer<Int32>, values: UnsafeBufferPointer<Float>, rows: Int,
                     layout: PackedLayout, into out: UnsafeMutableBufferPointer<UInt8>) throws {
        guard rows > 0 else { return }
        let k = layout.k
        try SparseIndex.validateCodes(indices: indices.baseAddress!, values: values.baseAddress!, rows: rows, k: k,
                                      latentDim: layout.dim, what: "code")
        guard out.count / layout.rowBytes >= rows else {
            throw CompresSAEError.invalid("\(out.count) bytes cannot hold \(rows) packed rows of \(layout.rowBytes) bytes")
        }
        let order = try FallibleBuffer<Int>(count: k, "packing scratch")
        let levels = try FallibleBuffer<Int8>(count: k, "packing scratch")
        for i in 0..<rows {
            layout.packRow(indices: indices.baseAddress! + i * k, values: values.baseAddress! + i * k,
                           into: out.baseAddress! + i * layout.rowBytes, order: order.base, levels: levels.base)
        }
    }

    /// The codes with their values dequantised (`level * scale`), entries of
    /// a row ordered by decreasing `|value|`, ties by ascending index.
    ///
    /// - Complexity: O(rows (k log k + h / 2^L)).
    public func unpack() throws -> SparseCodes {
        guard rows > 0 else { return SparseCodes(rows: 0, k: k, dim: dim, indices: [], values: []) }
        let count = try Size.product(rows, k, what: "the unpacked codes")
        var indices = try [Int32].fallible(repeating: 0, count: count, "the unpacked indices")
        var values = try [Float].fallible(repeating: 0, count: count, "the unpacked values")
        try payload.withUnsafeBufferPointer { pb in
            try indices.withUnsafeMutableBufferPointer { ib in
                try values.withUnsafeMutableBufferPointer { vb in
                    try Self.unpack(payload: pb.baseAddress!, rows: rows, layout: layout,
                                    indices: ib.baseAddress!, values: vb.baseAddress!)
                }
            }
        }
        return SparseCodes(rows: rows, k: k, dim: dim, indices: indices, values: values)
    }

    /// Unpacks and verifies `rows` packed rows (`PackedLayout.unpackRow`).
    static func unpack(payload: UnsafePointer<UInt8>, rows: Int, layout: PackedLayout,
                       indices: UnsafeMutablePointer<Int32>, values: UnsafeMutablePointer<Float>) throws {
        let k = layout.k
        let order = try FallibleBuffer<Int>(count: k, "unpacking scratch")
        let levels = try FallibleBuffer<Int8>(count: k, "unpacking scratch")
        for i in 0..<rows {
            try layout.unpackRow(payload + i * layout.rowBytes, rowNumber: i, indices: indices + i * k,
                                 values: values + i * k, order: order.base, levels: levels.base)
        }
    }

    // MARK: - Serialized form

    /// The serialized form: a 28-byte header (magic `CSAEPACK`, format
    /// version 1, bits, index coding, a zero byte, k and h as little-endian
    /// uint32, rows as little-endian uint64), then the payload.
    ///
    /// - Complexity: O(rows rowBytes).
    public func serialized() throws -> [UInt8] {
        let total = try Size.sum(Self.headerBytes, payload.count, what: "the serialized packed codes")
        return try [UInt8].fallible(count: total, "the serialized packed codes") { out in
            Self.writeHeader(into: out.baseAddress!, rows: rows, layout: layout)
            _ = UnsafeMutableBufferPointer(rebasing: out[Self.headerBytes...]).initialize(fromContentsOf: payload)
        }
    }

    /// Reads a serialized form, verifying its header, its size and every
    /// row (a buffer that fails any check throws; none is trusted unread).
    ///
    /// - Throws: `format` for a damaged or foreign buffer; `outOfMemory`.
    /// - Complexity: O(rows (k log k + h / 2^L)).
    public init(serialized bytes: [UInt8]) throws {
        let (rows, layout) = try bytes.withUnsafeBytes { try Self.readHeader($0) }
        // Every row is verified before the payload is copied out of `bytes`.
        if rows > 0 {
            let count = try Size.product(rows, layout.k, what: "the packed codes")
            let indices = try FallibleBuffer<Int32>(count: count, "the unpacked indices")
            let values = try FallibleBuffer<Float>(count: count, "the unpacked values")
            try bytes.withUnsafeBufferPointer { b in
                try Self.unpack(payload: b.baseAddress! + Self.headerBytes, rows: rows, layout: layout,
                                indices: indices.base, values: values.base)
            }
        }
        self.init(rows: rows, layout: layout, payload: Array(bytes[Self.headerBytes...]))
    }

    static func writeHeader(into out: UnsafeMutablePointer<UInt8>, rows: Int, layout: PackedLayout) {
        for (b, byte) in magic.enumerated() { out[b] = byte }
        out[8] = formatVersion
        out[9] = UInt8(layout.bits)
        out[10] = UInt8(layout.coding.rawValue)
        out[11] = 0
        for b in 0..<4 { out[12 + b] = UInt8(truncatingIfNeeded: layout.k >> (8 * b)) }
        for b in 0..<4 { out[16 + b] = UInt8(truncatingIfNeeded: layout.dim >> (8 * b)) }
        for b in 0..<8 { out[20 + b] = UInt8(truncatingIfNeeded: rows >> (8 * b)) }
    }

    /// The rows and layout a serialized buffer declares, after checking the
    /// header and that the buffer holds exactly `28 + rows * rowBytes` bytes.
    ///
    /// - Throws: `format`.
    /// - Complexity: O(1).
    static func readHeader(_ bytes: UnsafeRawBufferPointer) throws(CompresSAEError) -> (rows: Int, layout: PackedLayout) {
        guard bytes.count >= headerBytes, bytes[0..<8].elementsEqual(magic) else {
            throw .format("not packed codes (no CSAEPACK header)")
        }
        guard bytes[8] == formatVersion else {
            throw .format("packed codes format version \(bytes[8]); this library reads version \(formatVersion)")
        }
        guard bytes[11] == 0 else { throw .format("packed codes header: reserved byte 11 is \(bytes[11]), not 0") }
        guard let coding = PackedIndexCoding(rawValue: Int32(bytes[10])) else {
            throw .format("packed codes header: unknown index coding \(bytes[10])")
        }
        var k = 0, dim = 0
        var rows: UInt64 = 0
        for b in 0..<4 { k |= Int(bytes[12 + b]) << (8 * b) }
        for b in 0..<4 { dim |= Int(bytes[16 + b]) << (8 * b) }
        for b in 0..<8 { rows |= UInt64(bytes[20 + b]) << UInt64(8 * b) }
        let layout: PackedLayout
        do {
            layout = try PackedLayout(dim: dim, k: k, bits: Int(bytes[9]), coding: coding)
        } catch {
            throw .format("packed codes header: \(error.message)")
        }
        let payloadBytes = bytes.count - headerBytes
        let (expected, overflow) = Int(clamping: rows).multipliedReportingOverflow(by: layout.rowBytes)
        guard rows <= UInt64(payloadBytes), !overflow, payloadBytes == expected else {
            throw .format("packed codes: \(payloadBytes) payload bytes; the header declares \(rows) rows of \(layout.rowBytes) bytes")
        }
        return (Int(rows), layout)
    }
}

extension SparseCodes {
    /// Packs the codes (see `PackedCodes.init(_:bits:indexCoding:)`).
    public func packed(bits: Int, indexCoding: PackedIndexCoding? = nil) throws -> PackedCodes {
        try PackedCodes(self, bits: bits, indexCoding: indexCoding)
    }
}
