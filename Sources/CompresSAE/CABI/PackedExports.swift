import CCompresSAE

// The C ABI of packed codes (PackedCodes): checks and conversions only.

/// The index coding a C caller asked for: CSAE_CODING_AUTO (nil, the smaller one) or a coding.
private func indexCoding(_ coding: Int32) throws -> PackedIndexCoding? {
    if coding == 0 { return nil }
    guard let c = PackedIndexCoding(rawValue: coding) else {
        throw CompresSAEError.invalid(
            "coding must be CSAE_CODING_AUTO (0), CSAE_CODING_FIXED_WIDTH (1) or CSAE_CODING_ELIAS_FANO (2), got \(coding)")
    }
    return c
}

/// Sizes of packed codes (docs/file-formats.md, "Packed codes"): a row takes
/// 4 + ceil((index bits + k * bits) / 8) bytes, the serialized form 28 + n * row bytes.
/// @param h           latent dimension, 1 <= h <= INT32_MAX
/// @param k           nonzeros per row, 1 <= k <= h
/// @param bits        bits per value level: 8 or 4
/// @param coding      a csae_index_coding; CSAE_CODING_AUTO picks the smaller
/// @param n           rows (>= 0)
/// @param row_bytes   receives the bytes of one packed row (may be NULL)
/// @param total_bytes receives the bytes of the serialized form of n rows (may be NULL)
/// @param coding_used receives the coding chosen (may be NULL)
/// @return CSAE_OK or CSAE_ERR_INVALID_ARGUMENT
@c public func csae_packed_size(
    _ h: Int64, _ k: Int64, _ bits: Int32, _ coding: Int32, _ n: Int64,
    _ row_bytes: UnsafeMutablePointer<Int64>?, _ total_bytes: UnsafeMutablePointer<Int64>?,
    _ coding_used: UnsafeMutablePointer<Int32>?
) -> Int32 {
    withStatus {
        guard h >= 1, h <= Int64(Int32.max) else { throw CompresSAEError.invalid("h must be in 1...\(Int32.max), got \(h)") }
        guard k >= 1, k <= h else { throw CompresSAEError.invalid("k must be in 1...h (\(h)), got \(k)") }
        guard n >= 0 else { throw CompresSAEError.invalid("n must be >= 0, got \(n)") }
        let layout = try PackedLayout(dim: Int(h), k: Int(k), bits: Int(bits), coding: try indexCoding(coding))
        let payload = try Size.product(Int(n), layout.rowBytes, what: "packed codes of \(n) rows")
        let total = try Size.sum(PackedCodes.headerBytes, payload, what: "packed codes of \(n) rows")
        row_bytes?.pointee = Int64(layout.rowBytes)
        total_bytes?.pointee = Int64(total)
        coding_used?.pointee = layout.coding.rawValue
    }
}

/// Packs n codes of k nonzeros into the serialized packed form: values
/// quantised to bits-bit signed levels with a float32 scale per row
/// (scale = max |value| / (2^(bits-1) - 1)), indices ascending in the coding.
/// @param indices   n*k latent indices in [0, h), none twice in a row
/// @param values    n*k finite values
/// @param n         rows (>= 0; 0 writes the 28-byte header alone, and indices
///                  and values may be NULL)
/// @param out       receives the serialized form (csae_packed_size's total_bytes)
/// @param capacity  size of out in bytes; at least total_bytes
/// @param written   receives the bytes written (may be NULL)
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT (also a capacity below the
///         size), or CSAE_ERR_OUT_OF_MEMORY
@c public func csae_codes_pack(
    _ indices: UnsafePointer<Int32>?, _ values: UnsafePointer<Float>?, _ n: Int64, _ k: Int64, _ h: Int64,
    _ bits: Int32, _ coding: Int32, _ out: UnsafeMutablePointer<UInt8>?, _ capacity: Int64,
    _ written: UnsafeMutablePointer<Int64>?
) -> Int32 {
    withStatus {
        // n = 0 packs the header alone (indices and values may then be NULL).
        guard n >= 0 else { throw CompresSAEError.invalid("n must be >= 0, got \(n)") }
        let count = n == 0 ? 0 : try elementCount(rows: n, cols: k, colsName: "k")
        guard h >= 1, h <= Int64(Int32.max) else { throw CompresSAEError.invalid("h must be in 1...\(Int32.max), got \(h)") }
        guard k >= 1, k <= h else { throw CompresSAEError.invalid("k must be in 1...h (\(h)), got \(k)") }
        let layout = try PackedLayout(dim: Int(h), k: Int(k), bits: Int(bits), coding: try indexCoding(coding))
        let total = try Size.sum(PackedCodes.headerBytes, try Size.product(Int(n), layout.rowBytes, what: "packed codes"),
                                 what: "packed codes")
        let output = try requireMutableBuffer(out, "out", count: capacity, "bytes")
        guard capacity >= Int64(total) else {
            throw CompresSAEError.invalid("out holds \(capacity) bytes; \(n) packed rows need \(total)")
        }
        if n > 0 {
            // Straight into the caller's buffer, after every code is validated.
            try PackedCodes.pack(indices: try requireBuffer(indices, "indices", count: count, "n*k"),
                                 values: try requireBuffer(values, "values", count: count, "n*k"),
                                 rows: Int(n), layout: layout,
                                 into: UnsafeMutableBufferPointer(rebasing: output[PackedCodes.headerBytes..<total]))
        }
        PackedCodes.writeHeader(into: output.baseAddress!, rows: Int(n), layout: layout)
        written?.pointee = Int64(total)
    }
}

/// Reads the header of a serialized packed form and checks its size (O(1);
/// the rows are verified by csae_codes_unpack).
/// @param data    the serialized form
/// @param size    its bytes
/// @param n, k, h receive rows, nonzeros per row and the latent dimension (each may be NULL)
/// @param bits    receives the bits per value level (may be NULL)
/// @param coding  receives the index coding, CSAE_CODING_FIXED_WIDTH or
///                CSAE_CODING_ELIAS_FANO (may be NULL)
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT (NULL data), or CSAE_ERR_FORMAT
@c public func csae_packed_info(
    _ data: UnsafePointer<UInt8>?, _ size: Int64, _ n: UnsafeMutablePointer<Int64>?,
    _ k: UnsafeMutablePointer<Int64>?, _ h: UnsafeMutablePointer<Int64>?, _ bits: UnsafeMutablePointer<Int32>?,
    _ coding: UnsafeMutablePointer<Int32>?
) -> Int32 {
    withStatus {
        let bytes = try requireBuffer(data, "data", count: size, "bytes")
        let (rows, layout) = try PackedCodes.readHeader(UnsafeRawBufferPointer(bytes))
        n?.pointee = Int64(rows)
        k?.pointee = Int64(layout.k)
        h?.pointee = Int64(layout.dim)
        bits?.pointee = Int32(layout.bits)
        coding?.pointee = layout.coding.rawValue
    }
}

/// Unpacks a serialized packed form into n*k indices and dequantised values
/// (level * scale), each row ordered by decreasing |value| (ties: lower index
/// first). Every row is verified first against what the packer writes; a
/// damaged or crafted buffer fails with CSAE_ERR_FORMAT, having written
/// nothing the caller should use.
/// @param data      the serialized form
/// @param size      its bytes
/// @param indices   receives n*k latent indices
/// @param values    receives n*k values
/// @param capacity  size of indices and of values, in elements (each); at least n*k
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT (NULL pointers, capacity too
///         small), CSAE_ERR_FORMAT, or CSAE_ERR_OUT_OF_MEMORY
@c public func csae_codes_unpack(
    _ data: UnsafePointer<UInt8>?, _ size: Int64, _ indices: UnsafeMutablePointer<Int32>?,
    _ values: UnsafeMutablePointer<Float>?, _ capacity: Int64
) -> Int32 {
    withStatus {
        let bytes = try requireBuffer(data, "data", count: size, "bytes")
        let (rows, layout) = try PackedCodes.readHeader(UnsafeRawBufferPointer(bytes))
        let count = try Size.product(rows, layout.k, what: "the unpacked codes")
        let idx = try requireMutableBuffer(indices, "indices", count: capacity, "elements")
        let val = try requireMutableBuffer(values, "values", count: capacity, "elements")
        guard capacity >= Int64(count) else {
            throw CompresSAEError.invalid("capacity is \(capacity); \(rows) rows of k = \(layout.k) need \(count)")
        }
        guard rows > 0 else { return }
        try PackedCodes.unpack(payload: bytes.baseAddress! + PackedCodes.headerBytes, rows: rows, layout: layout,
                               indices: idx.baseAddress!, values: val.baseAddress!)
    }
}
