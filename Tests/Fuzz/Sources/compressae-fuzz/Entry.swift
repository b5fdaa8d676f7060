import CompresSAE
#if canImport(Glibc)
import Glibc
#endif

// libFuzzer entry points. One binary holds the three harnesses; the
// environment variable COMPRESSAE_FUZZ_TARGET (model, index or capi) picks
// one. COMPRESSAE_FUZZ_WRITE_SEEDS=<dir> writes that harness's seed corpus
// (files the library itself writes) into <dir> and exits.

enum Target: String {
    case model, index, capi
}

nonisolated(unsafe) var target: Target = .model

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32 {
    guard let name = getenv("COMPRESSAE_FUZZ_TARGET"), let chosen = Target(rawValue: String(cString: name)) else {
        fputs("set COMPRESSAE_FUZZ_TARGET to model, index or capi\n", stderr)
        exit(2)
    }
    target = chosen
    _ = csae_set_num_threads(1)
    if let dir = getenv("COMPRESSAE_FUZZ_WRITE_SEEDS") {
        Seeds.write(target, into: String(cString: dir))
        exit(0)
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeBufferPointer(start: data, count: data == nil ? 0 : size)
    switch target {
    case .model: ModelLoaderHarness.run(bytes)
    case .index: IndexLoaderHarness.run(bytes)
    case .capi: CAPIHarness.run(data, size)
    }
    return 0
}
