import Testing
import CCompresSAE
@testable import CompresSAE

/// The C functions called as a C program would, including the misuse a C
/// program can commit.
@Suite("C ABI")
struct CABITests {
    func lastError() -> String { String(cString: csae_last_error()) }

    @Test("create, train, encode, decode, free through the C functions")
    func lifecycle() throws {
        #expect(csae_abi_version() == CSAE_ABI_VERSION)
        var model: OpaquePointer?
        #expect(csae_model_create(16, 64, 4, 1, 0, &model) == 0)
        var d: Int64 = 0, h: Int64 = 0, k: Int64 = 0
        #expect(csae_model_get_shape(model, &d, &h, &k) == 0)
        #expect((d, h, k) == (16, 64, 4))
        let x = (0..<(16 * 20)).map { Float(($0 * 37) % 17) - 8 }
        var params = csae_train_default_params()
        params.batch_size = 10
        params.epochs = 2
        #expect(csae_model_train(model, x, 20, 16, &params) == 0)
        var length: Int64 = 0
        #expect(csae_model_copy_history(model, Int32(CSAE_HISTORY_TRAINING_LOSS.rawValue), nil, 0, &length) == 0 && length == 4)
        var indices = [Int32](repeating: 0, count: 20 * 4), values = [Float](repeating: 0, count: 20 * 4)
        var kUsed: Int64 = 0
        #expect(csae_model_encode(model, x, 20, 16, nil, &indices, &values, 80, &kUsed) == 0 && kUsed == 4)
        var out = [Float](repeating: 0, count: 20 * 16)
        #expect(csae_model_decode(model, indices, values, 20, 4, 0, &out) == 0)
        #expect(out.contains { $0 != 0 })
        csae_model_free(model)
        csae_model_free(nil)
    }

    @Test("misuse returns a status and a message")
    func misuse() throws {
        var model: OpaquePointer?
        #expect(csae_model_create(16, 64, 100, 1, 0, &model) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        #expect(lastError().contains("k must be"))
        #expect(model == nil)
        #expect(csae_model_create(16, 64, 4, 1, 0, nil) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        #expect(csae_model_create(0, 64, 4, 1, 0, &model) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        #expect(csae_model_create(16, 64, 4, 1, 7, &model) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        #expect(lastError().contains("initialization must be"))
        #expect(csae_model_create(16, 64, 4, 1, 0, &model) == 0)
        let x = [Float](repeating: 1, count: 16)
        var indices = [Int32](repeating: 0, count: 4), values = [Float](repeating: 0, count: 4)
        var k65 = csae_encode_default_params()
        k65.k = 65
        #expect(csae_model_encode(model, nil, 1, 16, nil, &indices, &values, 4, nil) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        #expect(lastError() == "x is NULL")
        #expect(csae_model_encode(model, x, 1, 15, nil, &indices, &values, 4, nil) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        #expect(csae_model_encode(model, x, -1, 16, nil, &indices, &values, 4, nil) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        #expect(csae_model_encode(model, x, 1, 16, &k65, &indices, &values, 4, nil) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        #expect(csae_model_encode(model, x, 1, 16, nil, nil, &values, 4, nil) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        #expect(csae_model_encode(model, x, 1, 16, nil, &indices, &values, 3, nil) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        #expect(lastError().contains("capacity 3 is too small"))
        #expect(csae_model_encode(model, x, 1, 16, nil, &indices, &values, 4, nil) == 0)
        #expect(lastError() == "")
        // n * k beyond Int64 is refused before any buffer is touched (it used to trap).
        var narrow: OpaquePointer?
        #expect(csae_model_create(1, 16, 16, 1, 0, &narrow) == 0)
        var k16 = csae_encode_default_params()
        k16.k = 16
        #expect(csae_model_encode(narrow, x, 1 << 59, 1, &k16, &indices, &values, Int64.max, nil)
                == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        #expect(lastError().contains("too large"))
        csae_model_free(narrow)
        csae_model_free(model)
        // A freed handle is refused, however often it is used or freed again.
        #expect(csae_model_encode(model, x, 1, 16, nil, &indices, &values, 4, nil) == CSAE_ERR_INVALID_HANDLE.rawValue)
        #expect(lastError().contains("not valid"))
        csae_model_free(model)
        #expect(csae_model_save(model, "/tmp/never") == CSAE_ERR_INVALID_HANDLE.rawValue)
        #expect(csae_model_encode(OpaquePointer(bitPattern: 0x1234_5671), x, 1, 16, nil, &indices, &values, 4, nil)
                == CSAE_ERR_INVALID_HANDLE.rawValue)
        #expect(csae_model_load(nil, 0, &model) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        #expect(csae_model_load("/nonexistent", 0, &model) == CSAE_ERR_IO.rawValue)
    }

    @Test("a progress callback that returns non-zero cancels training")
    func cancel() throws {
        var model: OpaquePointer?
        #expect(csae_model_create(8, 32, 2, 1, 0, &model) == 0)
        defer { csae_model_free(model) }
        let x = (0..<(8 * 40)).map { Float(($0 * 13) % 7) - 3 }
        var params = csae_train_default_params()
        params.batch_size = 10
        params.progress = { _, step, _, _ in step >= 2 ? 1 : 0 }
        #expect(csae_model_train(model, x, 40, 8, &params) == CSAE_ERR_CANCELLED.rawValue)
        var length: Int64 = 0
        #expect(csae_model_copy_history(model, Int32(CSAE_HISTORY_TRAINING_LOSS.rawValue), nil, 0, &length) == 0
                && length == 2)
    }
}
