//! Text identical to Python's `json.dumps(obj)` with default settings (separators `", "`
//! and `": "`, `ensure_ascii=True`, `allow_nan=True`), and Python's `repr(float)`, which
//! both the JSON and the message signature use. Everything writes into a caller's buffer.

use longshore_plugin_api::{Map, Value, ValueRef};

/// Serialise `value` as Python's `json.dumps(value)` would.
pub fn to_string(value: &Value) -> String {
    let mut out = Vec::with_capacity(128);
    write_value(&mut out, value);
    ascii_to_string(out)
}

/// Serialise `map` as Python's `json.dumps(dict)` would (keys in insertion order).
pub fn map_to_string(map: &Map) -> String {
    let mut out = Vec::with_capacity(1024);
    write_map(&mut out, map);
    ascii_to_string(out)
}

/// Our output is pure ASCII (`ensure_ascii`), so this never takes the lossy branch.
fn ascii_to_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Append the JSON text of `value`.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    value_g::<false>(out, value)
}

/// Append the JSON text of a dict, keys in insertion order.
pub fn write_map(out: &mut Vec<u8>, map: &Map) {
    map_g::<false>(out, map)
}

/// Append the JSON text of a list.
pub fn write_list(out: &mut Vec<u8>, items: &[Value]) {
    list_g::<false>(out, items)
}

/// Append the JSON text of `map` as it appears inside a JSON string literal, i.e.
/// `json.dumps(json.dumps(map))` without its outer quotes: every `"` and `\` of the
/// text escaped once more. This writes oslo's double-encoded envelope in one pass.
pub fn write_map_nested(out: &mut Vec<u8>, map: &Map) {
    map_g::<true>(out, map)
}

/// Append `s` as a JSON string literal, nested inside another string literal (see
/// [`write_map_nested`]): `\"...\"`.
pub fn write_str_nested(out: &mut Vec<u8>, s: &str) {
    str_g::<true>(out, s)
}

pub(crate) fn value_g<const NESTED: bool>(out: &mut Vec<u8>, value: &Value) {
    match value.get() {
        ValueRef::Null => out.extend_from_slice(b"null"),
        ValueRef::Bool(true) => out.extend_from_slice(b"true"),
        ValueRef::Bool(false) => out.extend_from_slice(b"false"),
        ValueRef::Int(i) => write_int(out, i),
        ValueRef::Float(f) => write_float(out, f),
        ValueRef::Str(s) => str_g::<NESTED>(out, s),
        ValueRef::List(items) => list_g::<NESTED>(out, items),
        ValueRef::Map(m) => map_g::<NESTED>(out, m),
    }
}

pub(crate) fn map_g<const NESTED: bool>(out: &mut Vec<u8>, map: &Map) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        str_g::<NESTED>(out, k);
        out.extend_from_slice(b": ");
        value_g::<NESTED>(out, v);
    }
    out.push(b'}');
}

fn list_g<const NESTED: bool>(out: &mut Vec<u8>, items: &[Value]) {
    out.push(b'[');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        value_g::<NESTED>(out, v);
    }
    out.push(b']');
}

/// Append an integer in decimal, as `int.__repr__`.
pub fn write_int(out: &mut Vec<u8>, i: i64) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(format_int(i, &mut buf));
}

/// Format `i` in decimal into the tail of `buf` (20 bytes hold any i64).
pub(crate) fn format_int(i: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = i.unsigned_abs();
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

/// Append a float as Python's JSON encoder does: `repr(f)`, except that infinities and
/// NaN become `Infinity`, `-Infinity` and `NaN` (the encoder's `allow_nan=True` default).
pub fn write_float(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        let mut buf = FloatBuf::new();
        out.extend_from_slice(buf.format(f).as_bytes());
    }
}

/// What each byte of a string needs in `ensure_ascii` output: 0 = copy as is,
/// b'u' = `\u00XX`, b'U' = start of a non-ASCII UTF-8 sequence, anything else = the
/// letter after the backslash.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[0x7f] = b'u';
    let mut i = 0x80;
    while i < 0x100 {
        t[i] = b'U';
        i += 1;
    }
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Append `s` as a JSON string literal with `ensure_ascii=True`: `"` and `\\` escaped,
/// `\b \f \n \r \t` short forms, other control characters and DEL as `\u00XX`, and
/// everything non-ASCII as lowercase `\uXXXX` (UTF-16 surrogate pairs above U+FFFF).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    str_g::<false>(out, s)
}

pub(crate) fn str_g<const NESTED: bool>(out: &mut Vec<u8>, s: &str) {
    // Nested, the quote and the backslash that starts an escape are themselves escaped.
    let quote: &[u8] = if NESTED { b"\\\"" } else { b"\"" };
    let backslash: &[u8] = if NESTED { b"\\\\" } else { b"\\" };
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 4);
    out.extend_from_slice(quote);
    // Almost every string (names, ids, timestamps) needs no escape: one pass over
    // whole words, its tail included, then one copy.
    if is_clean(bytes) {
        out.extend_from_slice(bytes);
        out.extend_from_slice(quote);
        return;
    }
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip 8 clean bytes at a time (most strings need no escaping at all).
        if let Some(chunk) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            if !needs_escape(word) {
                i += 8;
                continue;
            }
        }
        let esc = ESCAPE[bytes[i] as usize];
        if esc == 0 {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            b'u' => {
                write_u16_escape(out, backslash, bytes[i] as u16);
                i += 1;
            }
            b'U' => {
                // `i` is on a char boundary: every earlier byte was ASCII or a whole
                // sequence we consumed.
                let c = s[i..].chars().next().unwrap_or('\u{fffd}');
                let cp = c as u32;
                if cp >= 0x10000 {
                    let v = cp - 0x10000;
                    write_u16_escape(out, backslash, 0xd800 | (v >> 10) as u16);
                    write_u16_escape(out, backslash, 0xdc00 | (v & 0x3ff) as u16);
                } else {
                    write_u16_escape(out, backslash, cp as u16);
                }
                i += c.len_utf8();
            }
            b'"' => {
                out.extend_from_slice(backslash);
                out.extend_from_slice(quote);
                i += 1;
            }
            b'\\' => {
                out.extend_from_slice(backslash);
                out.extend_from_slice(backslash);
                i += 1;
            }
            letter => {
                out.extend_from_slice(backslash);
                out.push(letter);
                i += 1;
            }
        }
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.extend_from_slice(quote);
}

/// Whether no byte of `bytes` needs an escape, a word at a time: the last word overlaps
/// the one before it, and a string shorter than a word is padded with `a`.
#[inline]
fn is_clean(bytes: &[u8]) -> bool {
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    let n = bytes.len();
    if n < 8 {
        let mut w = [b'a'; 8];
        w[..n].copy_from_slice(bytes);
        return !needs_escape(u64::from_le_bytes(w));
    }
    let (words, _) = bytes.as_chunks::<8>();
    words.iter().all(|w| !needs_escape(u64::from_le_bytes(*w)))
        && !needs_escape(word(&bytes[n - 8..]))
}

/// Whether any byte of `w` is < 0x20, `"`, `\\` or >= 0x7f (exact, SWAR).
#[inline]
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let high = (w | ((w & !HIGH).wrapping_add(ONES))) & HIGH;
    let quote = has_zero(w ^ (ONES * b'"' as u64));
    let backslash = has_zero(w ^ (ONES * b'\\' as u64));
    (control | high | quote | backslash) != 0
}

fn write_u16_escape(out: &mut Vec<u8>, backslash: &[u8], u: u16) {
    out.extend_from_slice(backslash);
    out.extend_from_slice(&[
        b'u',
        HEX[(u >> 12) as usize & 0xf],
        HEX[(u >> 8) as usize & 0xf],
        HEX[(u >> 4) as usize & 0xf],
        HEX[u as usize & 0xf],
    ]);
}

/// A stack buffer for Python's `repr(float)`: `512.0`, `0.1`, `1e+16`, `1e-05`,
/// `12345.678`, `inf`, `-inf`, `nan`.
///
/// Digits are the shortest that round-trip, closest to the exact value (Rust's `{:e}`),
/// except that exact ties between two shortest candidates go to the even one as in
/// CPython's dtoa (Rust rounds them up); the layout follows CPython's
/// `format_float_short`: exponent form when the decimal exponent is < -4 or >= 16, `.0`
/// added to integers.
pub struct FloatBuf {
    buf: [u8; 32],
}

impl Default for FloatBuf {
    fn default() -> Self {
        FloatBuf::new()
    }
}

impl FloatBuf {
    pub fn new() -> FloatBuf {
        FloatBuf { buf: [0; 32] }
    }

    /// Python's `repr(f)` (also `str(f)`).
    pub fn format(&mut self, f: f64) -> &str {
        if f.is_nan() {
            return "nan";
        }
        if f.is_infinite() {
            return if f > 0.0 { "inf" } else { "-inf" };
        }
        // "-d.ddde-N": at most 1 + 17 + 1 + 5 bytes.
        let mut sci = Scratch {
            buf: [0; 32],
            len: 0,
        };
        // Writing into a fixed buffer large enough for any f64 cannot fail.
        let _ = std::fmt::Write::write_fmt(&mut sci, format_args!("{f:e}"));
        let sci = &sci.buf[..sci.len];

        let (negative, sci) = match sci.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, sci),
        };
        let e_pos = sci.iter().position(|&b| b == b'e').unwrap_or(sci.len());
        let mantissa = &sci[..e_pos];
        let exp = parse_exp(&sci[(e_pos + 1).min(sci.len())..]);
        // Digits without the point: "7.25e2" -> "725"; one digit before the point.
        let mut digits = [0u8; 20];
        let mut nd = 0;
        for &b in mantissa {
            if b != b'.' && nd < digits.len() {
                digits[nd] = b;
                nd += 1;
            }
        }
        let mut nd = nd.max(1);
        let mut exp = exp;
        if let Some((d, e)) = half_even_tie(f, nd) {
            nd = d.len();
            digits[..nd].copy_from_slice(&d.buf[..nd]);
            exp = e;
        }
        let digits = &digits[..nd];

        let out = &mut self.buf;
        let mut n = 0;
        let mut push = |b: u8| {
            out[n] = b;
            n += 1;
        };
        if negative {
            push(b'-');
        }
        if !(-4..16).contains(&exp) {
            push(digits[0]);
            if digits.len() > 1 {
                push(b'.');
                digits[1..].iter().for_each(|&d| push(d));
            }
            push(b'e');
            push(if exp < 0 { b'-' } else { b'+' });
            let a = exp.unsigned_abs();
            if a >= 100 {
                push(b'0' + (a / 100) as u8);
            }
            push(b'0' + (a / 10 % 10) as u8);
            push(b'0' + (a % 10) as u8);
        } else if exp < 0 {
            push(b'0');
            push(b'.');
            for _ in 0..(-exp - 1) {
                push(b'0');
            }
            digits.iter().for_each(|&d| push(d));
        } else {
            let int_len = exp as usize + 1;
            for i in 0..int_len {
                push(*digits.get(i).unwrap_or(&b'0'));
            }
            push(b'.');
            if digits.len() > int_len {
                digits[int_len..].iter().for_each(|&d| push(d));
            } else {
                push(b'0');
            }
        }
        // Only ASCII digits, signs, '.', 'e' were written.
        std::str::from_utf8(&self.buf[..n]).unwrap_or("nan")
    }
}

/// Up to 17 significant digits.
struct Digits {
    buf: [u8; 20],
    len: usize,
}

impl Digits {
    fn len(&self) -> usize {
        self.len
    }
}

/// When the exact value of `f` lies exactly halfway between the two `n`-digit decimals
/// that both round-trip, CPython picks the even one: returns those digits (trailing zeros
/// stripped) and the decimal exponent; None when there is no tie.
///
/// A tie needs an exact decimal expansion of n + 1 digits ending in 5, i.e. `f` =
/// m·2^e with m odd and -27 <= e < 0 (integers have no ties: their neighbours are at
/// least 1 apart; longer expansions have more than 18 digits), so this is cheap.
fn half_even_tie(f: f64, n: usize) -> Option<(Digits, i32)> {
    let bits = f.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    let (mut m, mut e) = if biased == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), biased - 1075)
    };
    if m == 0 {
        return None;
    }
    let tz = m.trailing_zeros();
    m >>= tz;
    e += tz as i32;
    if !(-27..0).contains(&e) {
        return None;
    }
    // f = m * 5^-e / 10^-e exactly; m < 2^53 and 5^27 < 2^63 fit in u128.
    let exact = u128::from(m) * 5u128.pow(e.unsigned_abs());
    let len = decimal_len(exact);
    if len != n + 1 {
        return None;
    }
    let mut d = exact / 10;
    if d % 2 == 0 {
        // The lower candidate wins only if it round-trips: next to a power of two the
        // lower neighbour is closer and it may not (then the upper one is the shortest).
        // The upper candidate always round-trips when there is a tie at all.
        let mut text = Scratch {
            buf: [0; 32],
            len: 0,
        };
        std::fmt::Write::write_fmt(&mut text, format_args!("{d}e{}", e + 1)).ok()?;
        let candidate: f64 = std::str::from_utf8(&text.buf[..text.len])
            .ok()?
            .parse()
            .ok()?;
        if candidate != f.abs() {
            return None;
        }
    } else {
        d += 1;
    }
    let dlen = decimal_len(d);
    let sci_exp = dlen as i32 - 1 + e + 1;
    while d % 10 == 0 {
        d /= 10;
    }
    let mut out = Digits {
        buf: [0; 20],
        len: decimal_len(d),
    };
    for i in (0..out.len).rev() {
        out.buf[i] = b'0' + (d % 10) as u8;
        d /= 10;
    }
    Some((out, sci_exp))
}

fn decimal_len(mut v: u128) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

fn parse_exp(s: &[u8]) -> i32 {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let v = digits
        .iter()
        .fold(0i32, |acc, &d| acc * 10 + (d.wrapping_sub(b'0') as i32));
    if neg {
        -v
    } else {
        v
    }
}

struct Scratch {
    buf: [u8; 32],
    len: usize,
}

impl std::fmt::Write for Scratch {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Python's `repr(f)` as an owned string (convenience; hot paths use [`FloatBuf`]).
pub fn float_repr(f: f64) -> String {
    FloatBuf::new().format(f).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases: &[(f64, &str)] = &[
            (512.0, "512.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e-5, "1e-05"),
            (1e-4, "0.0001"),
            (0.00012, "0.00012"),
            (1.5e-7, "1.5e-07"),
            (12345.678, "12345.678"),
            (725.042996987, "725.042996987"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (-2.5, "-2.5"),
            (1e100, "1e+100"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (9999999999999998.0, "9999999999999998.0"),
            // exact ties: CPython rounds half to even, Rust's shortest form rounds up
            (-(920_912_589_697_970.0 + 0.25), "-920912589697970.2"),
            (920_912_589_697_970.0 + 0.75, "920912589697970.8"),
            // ... but only between candidates that both round-trip (2^-24)
            (2f64.powi(-24), "5.960464477539063e-08"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for &(f, want) in cases {
            assert_eq!(FloatBuf::new().format(f), want, "repr({f:?})");
        }
    }

    #[test]
    fn json_floats_spell_non_finite_like_python() {
        let enc = |f: f64| to_string(&Value::from(f));
        assert_eq!(enc(f64::INFINITY), "Infinity");
        assert_eq!(enc(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(enc(f64::NAN), "NaN");
        assert_eq!(enc(2048.0), "2048.0");
    }

    #[test]
    fn ints_format_in_decimal() {
        for i in [0i64, 7, -7, 10, 123456789000, i64::MAX, i64::MIN] {
            assert_eq!(to_string(&Value::from(i)), i.to_string());
        }
    }

    #[test]
    fn strings_escape_like_ensure_ascii() {
        let enc = |s: &str| to_string(&Value::from(s));
        assert_eq!(enc("plain"), r#""plain""#);
        assert_eq!(enc("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(enc("\u{8}\u{c}\n\r\t"), r#""\b\f\n\r\t""#);
        assert_eq!(enc("\u{0}\u{1f}\u{7f}"), r#""\u0000\u001f\u007f""#);
        assert_eq!(enc("vmé"), r#""vm\u00e9""#);
        assert_eq!(enc("€"), r#""\u20ac""#);
        assert_eq!(enc("😀x"), r#""\ud83d\ude00x""#);
        assert_eq!(enc("/<>&'"), r#""/<>&'""#);
    }

    #[test]
    fn swar_escape_test_is_exact_for_every_byte() {
        for b in 0u8..=255 {
            for pos in 0..8 {
                let mut chunk = *b"abcdefgh";
                chunk[pos] = b;
                let want = ESCAPE[b as usize] != 0;
                assert_eq!(
                    needs_escape(u64::from_le_bytes(chunk)),
                    want,
                    "byte {b:#x} at {pos}"
                );
            }
        }
        // Every length around the word size (clean strings take the whole-word path,
        // whose last word overlaps), clean and with an escape at every offset.
        for len in 0..=24 {
            let clean = "x".repeat(len);
            assert_eq!(
                to_string(&Value::from(clean.as_str())),
                format!("\"{clean}\"")
            );
            for pos in 0..=len {
                for special in ['"', '\n', 'é'] {
                    let mut s = clean.clone();
                    s.insert(pos, special);
                    let escaped = match special {
                        '"' => "\\\"",
                        '\n' => "\\n",
                        _ => "\\u00e9",
                    };
                    let want = format!("\"{}\"", s.replace(special, escaped));
                    assert_eq!(to_string(&Value::from(s.as_str())), want, "{s:?}");
                }
            }
        }
    }

    #[test]
    fn nested_text_is_the_json_string_of_the_plain_text() {
        let m = Map::new()
            .with("k\"ey", "a\\b\"c\n\u{1}é😀")
            .with(
                "l",
                Value::list([Value::from("x"), Value::from(1.5), Value::NULL]),
            )
            .with("m", Map::new().with("q", "\"\"\"\"\"\"\"\"\"\""));
        let plain = map_to_string(&m);
        let mut want = Vec::new();
        write_str(&mut want, &plain);
        let mut nested = Vec::new();
        write_map_nested(&mut nested, &m);
        // write_str adds the outer quotes; the nested form leaves them to the caller.
        assert_eq!(nested, want[1..want.len() - 1]);
    }

    #[test]
    fn containers_use_python_separators() {
        let m = Map::new()
            .with("a", 1)
            .with(
                "b",
                Value::list([Value::from(1.5), Value::NULL, Value::from(true)]),
            )
            .with("c", Map::new())
            .with("d", Value::list([]))
            .with("e", false);
        assert_eq!(
            map_to_string(&m),
            r#"{"a": 1, "b": [1.5, null, true], "c": {}, "d": [], "e": false}"#
        );
    }
}
