/// A searchable collection of k-sparse codes, in one of the two retrieval
/// modes of CompresSAE (docs/maths.md, "Retrieval").
///
/// - `sparse`: cosine between sparse codes, served by an inverted index (one
///   posting list per latent: item ids ascending, values pre-divided by the
///   item's code norm). A query touches only the k posting lists of its own
///   latents. Exact: the same ranking as brute-force cosine over the codes.
/// - `reconstructed`: cosine between decoded vectors `x_hat = s @ decoder_w`,
///   computed in O(k) per item as `(u . s_y) / (|x_hat_q| |x_hat_y|)` with
///   `u = decoder_w @ x_hat_q` once per query and `|x_hat_y|` stored at add
///   time. A dense query is used as is (asymmetric search: `u = decoder_w @ q`).
///
/// Items are numbered in insertion order from 0. Search results are ordered
/// by score, then by lower id. Adds and searches may come from several
/// threads; adds wait for running searches and vice versa.
public final class SparseIndex: @unchecked Sendable {
    /// Which similarity the index serves.
    public enum Mode: Int32, Sendable {
        case sparse = 0
        case reconstructed = 1

        var name: String { self == .sparse ? "sparse" : "reconstructed" }
    }

    /// How the codes are stored.
    public enum Storage: Int32, Sendable {
        /// float32 values: int32 latent index + value per nonzero in
        /// reconstructed mode (8 bytes; the paper's CSR); in sparse mode's
        /// posting lists a 16-bit tile-relative item id + value (6 bytes).
        case standard = 0
        /// Half-precision values (and uint16 latent indices in reconstructed
        /// mode): 4 bytes per nonzero in either mode. Scores are then approximate.
        case compact = 1
        /// 8-bit value levels with a float32 scale per item (the packed codes'
        /// quantiser, `PackedCodes`): in reconstructed mode a uint16 latent
        /// index + 1 byte per nonzero, in sparse mode's posting lists a 16-bit
        /// item id + 1 byte; plus 4 bytes per item. Exact for the quantised codes.
        case packed8 = 2
        /// 4-bit value levels (half a byte per nonzero), otherwise as `packed8`.
        case packed4 = 3

        var name: String { ["standard", "compact", "packed8", "packed4"][Int(rawValue)] }

        /// Bits per value level of a packed storage, else `nil`.
        var levelBits: Int? { self == .packed8 ? 8 : self == .packed4 ? 4 : nil }
    }

    public let model: CompresSAEModel
    public let mode: Mode
    public let storage: Storage

    let lock = ReadWriteLock()
    var state: State

    /// Everything mutable, guarded by `lock`.
    struct State {
        /// Nonzeros per code, fixed by the first add.
        var k: Int? = nil
        var count = 0
        /// The model's `weightsVersion` when the first items were added.
        var modelVersion: Int? = nil

        // Reconstructed mode: codes row by row, values divided by |x_hat_y|.
        var rowIndices: [Int32] = []
        var rowIndices16: [UInt16] = []
        var rowValues: [Float] = []
        var rowValues16: [UInt16] = []

        // Sparse mode: posting lists (CSC), values divided by |s_y|. Item ids
        // are stored relative to their search tile (`id - tile * searchTile`,
        // which fits 16 bits); `tileOffsets` says where each tile starts.
        var postingStart: [Int] = []
        var postingLocalIDs: [UInt16] = []
        var postingValues: [Float] = []
        var postingValues16: [UInt16] = []
        /// Items added since the posting lists were last built (row-major,
        /// already scaled), merged in before the next search.
        var pendingIndices: [Int32] = []
        var pendingValues: [Float] = []
        var pendingCount = 0
        /// Per posting list, where each search tile of ids starts in it,
        /// relative to the list's start: `tileOffsets[latent * (tiles + 1) + tile]`
        /// (the last one is the list's length); rebuilt with the lists.
        var tileOffsets: [Int32] = []

        // Packed storages (SparseIndex+Packed.swift): value levels and a
        // scale per item; reconstructed mode keeps its indices in `rowIndices16`,
        // sparse mode's pending values are the levels.
        var rowLevels: [UInt8] = []
        var postingLevels: [UInt8] = []
        var itemScales: [Float] = []

        /// Reconstructed mode: whether the posting lists above also hold the
        /// rows (with the rows' values), for the candidate stage of a
        /// rescored search (SparseIndex+RescoredSearch.swift). Built at the
        /// first such search; from then on adds keep them current.
        var hasCandidateLists = false
    }

    /// Item ids per tile of the sparse search: a tile's score accumulators
    /// (32 KB) stay in cache while the query's posting lists add into them,
    /// and an id within its tile fits the lists' 16-bit ids.
    static let searchTile = 8192

    /// The largest latent dimension whose indices fit the 16 bits that
    /// reconstructed mode keeps them in outside the standard storage.
    static let maxLatentDim16 = Int(UInt16.max) + 1

    /// Creates an empty index over the codes of `model`.
    public init(model: CompresSAEModel, mode: Mode, storage: Storage = .standard) throws {
        if storage != .standard && mode == .reconstructed && model.latentDim > Self.maxLatentDim16 {
            throw CompresSAEError.invalid("\(storage.name) storage keeps latent indices in 16 bits: latent_dim must be <= \(Self.maxLatentDim16), got \(model.latentDim)")
        }
        self.model = model
        self.mode = mode
        self.storage = storage
        self.state = State()
        if mode == .sparse { state.postingStart = .init(repeating: 0, count: model.latentDim + 1) }
    }

    /// Number of items.
    public var count: Int { lock.withReadLock { state.count } }

    /// Nonzeros per stored code (`nil` before the first add).
    public var k: Int? { lock.withReadLock { state.k } }

    /// Bytes held by the index: the codes (8 or 4 bytes per nonzero in
    /// reconstructed mode; 6 or 4 in sparse mode's posting lists) plus the
    /// posting-list offsets (8 bytes per latent, and 4 per latent and tile
    /// boundary of the sparse search's 8192-item tiles) and items not yet
    /// merged. In reconstructed mode, after a search with `candidates`, also
    /// the candidate lists, which stay (adds keep them current) until the
    /// index is freed; a loaded index starts without them.
    public var nbytes: Int {
        lock.withReadLock {
            let s = state
            return s.rowIndices.count * 4 + s.rowIndices16.count * 2 + s.rowValues.count * 4 + s.rowValues16.count * 2
                + s.postingStart.count * 8 + s.postingLocalIDs.count * 2 + s.postingValues.count * 4
                + s.postingValues16.count * 2 + s.pendingIndices.count * 4 + s.pendingValues.count * 4
                + s.tileOffsets.count * 4 + s.rowLevels.count + s.postingLevels.count + s.itemScales.count * 4
        }
    }

    // MARK: - Adding

    /// Adds `rows` codes of `k` nonzeros each (indices in `0..<h`, finite
    /// values, no index repeated within a row). The first add fixes `k`.
    ///
    /// - Complexity: O(rows k) in sparse mode (posting lists are rebuilt
    ///   lazily, O(total nonzeros), at the next search); O(rows k d) in
    ///   reconstructed mode (each item is decoded once for its norm).
    public func add(indices: UnsafeBufferPointer<Int32>, values: UnsafeBufferPointer<Float>, rows: Int, k: Int) throws {
        try add(indices: indices, values: values, rows: rows, k: k, encodedAt: nil)
    }

    /// `add`, for codes the model made at weights version `encodedAt` (`nil`:
    /// codes from the caller, taken to belong to the current weights).
    func add(indices: UnsafeBufferPointer<Int32>, values: UnsafeBufferPointer<Float>, rows: Int, k: Int,
             encodedAt: Int?) throws {
        try InputValidation.checkRowCount(rows)
        guard k >= 1 && k <= model.latentDim else {
            throw CompresSAEError.invalid("k must be in 1...\(model.latentDim) (the latent dimension), got \(k)")
        }
        try InputValidation.checkCount(indices.count, rows: rows, cols: k, name: "indices")
        try InputValidation.checkCount(values.count, rows: rows, cols: k, name: "values")
        try Self.validateCodes(indices: indices.baseAddress!, values: values.baseAddress!, rows: rows, k: k,
                               latentDim: model.latentDim, what: "code")
        // A packed index holds the quantised levels; its item scales fold in the rest.
        let levels = try storage.levelBits.map { try Self.quantizedLevels(values, rows: rows, k: k, bits: $0) }
        let values = levels.map { UnsafeBufferPointer($0.buffer) } ?? values
        try lock.withWriteLock {
            if let existing = state.k, existing != k {
                throw CompresSAEError.invalid("the index holds codes with k = \(existing); these have k = \(k)")
            }
            guard state.count + rows <= Int(Int32.max) else {
                throw CompresSAEError.invalid("an index holds at most \(Int32.max) items")
            }
            // The scales are taken with the weights of one version, which the
            // new codes, and the codes already held, must belong to.
            let (scales, version) = try itemScales(indices: indices.baseAddress!, values: values.baseAddress!,
                                                   rows: rows, k: k)
            if let encodedAt, encodedAt != version {
                throw Self.staleError("the model was trained while these rows were being encoded")
            }
            if let held = state.modelVersion, held != version {
                throw Self.staleError("the model was trained after items were added to this index")
            }
            let nonzeros = try Size.product(rows, k, what: "the codes added")
            switch mode {
            case .sparse:
                try reserveGrowth(of: state.pendingValues.count, by: nonzeros, Float.self, "the items to be indexed")
                try reserveGrowth(of: state.pendingIndices.count, by: nonzeros, Int32.self, "the items to be indexed")
                if storage.levelBits != nil {
                    try reserveGrowth(of: state.itemScales.count, by: rows, Float.self, "the items' scales")
                }
            case .reconstructed:
                if state.hasCandidateLists {
                    try reserveGrowth(of: state.pendingValues.count, by: nonzeros, Float.self, "the items to be indexed")
                    try reserveGrowth(of: state.pendingIndices.count, by: nonzeros, Int32.self, "the items to be indexed")
                }
                if let bits = storage.levelBits {
                    try reserveGrowth(of: state.rowIndices16.count, by: nonzeros, UInt16.self, "the index's codes")
                    try reserveGrowth(of: state.rowLevels.count, by: try Size.product(rows, Self.levelRowBytes(k: k, bits: bits), what: "the index's codes"),
                                      UInt8.self, "the index's codes")
                    try reserveGrowth(of: state.itemScales.count, by: rows, Float.self, "the items' scales")
                } else if storage == .standard {
                    try reserveGrowth(of: state.rowValues.count, by: nonzeros, Float.self, "the index's codes")
                    try reserveGrowth(of: state.rowIndices.count, by: nonzeros, Int32.self, "the index's codes")
                } else {
                    try reserveGrowth(of: state.rowValues16.count, by: nonzeros, UInt16.self, "the index's codes")
                    try reserveGrowth(of: state.rowIndices16.count, by: nonzeros, UInt16.self, "the index's codes")
                }
            }
            state.k = k
            if state.modelVersion == nil { state.modelVersion = version }
            switch mode {
            case .sparse: appendPending(indices: indices.baseAddress!, values: values.baseAddress!, scales: scales, rows: rows, k: k)
            case .reconstructed:
                appendRows(indices: indices.baseAddress!, values: values.baseAddress!, scales: scales, rows: rows, k: k)
                if state.hasCandidateLists { appendCandidatePending(first: state.count, rows: rows) }
            }
            state.count += rows
        }
    }

    /// Checks that an array of `count` elements can grow by `added`: the
    /// grown size is representable and, at twice that (what an array's
    /// growth may ask for), obtainable now.
    ///
    /// Complexity: O(1).
    private func reserveGrowth<T>(of count: Int, by added: Int, _: T.Type, _ what: String) throws(CompresSAEError) {
        let grown = try Size.sum(count, added, what: what)
        try probeAllocation(count: try Size.product(grown, 2, what: what), of: T.self, what)
    }

    /// Encodes dense rows with the model (at the index's `k`, or the model's
    /// `k` for the first add) and adds their codes. Reconstructed mode refits
    /// the values by least squares (`CompresSAEModel.refit`), which ranks
    /// better by decoded cosine; sparse mode keeps the encoder's values, whose
    /// code cosines rank better. The codes are made under one version of the
    /// weights; if the model is trained before they are added, the add fails
    /// instead of mixing codes of two versions.
    public func add(dense x: UnsafeBufferPointer<Float>, rows: Int, numThreads threads: Int = 0) throws {
        let kk = k ?? model.k
        try InputValidation.checkRowCount(rows)
        let count = try Size.product(rows, kk, what: "codes of \(rows) rows")
        var indices = try [Int32].fallible(repeating: 0, count: count, "the codes' indices")
        var values = try [Float].fallible(repeating: 0, count: count, "the codes' values")
        let version = try indices.withUnsafeMutableBufferPointer { ib in
            try values.withUnsafeMutableBufferPointer { vb in
                try model.encodeReportingVersion(x, rows: rows, k: kk, refit: mode == .reconstructed,
                                                 indices: ib, values: vb, threads: threads)
            }
        }
        try indices.withUnsafeBufferPointer { ib in
            try values.withUnsafeBufferPointer { vb in
                try add(indices: ib, values: vb, rows: rows, k: kk, encodedAt: version)
            }
        }
    }

    static func staleError(_ why: String) -> CompresSAEError {
        CompresSAEError.invalid("\(why): the codes no longer match its weights; build a new index")
    }

    /// Refuses to use codes made by other weights than the model's current
    /// ones (the model was trained since the first add). Caller holds a lock
    /// of the index.
    func checkModelVersion() throws {
        if let version = state.modelVersion, version != model.weightsVersion {
            throw Self.staleError("the model was trained after items were added to this index")
        }
    }

    /// Checks indices are in range and unique per row and values are finite.
    static func validateCodes(indices: UnsafePointer<Int32>, values: UnsafePointer<Float>, rows: Int, k: Int,
                              latentDim h: Int, what: String) throws {
        try InputValidation.checkSupports(indices, rows: rows, k: k, latentDim: h, what: what)
        for position in 0..<(rows * k) where !values[position].isFinite {
            throw CompresSAEError.invalid(
                "\(what) row \(position / k): value at position \(position % k) is \(values[position]): values must be finite")
        }
    }

    /// Per item `1 / |s_y|` (sparse mode) or `1 / |x_hat_y|` (reconstructed
    /// mode); 0 for a zero vector, whose cosine with anything is taken as 0.
    /// Also returns the weights version they were computed at.
    func itemScales(indices: UnsafePointer<Int32>, values: UnsafePointer<Float>, rows: Int, k: Int) throws -> ([Float], Int) {
        var scales = try [Float].fallible(repeating: 0, count: rows, "the items' norms")
        switch mode {
        case .sparse:
            for i in 0..<rows {
                let norm = robustNorm(values + i * k, k)
                scales[i] = norm > 0 ? 1 / norm : 0
            }
            return (scales, model.weightsVersion)
        case .reconstructed:
            let d = model.inputDim
            let decoded = try FallibleBuffer<Float>(count: d, "a decoded item")
            let version = model.withDecoder { dec, version in
                for i in 0..<rows {
                    decoded.base.initialize(repeating: 0, count: d)
                    for t in 0..<k {
                        axpy(values[i * k + t], dec + Int(indices[i * k + t]) * d, decoded.base, d)
                    }
                    let norm = robustNorm(decoded.base, d)
                    scales[i] = norm > 0 ? 1 / norm : 0
                }
                return version
            }
            return (scales, version)
        }
    }

    private func appendRows(indices: UnsafePointer<Int32>, values: UnsafePointer<Float>, scales: [Float], rows: Int, k: Int) {
        if let bits = storage.levelBits {
            return appendPackedRows(indices: indices, levels: values, scales: scales, rows: rows, k: k, bits: bits)
        }
        for i in 0..<rows {
            for t in 0..<k {
                let value = values[i * k + t] * scales[i]
                switch storage {
                case .standard:
                    state.rowIndices.append(indices[i * k + t])
                    state.rowValues.append(value)
                case .compact:
                    state.rowIndices16.append(UInt16(indices[i * k + t]))
                    state.rowValues16.append(HalfPrecision.encode(value))
                case .packed8, .packed4:
                    preconditionFailure("packed rows are appended by appendPackedRows")
                }
            }
        }
    }

    private func appendPending(indices: UnsafePointer<Int32>, values: UnsafePointer<Float>, scales: [Float], rows: Int, k: Int) {
        // Packed: the levels as they are, the scale apart.
        let packed = storage.levelBits != nil
        for i in 0..<rows {
            for t in 0..<k {
                state.pendingIndices.append(indices[i * k + t])
                state.pendingValues.append(packed ? values[i * k + t] : values[i * k + t] * scales[i])
            }
        }
        if packed { state.itemScales.append(contentsOf: scales) }
        state.pendingCount += rows
    }

    /// Merges pending items into the posting lists. New ids are larger than
    /// all existing ones, so appending keeps every list sorted by id.
    ///
    /// - Complexity: O(total nonzeros + h). Caller holds the write lock.
    func mergePending() throws(CompresSAEError) {
        guard mode == .sparse || state.hasCandidateLists, state.pendingCount > 0, let k = state.k else { return }
        let h = model.latentDim
        let firstNewID = state.count - state.pendingCount
        var added = try [Int].fallible(repeating: 0, count: h, "the posting lists' sizes")
        for j in state.pendingIndices { added[Int(j)] += 1 }
        var newStart = try [Int].fallible(repeating: 0, count: h + 1, "the posting lists' offsets")
        for j in 0..<h {
            newStart[j + 1] = newStart[j] + (state.postingStart[j + 1] - state.postingStart[j]) + added[j]
        }
        let total = newStart[h]
        let what = "the merged posting lists (\(total) entries)"
        // The ids as global ids, old then new; the tile-relative ids are made from them.
        try probeAllocation(count: try Size.product(total, 3, what: what), of: Int32.self, what)
        // The tile offsets of every list (`setPostingIDs`), which a huge h
        // with few items makes larger than the entries themselves.
        let tiles = try Size.sum(state.count, Self.searchTile - 1, what: what) / Self.searchTile
        try probeAllocation(count: try Size.product(h, try Size.sum(tiles, 1, what: what), 2, what: what),
                            of: Int32.self, "the posting lists' tile offsets")
        let oldIDs = globalPostingIDs(listedItems: firstNewID)
        var ids = try [Int32].fallible(repeating: 0, count: total, what)
        var cursor = newStart
        var standardValues = storage == .standard ? try [Float].fallible(repeating: 0, count: total, what) : []
        var compactValues = storage == .compact ? try [UInt16].fallible(repeating: 0, count: total, what) : []
        let levelBits = storage.levelBits
        var levels: [UInt8] = []
        if let levelBits { levels = try [UInt8].fallible(repeating: 0, count: Self.levelBytes(total, bits: levelBits), what) }
        // Old entries first (lower ids), then the new ones in id order.
        for j in 0..<h {
            for e in state.postingStart[j]..<state.postingStart[j + 1] {
                ids[cursor[j]] = oldIDs[e]
                if let levelBits { Self.setLevel(&levels, cursor[j], Self.level(state.postingLevels, e, bits: levelBits), bits: levelBits) }
                else if storage == .standard { standardValues[cursor[j]] = state.postingValues[e] }
                else { compactValues[cursor[j]] = state.postingValues16[e] }
                cursor[j] += 1
            }
        }
        for i in 0..<state.pendingCount {
            for t in 0..<k {
                let j = Int(state.pendingIndices[i * k + t])
                ids[cursor[j]] = Int32(firstNewID + i)
                let value = state.pendingValues[i * k + t]
                if let levelBits { Self.setLevel(&levels, cursor[j], Int8(value), bits: levelBits) }
                else if storage == .standard { standardValues[cursor[j]] = value }
                else { compactValues[cursor[j]] = HalfPrecision.encode(value) }
                cursor[j] += 1
            }
        }
        state.postingStart = newStart
        state.postingValues = standardValues
        state.postingValues16 = compactValues
        state.postingLevels = levels
        state.pendingIndices = []
        state.pendingValues = []
        state.pendingCount = 0
        setPostingIDs(ids)
    }

    /// The posting lists' item ids as global ids, for lists that hold the
    /// first `listedItems` items. Caller holds a lock.
    ///
    /// - Complexity: O(total nonzeros + h * tiles).
    func globalPostingIDs(listedItems: Int) -> [Int32] {
        let h = model.latentDim, tile = Self.searchTile
        let tiles = (listedItems + tile - 1) / tile
        var ids = [Int32](repeating: 0, count: state.postingLocalIDs.count)
        guard tiles > 0 else { return ids }
        for j in 0..<h {
            let start = state.postingStart[j], row = j * (tiles + 1)
            for t in 0..<tiles {
                let base = Int32(t * tile)
                for e in (start + Int(state.tileOffsets[row + t]))..<(start + Int(state.tileOffsets[row + t + 1])) {
                    ids[e] = base + Int32(state.postingLocalIDs[e])
                }
            }
        }
        return ids
    }

    /// Stores the posting lists' global item ids (ascending in each list,
    /// all below `count`) as tile-relative 16-bit ids, and finds where each
    /// tile of `searchTile` ids starts in every list, so that the search adds
    /// a list's part of a tile without checking ids.
    ///
    /// - Complexity: O(total nonzeros + h * tiles). Caller holds the write lock.
    func setPostingIDs(_ globalIDs: [Int32]) {
        let h = model.latentDim, tile = Self.searchTile, count = state.count
        let tiles = (count + tile - 1) / tile
        var offsets = [Int32](repeating: 0, count: h * (tiles + 1))
        var local = [UInt16](repeating: 0, count: globalIDs.count)
        globalIDs.withUnsafeBufferPointer { ids in
            for j in 0..<h {
                let row = j * (tiles + 1)
                var e = state.postingStart[j]
                let end = state.postingStart[j + 1]
                let listStart = e
                for t in 0..<tiles {
                    offsets[row + t] = Int32(e - listStart)
                    let limit = Int32(truncatingIfNeeded: min(count, (t + 1) * tile))
                    while e < end && ids[e] < limit {
                        local[e] = UInt16(truncatingIfNeeded: Int(ids[e]) - t * tile)
                        e += 1
                    }
                }
                offsets[row + tiles] = Int32(end - listStart)
            }
        }
        state.postingLocalIDs = local
        state.tileOffsets = offsets
    }
}
