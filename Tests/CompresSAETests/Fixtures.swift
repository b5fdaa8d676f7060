@testable import CompresSAE

/// Paths of the fixtures inside the repository (tests never read ../shared).
enum Fixtures {
    static let directory: String = {
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)  // CompresSAETests/Fixtures.swift
        return parts.joined(separator: "/") + "/Fixtures"
    }()

    static func path(_ name: String) -> String { directory + "/" + name }

    /// A golden case of the PyTorch reference: tensors and settings.
    struct Golden {
        let file: Safetensors.File
        let d: Int, h: Int, k: Int, b: Int
        let lossesAtInit: [String: Double]

        init(_ name: String) throws {
            file = try Safetensors.File(path: Fixtures.path("golden/\(name).safetensors"))
            let json = try JSONParser.parse(Array(try readText(Fixtures.path("golden/\(name).json")).utf8))
            func int(_ key: String) -> Int {
                if case .number(let v)? = json[key] { return Int(v) }
                return -1
            }
            d = int("d"); h = int("h"); k = int("k"); b = int("batch")
            var losses: [String: Double] = [:]
            if case .object(let members)? = json["losses_at_init"] {
                for (key, value) in members { if case .number(let v) = value { losses[key] = v } }
            }
            lossesAtInit = losses
        }

        func tensor(_ name: String) throws -> [Float] {
            try file.readFloat32(name, shape: file.tensors[name]?.shape ?? [])
        }

        func initialModel() throws -> CompresSAEModel {
            try CompresSAEModel(inputDim: d, latentDim: h, k: k, encoderWeights: try tensor("encoder_w"),
                                encoderBias: try tensor("encoder_b"), decoderWeights: try tensor("decoder_w"))
        }
    }

    static func readText(_ path: String) throws -> String {
        let reader = try FileIO.Reader(path: path)
        var bytes = [UInt8](repeating: 0, count: reader.size)
        try bytes.withUnsafeMutableBytes { try reader.read(into: $0.baseAddress!, count: reader.size, at: 0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Largest |a - b| relative to the largest |b| (the scale of the tensor).
func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "size mismatch \(a.count) vs \(b.count)")
    var maxDiff: Float = 0, scale: Float = 0
    for i in 0..<a.count {
        maxDiff = max(maxDiff, abs(a[i] - b[i]))
        scale = max(scale, abs(b[i]))
    }
    return maxDiff / max(scale, .leastNormalMagnitude)
}

/// A dense [rows, h] matrix from sparse codes.
func densify(_ codes: SparseCodes) -> [Float] {
    var out = [Float](repeating: 0, count: codes.rows * codes.dim)
    for i in 0..<codes.rows {
        for t in 0..<codes.k {
            out[i * codes.dim + Int(codes.indices[i * codes.k + t])] = codes.values[i * codes.k + t]
        }
    }
    return out
}

/// Largest excess of |a - b| over `atol + rtol * |b|` (numpy's `allclose`
/// rule); <= 0 means every element is within tolerance.
func allCloseExcess(_ a: [Float], _ b: [Float], rtol: Float, atol: Float) -> Float {
    precondition(a.count == b.count, "size mismatch \(a.count) vs \(b.count)")
    var worst = -Float.infinity
    for i in 0..<a.count { worst = max(worst, abs(a[i] - b[i]) - (atol + rtol * abs(b[i]))) }
    return worst
}

extension Fixtures {
    /// The first `rows` rows of the embedded real dataset (WordNet glosses
    /// embedded with all-MiniLM-L6-v2, float16 in a .npy file), as float32.
    static func realEmbeddings(rows: Int) throws -> (x: [Float], d: Int) {
        var parts = directory.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)  // Tests/Fixtures
        let path = parts.joined(separator: "/") + "/python/compressae/data/wordnet10k_minilm384_f16.npy"
        let reader = try FileIO.Reader(path: path)
        var prefix = [UInt8](repeating: 0, count: 10)
        try prefix.withUnsafeMutableBytes { try reader.read(into: $0.baseAddress!, count: 10, at: 0) }
        let headerLength = Int(prefix[8]) | Int(prefix[9]) << 8  // .npy version 1.0
        let d = 384
        var halves = [UInt16](repeating: 0, count: rows * d)
        try halves.withUnsafeMutableBytes {
            try reader.read(into: $0.baseAddress!, count: rows * d * 2, at: 10 + headerLength)
        }
        return (halves.map { Float(Float16(bitPattern: UInt16(littleEndian: $0))) }, d)
    }
}
