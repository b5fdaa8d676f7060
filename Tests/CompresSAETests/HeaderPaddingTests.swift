import Testing
@testable import CompresSAE

/// The safetensors format pads its JSON header with spaces (0x20) to an
/// 8-byte boundary; a NUL byte there is not something a writer produces, so
/// it is a damaged file, not padding (before, the reader stripped NULs too).
@Suite("Safetensors header padding")
struct HeaderPaddingTests {
    /// A state-dict file (no checksum, as a reference checkpoint) of `model`'s
    /// weights whose header ends in `padding`.
    func stateDict(_ model: CompresSAEModel, padding: [UInt8]) -> [UInt8] {
        let d = model.inputDim, h = model.latentDim
        let e = 4 * d * h, b = e + 4 * h, end = b + 4 * h * d
        let header = "{\"encoder_w\":{\"dtype\":\"F32\",\"shape\":[\(d),\(h)],\"data_offsets\":[0,\(e)]},"
            + "\"encoder_b\":{\"dtype\":\"F32\",\"shape\":[\(h)],\"data_offsets\":[\(e),\(b)]},"
            + "\"decoder_w\":{\"dtype\":\"F32\",\"shape\":[\(h),\(d)],\"data_offsets\":[\(b),\(end)]}}"
        let headerBytes = Array(header.utf8) + padding
        var data: [UInt8] = []
        for v in model.encoderWeights + model.encoderBiasWeights + model.decoderWeights {
            withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 }
        }
        return withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { Array($0) } + headerBytes + data
    }

    @Test("space padding loads, NUL padding is a format error")
    func nulPaddingIsRefused() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let model = try CompresSAEModel(inputDim: 4, latentDim: 8, k: 2, seed: 1)
        try writeBytes(stateDict(model, padding: [UInt8](repeating: 0x20, count: 8)), to: dir.file("spaces.safetensors"))
        let loaded = try CompresSAEModel.load(from: dir.file("spaces.safetensors"), k: 2)
        #expect(loaded.decoderWeights == model.decoderWeights)
        for padding: [UInt8] in [[0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0], [0, 0, 0, 0, 0, 0, 0, 0]] {
            try writeBytes(stateDict(model, padding: padding), to: dir.file("nul.safetensors"))
            let error = #expect(throws: CompresSAEError.self) {
                _ = try CompresSAEModel.load(from: dir.file("nul.safetensors"), k: 2)
            }
            #expect(error?.kind == .format, "\(error as Any)")
        }
    }
}
