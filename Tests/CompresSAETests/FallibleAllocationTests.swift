import Testing
@testable import CompresSAE

/// Input-sized allocations fail into errors, never into the end of the process.
@Suite("Fallible allocation")
struct FallibleAllocationTests {
    @Test("a size that cannot be allocated is an out-of-memory error")
    func impossibleSizes() {
        // 2^55 floats = 128 PiB: representable, never available.
        #expect(throws: CompresSAEError.self) { _ = try FallibleBuffer<Float>(count: 1 << 55, "test buffer") }
        do {
            _ = try [Float].fallible(repeating: 0, count: 1 << 55, "test array")
            Issue.record("allocation of 128 PiB succeeded")
        } catch {
            #expect(error.kind == .outOfMemory)
            #expect(error.message.contains("test array"))
        }
    }

    @Test("overflowing or negative sizes are invalid arguments")
    func overflow() {
        for count in [-1, Int.max, Int.max / 4] {
            do {
                _ = try FallibleBuffer<Double>(count: count, "b")
                Issue.record("count \(count) accepted")
            } catch {
                #expect(error.kind == .invalidArgument)
            }
        }
        #expect(throws: CompresSAEError.self) { _ = try Size.product(1 << 40, 1 << 30, what: "x") }
        #expect(throws: CompresSAEError.self) { _ = try Size.sum(Int.max / 16, 1, what: "x") }
        #expect((try? Size.product(3, 4, 5, what: "x")) == 60)
    }

    @Test("buffers and arrays hold what was asked")
    func contents() throws {
        let zeros = try FallibleBuffer<Int32>(count: 1000, zeroed: true, "z")
        #expect(zeros.buffer.allSatisfy { $0 == 0 })
        zeros.base[999] = 7
        #expect(try zeros.toArray("copy").last == 7)
        #expect(try FallibleBuffer<Float>(count: 0, "empty").count == 0)
        // Empty buffers and arrays copy to empty arrays.
        #expect(try FallibleBuffer<Float>(count: 0, "empty").toArray("copy") == [])
        #expect(try [Float].fallibleCopy(of: [], "copy") == [])
        let filled = try [UInt16].fallible(repeating: 3, count: 17, "a")
        #expect(filled == [UInt16](repeating: 3, count: 17))
    }
}
