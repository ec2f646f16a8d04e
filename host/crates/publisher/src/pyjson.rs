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
    match value.get() {
        ValueRef::Null => out.extend_from_slice(b"null"),
        ValueRef::Bool(true) => out.extend_from_slice(b"true"),
        ValueRef::Bool(false) => out.extend_from_slice(b"false"),
        ValueRef::Int(i) => write_int(out, i),
        ValueRef::Float(f) => write_float(out, f),
        ValueRef::Str(s) => write_str(out, s),
        ValueRef::List(items) => write_list(out, items),
        ValueRef::Map(m) => write_map(out, m),
    }
}

/// Append the JSON text of a dict, keys in insertion order.
pub fn write_map(out: &mut Vec<u8>, map: &Map) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write_str(out, k);
        out.extend_from_slice(b": ");
        write_value(out, v);
    }
    out.push(b'}');
}

/// Append the JSON text of a list.
pub fn write_list(out: &mut Vec<u8>, items: &[Value]) {
    out.push(b'[');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write_value(out, v);
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

/// Append `s` as a JSON string literal with `ensure_ascii=True`: `"` and `\` escaped,
/// `\b \f \n \r \t` short forms, other control characters and DEL as `\u00XX`, and
/// everything non-ASCII as lowercase `\uXXXX` (UTF-16 surrogate pairs above U+FFFF).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let esc = ESCAPE[bytes[i] as usize];
        if esc == 0 {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            b'u' => {
                write_u16_escape(out, bytes[i] as u16);
                i += 1;
            }
            b'U' => {
                // `i` is on a char boundary: every earlier byte was ASCII or a whole
                // sequence we consumed.
                let c = s[i..].chars().next().unwrap_or('\u{fffd}');
                let cp = c as u32;
                if cp >= 0x10000 {
                    let v = cp - 0x10000;
                    write_u16_escape(out, 0xd800 | (v >> 10) as u16);
                    write_u16_escape(out, 0xdc00 | (v & 0x3ff) as u16);
                } else {
                    write_u16_escape(out, cp as u16);
                }
                i += c.len_utf8();
            }
            letter => {
                out.extend_from_slice(&[b'\\', letter]);
                i += 1;
            }
        }
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_u16_escape(out: &mut Vec<u8>, u: u16) {
    out.extend_from_slice(&[
        b'\\',
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
/// Digits are the shortest that round-trip (Rust's `{:e}` and CPython's `repr` both pick
/// the shortest, closest decimal); the layout follows CPython's `format_float_short`:
/// exponent form when the decimal exponent is < -4 or >= 16, `.0` added to integers.
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
        let mut sci = Scratch { buf: [0; 32], len: 0 };
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
        let digits = &digits[..nd.max(1)];

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
    fn containers_use_python_separators() {
        let m = Map::new()
            .with("a", 1)
            .with("b", Value::list([Value::from(1.5), Value::NULL, Value::from(true)]))
            .with("c", Map::new())
            .with("d", Value::list([]))
            .with("e", false);
        assert_eq!(
            map_to_string(&m),
            r#"{"a": 1, "b": [1.5, null, true], "c": {}, "d": [], "e": false}"#
        );
    }
}
