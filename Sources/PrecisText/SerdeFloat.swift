/// Floating-point numbers as `tokenizers` reads them from `tokenizer.json`: `serde_json` without
/// its `float_roundtrip` feature takes the decimal significand as a `u64` (digits past 19 are
/// dropped), converts it to `f64` and multiplies or divides by a power of ten, which can differ
/// from the correctly rounded value by an ulp. Unigram scores are compared for ties, so they are
/// read the same way.
enum SerdeFloat {
    /// 1e0 … 1e308, each the correctly rounded double (as Rust's literals are).
    static let powersOfTen: [Double] = (0...308).map { Double("1e\($0)")! }

    /// The value `serde_json` reads from the shortest decimal form of `value` (the form
    /// `tokenizers` writes); nil when it is out of range (`serde_json` refuses it).
    static func reparse(_ value: Double) -> Double? {
        guard value.isFinite else { return nil }
        if value == 0 { return value }
        let text = "\(value.magnitude)"
        var significand: UInt64 = 0
        var exponent = 0
        var overflow = false
        var mantissa = Substring(text)
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...])!
            mantissa = text[..<e]
        }
        var afterPoint = false
        for c in mantissa {
            if c == "." { afterPoint = true; continue }
            let digit = UInt64(c.asciiValue! - UInt8(ascii: "0"))
            if overflow || significand > (UInt64.max - digit) / 10 {
                overflow = true
                if !afterPoint { exponent += 1 }
                continue
            }
            significand = significand * 10 + digit
            if afterPoint { exponent -= 1 }
        }
        guard let magnitude = fromParts(significand, exponent) else { return nil }
        return value < 0 ? -magnitude : magnitude
    }

    /// `serde_json`'s `f64_from_parts`.
    static func fromParts(_ significand: UInt64, _ exponent: Int) -> Double? {
        var f = Double(significand)
        var e = exponent
        while true {
            if e.magnitude < UInt(powersOfTen.count) {
                let p = powersOfTen[Int(e.magnitude)]
                if e >= 0 {
                    f *= p
                    if f.isInfinite { return nil }
                } else {
                    f /= p
                }
                return f
            }
            if f == 0 { return f }
            if e >= 0 { return nil }
            f /= 1e308
            e += 308
        }
    }
}
