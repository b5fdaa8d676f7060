import CCompresSAE

// The params structs of the C ABI grow by appending fields. Each begins with
// `uint32_t struct_size` (the caller's sizeof) and `int32_t num_threads`;
// the library reads the caller's first struct_size bytes over the values of
// the fields such a caller cannot know: those that keep the behaviour of the
// header it was built with (a term added later stays off), not necessarily
// today's defaults.

/// A params struct of the C ABI whose first field is `struct_size`.
protocol VersionedParams {
    /// The caller's sizeof, the struct's first field.
    var struct_size: UInt32 { get set }
    /// The struct's name in the header, for messages.
    static var cName: String { get }
    /// The header's inline helper that returns the defaults, for messages.
    static var defaultsHelper: String { get }
    /// Its size in ABI version 6, the first version with `struct_size`: the
    /// smallest struct_size a caller can pass. Written as the end of the
    /// struct's last field of that version, so that appending fields leaves it.
    static var firstVersionSize: Int { get }
    /// The defaults, as the struct's `defaultsHelper` returns them.
    static var defaults: Self { get }
    /// What a caller whose struct ends before a field gets for it: the value
    /// that keeps the behaviour of the header the caller was built with.
    static var missingFields: Self { get }
}

/// Bytes per unit of struct growth: every field is 8 bytes or one of a pair
/// of 4-byte fields, so the struct of every version is a multiple of 8 bytes.
let paramsStructGranule = 8

extension VersionedParams {
    /// The size of the struct this library was built with.
    static var currentSize: Int { MemoryLayout<Self>.size }

    /// The settings a caller passed: the defaults for `nil`, else
    /// `missingFields` overwritten by the caller's first `struct_size` bytes.
    ///
    /// - Throws: `.invalidArgument` when `struct_size` is not a multiple of
    ///   8 in `firstVersionSize...currentSize`: not set from the
    ///   `defaultsHelper`, or written by a caller built against a newer
    ///   header than this library.
    static func read(_ pointer: UnsafePointer<Self>?) throws -> Self {
        guard let pointer else { return defaults }
        let raw = UnsafeRawPointer(pointer)
        let size = Int(raw.loadUnaligned(as: UInt32.self))
        try checkSize(size)
        var value = missingFields
        withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: size)) }
        return value
    }

    /// Writes the first `size` bytes of `value` (the caller's struct) to
    /// `pointer`, with struct_size = `size`.
    ///
    /// - Throws: `.invalidArgument` for a NULL pointer or a size `read` refuses.
    static func write(_ value: Self, to pointer: UnsafeMutablePointer<Self>?, size: UInt32) throws {
        guard let pointer else { throw CompresSAEError.invalid("the \(cName) pointer is NULL") }
        try checkSize(Int(size))
        var sized = value
        sized.struct_size = size
        withUnsafeBytes(of: &sized) { UnsafeMutableRawPointer(pointer).copyMemory(from: $0.baseAddress!, byteCount: Int(size)) }
    }

    /// Refuses a struct_size this library cannot read.
    static func checkSize(_ size: Int) throws {
        guard size % paramsStructGranule == 0, size >= firstVersionSize, size <= currentSize else {
            throw CompresSAEError.invalid(
                "\(cName).struct_size is \(size): get the struct from \(defaultsHelper) (which sets it); "
                + "this library accepts \(firstVersionSize)...\(currentSize) bytes in steps of \(paramsStructGranule)"
                + (size > currentSize ? " (the caller was built against a newer header than this library)" : ""))
        }
    }
}

extension VersionedParams {
    /// Structs whose appended fields change no behaviour when they take
    /// their defaults.
    static var missingFields: Self { defaults }
}

extension csae_train_params: VersionedParams {
    static var cName: String { "csae_train_params" }
    static var defaultsHelper: String { "csae_train_default_params()" }
    static var firstVersionSize: Int { MemoryLayout<Self>.offset(of: \.validation_steps)! + MemoryLayout<Int64>.size }
    static var defaults: Self { Self(TrainingOptions()) }
    /// The dead-latent term (ABI 7) stays off for callers built against the
    /// ABI 6 header, whose recipes, the reference one included, did not have it.
    static var missingFields: Self {
        var p = defaults
        p.dead_latent_aux_weight = 0
        return p
    }
}

extension csae_encode_params: VersionedParams {
    static var cName: String { "csae_encode_params" }
    static var defaultsHelper: String { "csae_encode_default_params()" }
    static var firstVersionSize: Int { MemoryLayout<Self>.offset(of: \.k)! + MemoryLayout<Int64>.size }
    static var defaults: Self {
        var p = Self()
        p.struct_size = UInt32(currentSize)
        p.num_threads = 0
        p.k = 0
        return p
    }
}

extension csae_search_params: VersionedParams {
    static var cName: String { "csae_search_params" }
    static var defaultsHelper: String { "csae_search_default_params()" }
    static var firstVersionSize: Int { MemoryLayout<Self>.offset(of: \.query_k)! + MemoryLayout<Int64>.size }
    /// Results per query when the caller does not say.
    static let defaultResultCount: Int64 = 100
    static var defaults: Self {
        var p = Self()
        p.struct_size = UInt32(currentSize)
        p.num_threads = 0
        p.n = defaultResultCount
        p.query_k = 0
        p.candidates = 0
        return p
    }
}

extension csae_row_source: VersionedParams {
    static var cName: String { "csae_row_source" }
    static var defaultsHelper: String { "csae_row_source_defaults()" }
    static var firstVersionSize: Int { MemoryLayout<Self>.offset(of: \.user_data)! + MemoryLayout<UnsafeMutableRawPointer?>.size }
    /// Held-out rows a stream keeps in memory when the caller does not say.
    static var defaultMaxValidationRows: Int64 { Int64(CompresSAEModel.defaultMaxValidationRows) }
    static var defaults: Self {
        Self(struct_size: UInt32(currentSize), kind: Int32(CSAE_SOURCE_ROWS.rawValue),
             rows: 0, block_rows: 1, max_validation_rows: defaultMaxValidationRows,
             read_rows: nil, read_stream: nil, user_data: nil)
    }
}
