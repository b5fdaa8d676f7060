import Dispatch
import Testing
@testable import CompresSAE

#if canImport(Glibc)
import Glibc
#endif

@Suite("Saves")
struct SaveTests {
    @Test("a dead writer's temporary file is reused and renamed away by the next save (issue 12, case 13)")
    func deadWriterLeftover() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let model = try CompresSAEModel(inputDim: 4, latentDim: 8, k: 2)
        try model.save(to: dir.file("m.safetensors"))
        // What a save killed mid-write leaves: a partial temporary file, unlocked.
        let leftover = FileIO.temporaryPath(for: dir.file("m.safetensors"))
        #expect(leftover == dir.file(".m.safetensors.tmp"))
        let fd = open(leftover, O_WRONLY | O_CREAT, 0o644)
        #expect(fd >= 0)
        _ = [UInt8](repeating: 7, count: 100_000).withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        close(fd)
        #expect(dir.entries() == [".m.safetensors.tmp", "m.safetensors"])
        // The good file still loads, and the next save leaves nothing else behind.
        #expect(try CompresSAEModel.load(from: dir.file("m.safetensors")).k == 2)
        try model.save(to: dir.file("m.safetensors"))
        #expect(dir.entries() == ["m.safetensors"])
        #expect(try CompresSAEModel.load(from: dir.file("m.safetensors")).k == 2)
    }

    @Test("a planted link in place of the temporary file is not written through")
    func plantedLink() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let model = try CompresSAEModel(inputDim: 4, latentDim: 8, k: 2)
        try writeBytes(Array("precious".utf8), to: dir.file("victim"))
        #expect(symlink(dir.file("victim"), dir.file(".m.safetensors.tmp")) == 0)
        #expect(throws: CompresSAEError.self) { try model.save(to: dir.file("m.safetensors")) }
        #expect(try readBytes(dir.file("victim")) == Array("precious".utf8))
        unlink(dir.file(".m.safetensors.tmp"))
        #expect(link(dir.file("victim"), dir.file(".m.safetensors.tmp")) == 0)
        let error = #expect(throws: CompresSAEError.self) { try model.save(to: dir.file("m.safetensors")) }
        #expect(error?.message.contains("link") == true)
        #expect(try readBytes(dir.file("victim")) == Array("precious".utf8))
        unlink(dir.file(".m.safetensors.tmp"))
    }

    @Test("concurrent saves of one path take turns: the file is one of them, nothing is left behind")
    func concurrentSaves() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let models = try (0..<4).map { try CompresSAEModel(inputDim: 16, latentDim: 256, k: 1 + $0, seed: UInt64($0)) }
        let path = dir.file("m.safetensors")
        let failures = UnsafeSendableBox(UnsafeMutablePointer<Int>.allocate(capacity: 4))
        defer { failures.value.deallocate() }
        failures.value.initialize(repeating: 0, count: 4)
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for _ in 0..<15 {
                do { try models[t].save(to: path) } catch { failures.value[t] += 1 }
            }
        }
        #expect((0..<4).map { failures.value[$0] } == [0, 0, 0, 0])
        #expect(dir.entries() == ["m.safetensors"])
        let loaded = try CompresSAEModel.load(from: path)
        #expect(loaded.decoderWeights == models[loaded.k - 1].decoderWeights)
    }
}
