/// A structure-aware mutation for the file harnesses: a safetensors file is
/// an 8-byte little-endian header length, a JSON header, then the tensor
/// bytes. Byte-level mutations mostly break the JSON; this one rewrites a
/// number of the header (a shape, an offset, k, a count) or a dtype and
/// fixes the length prefix, so that the loader's checks of sizes, offsets
/// and shapes are reached with hostile values. Half the time it defers to
/// libFuzzer's own mutations.

@_silgen_name("LLVMFuzzerMutate")
func libFuzzerMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int) -> Int

@_cdecl("LLVMFuzzerCustomMutator")
public func fuzzMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    var random = SplitMix(state: UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
    guard target != .capi, random.next() % 2 == 0,
          let mutated = HeaderMutator.mutate(Array(UnsafeBufferPointer(start: data, count: size)), &random),
          mutated.count <= maxSize
    else { return libFuzzerMutate(data, size, maxSize) }
    mutated.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: $0.count) }
    return mutated.count
}

struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum HeaderMutator {
    static let interesting: [String] = [
        "0", "1", "2", "3", "-1", "7", "8", "31", "32", "33", "255", "256", "65535", "65536", "2147483647",
        "2147483648", "4294967295", "4294967296", "1099511627776", "2097152", "9223372036854775807",
        "9223372036854775808", "18446744073709551615", "1e3", "0.5",
    ]
    static let dtypes = ["F32", "F16", "BF16", "F64", "I32", "I64", "U16", "U8", "I8", "BOOL"]

    static func mutate(_ file: [UInt8], _ random: inout SplitMix) -> [UInt8]? {
        guard file.count >= 8 else { return nil }
        var length = 0
        for i in 0..<8 { length |= Int(file[i]) << (8 * i) }
        guard length > 0, length <= file.count - 8 else { return nil }
        var header = Array(file[8..<(8 + length)])
        let body = file[(8 + length)...]
        // Spans of the header's numbers (digits, optionally quoted) and dtypes.
        var numbers: [Range<Int>] = []
        var i = 0
        while i < header.count {
            if header[i] >= UInt8(ascii: "0") && header[i] <= UInt8(ascii: "9") {
                var j = i
                while j < header.count && header[j] >= UInt8(ascii: "0") && header[j] <= UInt8(ascii: "9") { j += 1 }
                numbers.append(i..<j)
                i = j
            } else { i += 1 }
        }
        switch random.next() % 4 {
        case 0, 1:
            guard !numbers.isEmpty else { return nil }
            let span = numbers[Int(random.next() % UInt64(numbers.count))]
            let current = UInt64(String(decoding: header[span], as: UTF8.self)) ?? 0
            let replacement: String
            switch random.next() % 3 {
            case 0: replacement = interesting[Int(random.next() % UInt64(interesting.count))]
            case 1: replacement = String(random.next() % 2 == 0 ? current &+ 1 : current &- 1)
            default: replacement = String(current &* (1 + random.next() % 4) &+ random.next() % 64)
            }
            header.replaceSubrange(span, with: Array(replacement.utf8))
        case 2:
            // Another rank: a number inside a shape is repeated or dropped.
            guard !numbers.isEmpty else { return nil }
            let span = numbers[Int(random.next() % UInt64(numbers.count))]
            if random.next() % 2 == 0 {
                header.insert(contentsOf: Array(",".utf8) + header[span], at: span.upperBound)
            } else if span.upperBound < header.count && header[span.upperBound] == UInt8(ascii: ",") {
                header.removeSubrange(span.lowerBound...span.upperBound)
            } else { return nil }
        default:
            // Another dtype for one tensor.
            let key = Array("\"dtype\":\"".utf8)
            var starts: [Int] = []
            var i = 0
            while i + key.count <= header.count {
                if header[i..<(i + key.count)].elementsEqual(key) { starts.append(i + key.count) }
                i += 1
            }
            guard !starts.isEmpty else { return nil }
            let start = starts[Int(random.next() % UInt64(starts.count))]
            guard let end = header[start...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
            header.replaceSubrange(start..<end, with: Array(dtypes[Int(random.next() % UInt64(dtypes.count))].utf8))
        }
        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + body.count)
        for b in 0..<8 { out.append(UInt8(truncatingIfNeeded: header.count >> (8 * b))) }
        out += header
        out += body
        return out
    }
}
