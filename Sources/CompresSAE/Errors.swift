/// An error raised by the library, with a message meant for the end user.
///
/// Every public entry point validates its arguments and throws this instead of
/// trapping: a trap would kill the host process (a Python interpreter, a server).
public struct CompresSAEError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, in the categories of the C ABI's status codes.
    public enum Kind: Int32, Sendable {
        case invalidArgument = 1
        case invalidHandle = 2
        case io = 3
        case format = 4
        case cancelled = 5
        case outOfMemory = 6
        case busy = 7
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    static func invalid(_ message: String) -> CompresSAEError { .init(.invalidArgument, message) }
    static func format(_ message: String) -> CompresSAEError { .init(.format, message) }
    static func io(_ message: String) -> CompresSAEError { .init(.io, message) }
}
