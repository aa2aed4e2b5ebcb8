import Foundation

/// A restricted reader of the pickle that `torch.save(state_dict)` writes as `data.pkl`. It is not
/// a Python unpickler: it knows the few opcodes and the few globals a state dict uses and builds
/// plain records from them; any other opcode or global is refused with an error naming it, and no
/// callable is ever looked up or called. What it accepts:
///
/// - opcodes: PROTO (≤ 5), FRAME, MARK, STOP, EMPTY_DICT/LIST/TUPLE, TUPLE/TUPLE1/2/3, SETITEM(S),
///   APPEND(S), BININT/BININT1/BININT2/LONG1, NONE, NEWTRUE/NEWFALSE, BINUNICODE (SHORT_, 8),
///   BINPUT/LONG_BINPUT/MEMOIZE, BINGET/LONG_BINGET, GLOBAL/STACK_GLOBAL (of the names below),
///   BINPERSID (a storage), REDUCE (of the callables below), BUILD (state on an OrderedDict:
///   the `_metadata` of a state dict, which is read and dropped);
/// - globals: `collections.OrderedDict` (called with no arguments), `torch._utils._rebuild_tensor_v2`,
///   `torch._utils._rebuild_parameter`, and the typed storage classes `torch.FloatStorage`,
///   `HalfStorage`, `BFloat16Storage`, `DoubleStorage`, `LongStorage`, `IntStorage`, `ShortStorage`,
///   `CharStorage`, `ByteStorage`, `BoolStorage` (only as the type in a storage's persistent id).
///
/// The result must be a dict of name → tensor. Containers live in an arena that is emptied
/// iteratively at the end, so a deeply nested hostile pickle cannot overflow the stack when freed.
public struct TorchPickle: Sendable {
    /// One `(storage, storage_type, key, location, numel)` persistent id.
    public struct Storage: Sendable, Equatable {
        public var key: String
        public var dtype: DType
        /// Elements of `dtype` the storage holds, as the pickle states it.
        public var count: Int
    }

    /// A tensor: a strided view of a storage, in elements.
    public struct Tensor: Sendable, Equatable {
        public var storage: String
        public var dtype: DType
        public var offset: Int
        public var shape: [Int]
        public var strides: [Int]
    }

    public let storages: [String: Storage]
    /// Tensors in the pickle's order.
    public let tensors: [(name: String, tensor: Tensor)]

    static let maxStack = 1 << 20
    static let maxMemo = 1 << 22
    static let maxDims = 64

    static let storageTypes: [String: DType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]

    enum Global: Equatable {
        case orderedDict, rebuildTensorV2, rebuildParameter
        case storageType(DType)
    }

    /// Lists and tuples (a reference, as in Python: a memoized list sees later appends).
    final class Seq { var items: [Value]; let isTuple: Bool; init(_ items: [Value], tuple: Bool) { self.items = items; isTuple = tuple } }
    final class Dict { var items: [(Value, Value)] = [] }

    enum Value {
        case mark, none, bool(Bool), int(Int), string(String)
        case seq(Seq), dict(Dict)
        case global(Global)
        case storage(String)
        case tensor(Tensor)

        var kind: String {
            switch self {
            case .mark: return "mark"
            case .none: return "None"
            case .bool: return "bool"
            case .int: return "int"
            case .string: return "str"
            case .seq(let s): return s.isTuple ? "tuple" : "list"
            case .dict: return "dict"
            case .global: return "global"
            case .storage: return "storage"
            case .tensor: return "tensor"
            }
        }
    }

    static let opcodeNames: [UInt8: String] = [
        0x28: "MARK", 0x2e: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT", 0x49: "INT",
        0x4a: "BININT", 0x4b: "BININT1", 0x4c: "LONG", 0x4d: "BININT2", 0x4e: "NONE", 0x50: "PERSID",
        0x51: "BINPERSID", 0x52: "REDUCE", 0x53: "STRING", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING",
        0x56: "UNICODE", 0x58: "BINUNICODE", 0x61: "APPEND", 0x62: "BUILD", 0x63: "GLOBAL", 0x64: "DICT",
        0x7d: "EMPTY_DICT", 0x65: "APPENDS", 0x67: "GET", 0x68: "BINGET", 0x69: "INST", 0x6a: "LONG_BINGET",
        0x6c: "LIST", 0x5d: "EMPTY_LIST", 0x6f: "OBJ", 0x70: "PUT", 0x71: "BINPUT", 0x72: "LONG_BINPUT",
        0x73: "SETITEM", 0x74: "TUPLE", 0x29: "EMPTY_TUPLE", 0x75: "SETITEMS", 0x47: "BINFLOAT",
        0x80: "PROTO", 0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1", 0x86: "TUPLE2",
        0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8a: "LONG1", 0x8b: "LONG4", 0x42: "BINBYTES",
        0x43: "SHORT_BINBYTES", 0x8c: "SHORT_BINUNICODE", 0x8d: "BINUNICODE8", 0x8e: "BINBYTES8",
        0x8f: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL",
        0x94: "MEMOIZE", 0x95: "FRAME", 0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
    ]

    /// Reads `data.pkl` (`bytes`); `path` names the checkpoint in errors.
    public init(_ bytes: UnsafeRawBufferPointer, path: String) throws(TorchCheckpointError) {
        var arenaSeqs: [Seq] = []
        var arenaDicts: [Dict] = []
        // Empty every container before they are released: no release then cascades through a chain.
        defer {
            for s in arenaSeqs { s.items.removeAll() }
            for d in arenaDicts { d.items.removeAll() }
        }
        var stack: [Value] = []
        var marks: [Int] = []
        var memo: [Int: Value] = [:]
        var storages: [String: Storage] = [:]
        var pos = 0
        var opStart = 0
        let n = bytes.count
        var result: Value?

        func fail(_ d: String) -> TorchCheckpointError { .badPickle(path: path, offset: opStart, detail: d) }
        func take(_ k: Int) throws(TorchCheckpointError) -> Int {
            guard k >= 0, k <= n - pos else { throw fail("truncated: needs \(k) more bytes, \(n - pos) left") }
            let at = pos
            pos += k
            return at
        }
        func u8() throws(TorchCheckpointError) -> Int { Int(bytes[try take(1)]) }
        func le(_ k: Int) throws(TorchCheckpointError) -> UInt64 {
            let at = try take(k)
            var v: UInt64 = 0
            for i in 0..<k { v |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
            return v
        }
        func utf8(_ k: Int) throws(TorchCheckpointError) -> String {
            let at = try take(k)
            guard let s = String(validatingUTF8Bytes: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + k)])) else {
                throw fail("string is not valid UTF-8")
            }
            return s
        }
        func line() throws(TorchCheckpointError) -> String {
            var end = pos
            while end < n, bytes[end] != 0x0a { end += 1 }
            guard end < n, end - pos <= 256 else { throw fail("GLOBAL name is unterminated or too long") }
            let s = try utf8(end - pos)
            pos += 1
            return s
        }
        func push(_ v: Value) throws(TorchCheckpointError) {
            guard stack.count < Self.maxStack else { throw fail("stack deeper than \(Self.maxStack)") }
            stack.append(v)
        }
        func pop() throws(TorchCheckpointError) -> Value {
            guard let v = stack.popLast() else { throw fail("stack underflow") }
            if case .mark = v { throw fail("unexpected MARK on the stack") }
            if let m = marks.last, m > stack.count { throw fail("stack underflow past a MARK") }
            return v
        }
        func popToMark() throws(TorchCheckpointError) -> [Value] {
            guard let m = marks.popLast(), m < stack.count, case .mark = stack[m] else { throw fail("no MARK to pop to") }
            let items = Array(stack[(m + 1)...])
            stack.removeSubrange(m...)
            return items
        }
        func newSeq(_ items: [Value], tuple: Bool) -> Value {
            let s = Seq(items, tuple: tuple)
            arenaSeqs.append(s)
            return .seq(s)
        }
        func memoize(_ index: Int) throws(TorchCheckpointError) {
            guard let top = stack.last else { throw fail("nothing to memoize") }
            if case .mark = top { throw fail("cannot memoize a MARK") }
            guard memo.count < Self.maxMemo || memo[index] != nil else { throw fail("more than \(Self.maxMemo) memo entries") }
            memo[index] = top
        }
        func recall(_ index: Int) throws(TorchCheckpointError) {
            guard let v = memo[index] else { throw fail("memo entry \(index) was never stored") }
            try push(v)
        }
        func int(_ v: Value, _ what: String) throws(TorchCheckpointError) -> Int {
            guard case .int(let i) = v else { throw fail("\(what) is a \(v.kind), expected an int") }
            return i
        }
        func ints(_ v: Value, _ what: String) throws(TorchCheckpointError) -> [Int] {
            guard case .seq(let s) = v, s.isTuple else { throw fail("\(what) is a \(v.kind), expected a tuple of ints") }
            guard s.items.count <= Self.maxDims else { throw fail("\(what) has \(s.items.count) dimensions") }
            var out: [Int] = []
            for x in s.items { out.append(try int(x, what)) }
            return out
        }
        func global(_ module: String, _ name: String) throws(TorchCheckpointError) -> Global {
            switch (module, name) {
            case ("collections", "OrderedDict"): return .orderedDict
            case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensorV2
            case ("torch._utils", "_rebuild_parameter"): return .rebuildParameter
            case ("torch", _):
                if let d = Self.storageTypes[name] { return .storageType(d) }
            default: break
            }
            throw .refusedGlobal(path: path, offset: opStart, module: module, name: name)
        }
        func emptyDict(_ v: Value, _ what: String) throws(TorchCheckpointError) {
            switch v {
            case .none: return
            case .dict(let d) where d.items.isEmpty: return
            default: throw fail("\(what) is a \(v.kind), expected an empty dict (backward hooks cannot be loaded)")
            }
        }

        while result == nil {
            opStart = pos
            let op = UInt8(try u8())
            switch op {
            case 0x80: // PROTO
                let v = try u8()
                guard v >= 2, v <= 5 else { throw fail("pickle protocol \(v) (expected 2 to 5)") }
            case 0x95: _ = try le(8) // FRAME: a length hint only
            case 0x28: // MARK
                try push(.mark)
                marks.append(stack.count - 1)
            case 0x2e: // STOP
                let v = try pop()
                guard stack.isEmpty, marks.isEmpty else { throw fail("STOP with \(stack.count) values left on the stack") }
                result = v
            case 0x7d: // EMPTY_DICT
                let d = Dict(); arenaDicts.append(d); try push(.dict(d))
            case 0x5d: try push(newSeq([], tuple: false)) // EMPTY_LIST
            case 0x29: try push(newSeq([], tuple: true)) // EMPTY_TUPLE
            case 0x74: try push(newSeq(try popToMark(), tuple: true)) // TUPLE
            case 0x85, 0x86, 0x87: // TUPLE1..3
                let k = Int(op - 0x84)
                var items: [Value] = []
                for _ in 0..<k { items.append(try pop()) }
                try push(newSeq(items.reversed(), tuple: true))
            case 0x61, 0x65: // APPEND, APPENDS
                let items = op == 0x61 ? [try pop()] : try popToMark()
                guard case .seq(let s)? = stack.last, !s.isTuple else { throw fail("APPEND to a \(stack.last?.kind ?? "nothing"), expected a list") }
                guard s.items.count <= Self.maxStack - items.count else { throw fail("list too long") }
                s.items += items
            case 0x73, 0x75: // SETITEM, SETITEMS
                var items: [Value]
                if op == 0x73 { let v = try pop(); let k = try pop(); items = [k, v] } else { items = try popToMark() }
                guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of values") }
                guard case .dict(let d)? = stack.last else { throw fail("SETITEM on a \(stack.last?.kind ?? "nothing"), expected a dict") }
                guard d.items.count <= Self.maxStack - items.count / 2 else { throw fail("dict too long") }
                var i = 0
                while i < items.count { d.items.append((items[i], items[i + 1])); i += 2 }
            case 0x4b: try push(.int(try u8())) // BININT1
            case 0x4d: try push(.int(Int(try le(2)))) // BININT2
            case 0x4a: try push(.int(Int(Int32(truncatingIfNeeded: try le(4))))) // BININT
            case 0x8a: // LONG1: little-endian two's complement of n bytes
                let k = try u8()
                guard k <= 8 else { throw fail("LONG1 of \(k) bytes does not fit 64 bits") }
                if k == 0 { try push(.int(0)); break }
                let raw = try le(k)
                let shift = UInt64(64 - 8 * k)
                try push(.int(Int(Int64(bitPattern: raw << shift) >> Int64(shift))))
            case 0x4e: try push(.none) // NONE
            case 0x88: try push(.bool(true)) // NEWTRUE
            case 0x89: try push(.bool(false)) // NEWFALSE
            case 0x58, 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                let len = op == 0x8c ? UInt64(try u8()) : try le(op == 0x58 ? 4 : 8)
                guard len <= UInt64(n - pos) else { throw fail("string of \(len) bytes runs past the end of data.pkl") }
                try push(.string(try utf8(Int(len))))
            case 0x71: try memoize(try u8()) // BINPUT
            case 0x72: try memoize(Int(try le(4))) // LONG_BINPUT
            case 0x94: try memoize(memo.count) // MEMOIZE
            case 0x68: try recall(try u8()) // BINGET
            case 0x6a: try recall(Int(try le(4))) // LONG_BINGET
            case 0x63: // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                try push(.global(try global(module, name)))
            case 0x93: // STACK_GLOBAL
                let nameV = try pop(), moduleV = try pop()
                guard case .string(let name) = nameV, case .string(let module) = moduleV else { throw fail("STACK_GLOBAL of non-strings") }
                try push(.global(try global(module, name)))
            case 0x51: // BINPERSID: ('storage', storage_type, key, location, numel)
                let pid = try pop()
                guard case .seq(let s) = pid, s.isTuple, s.items.count == 5, case .string("storage") = s.items[0] else {
                    throw fail("persistent id is not a ('storage', type, key, location, numel) tuple")
                }
                guard case .global(.storageType(let dtype)) = s.items[1] else { throw fail("persistent id's storage type is a \(s.items[1].kind)") }
                guard case .string(let key) = s.items[2], !key.isEmpty, key.utf8.count <= 64,
                      key.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 || $0 >= 0x61 && $0 <= 0x7a || $0 >= 0x41 && $0 <= 0x5a || $0 == 0x5f }) else {
                    throw fail("persistent id's storage key is not a plain name")
                }
                guard case .string = s.items[3] else { throw fail("persistent id's location is a \(s.items[3].kind)") }
                let count = try int(s.items[4], "storage size")
                guard count >= 0 else { throw fail("storage '\(key)' has negative size \(count)") }
                let st = Storage(key: key, dtype: dtype, count: count)
                if let old = storages[key], old != st {
                    throw fail("storage '\(key)' is described twice differently (\(old.dtype.rawValue)×\(old.count) vs \(dtype.rawValue)×\(count))")
                }
                storages[key] = st
                try push(.storage(key))
            case 0x52: // REDUCE
                let argsV = try pop(), fnV = try pop()
                guard case .seq(let argsSeq) = argsV, argsSeq.isTuple else { throw fail("REDUCE arguments are a \(argsV.kind), expected a tuple") }
                let args = argsSeq.items
                guard case .global(let fn) = fnV else { throw fail("REDUCE of a \(fnV.kind), expected an allowed global") }
                switch fn {
                case .orderedDict:
                    guard args.isEmpty else { throw fail("OrderedDict called with \(args.count) arguments (expected none)") }
                    let d = Dict(); arenaDicts.append(d); try push(.dict(d))
                case .rebuildTensorV2:
                    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                    guard args.count == 6 || args.count == 7 else { throw fail("_rebuild_tensor_v2 with \(args.count) arguments (expected 6 or 7)") }
                    guard case .storage(let key) = args[0], let st = storages[key] else { throw fail("_rebuild_tensor_v2's first argument is a \(args[0].kind), expected a storage") }
                    let offset = try int(args[1], "storage offset")
                    let shape = try ints(args[2], "size")
                    let strides = try ints(args[3], "stride")
                    guard case .bool = args[4] else { throw fail("requires_grad is a \(args[4].kind)") }
                    try emptyDict(args[5], "backward_hooks")
                    if args.count == 7 { try emptyDict(args[6], "tensor metadata") }
                    guard shape.count == strides.count else { throw fail("size has \(shape.count) dimensions but stride has \(strides.count)") }
                    try push(.tensor(Tensor(storage: key, dtype: st.dtype, offset: offset, shape: shape, strides: strides)))
                case .rebuildParameter:
                    // (data, requires_grad, backward_hooks)
                    guard args.count == 3, case .tensor(let t) = args[0], case .bool = args[1] else {
                        throw fail("_rebuild_parameter expects (tensor, bool, hooks)")
                    }
                    try emptyDict(args[2], "backward_hooks")
                    try push(.tensor(t))
                case .storageType(let d):
                    throw fail("REDUCE of the storage type \(d.rawValue) is not allowed (storages come only from persistent ids)")
                }
            case 0x62: // BUILD: only an OrderedDict's attribute dict (a state dict's `_metadata`), dropped
                let state = try pop()
                guard case .dict? = stack.last, case .dict = state else {
                    throw fail("BUILD of a \(state.kind) on a \(stack.last?.kind ?? "nothing") (only an OrderedDict's attributes are allowed)")
                }
            default:
                let name = Self.opcodeNames[op] ?? "unknown"
                throw .refusedOpcode(path: path, offset: opStart, opcode: op, name: name)
            }
        }
        guard case .dict(let top)? = result else {
            throw .badArchive(path: path, detail: "data.pkl holds a \(result?.kind ?? "nothing"), expected a state dict (name → tensor)")
        }
        var tensors: [(name: String, tensor: Tensor)] = []
        var seen = Set<String>()
        for (k, v) in top.items {
            guard case .string(let name) = k else { throw .badArchive(path: path, detail: "state dict has a \(k.kind) key, expected names") }
            guard case .tensor(let t) = v else { throw .badArchive(path: path, detail: "state dict entry '\(name)' is a \(v.kind), expected a tensor") }
            guard seen.insert(name).inserted else { throw .badArchive(path: path, detail: "state dict names '\(name)' twice") }
            tensors.append((name, t))
        }
        self.storages = storages
        self.tensors = tensors
    }
}
