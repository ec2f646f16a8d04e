//! `Text`: the ABI-stable string of a sample's and a resource's short fields (meter name,
//! unit, ids). Up to [`Text::INLINE`] bytes are kept inline, so making a sample copies
//! its name, unit and ids without allocating, and reading them touches no other memory.
//! `Key`: the same for metadata keys, in half the space.

use std::fmt;

use abi_stable::std_types::{RBox, RString};
use abi_stable::StableAbi;

/// Up to N bytes of a string, inline: the one place the inline strings of this crate
/// (`Text`, `Key`, `Value`'s short strings) are made and read, so that the bytes are
/// always a whole `&str` copied here and reading them back needs no UTF-8 check.
#[doc(hidden)]
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct Inline<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Inline<N> {
    /// `s`, if it fits.
    pub(crate) fn new(s: &str) -> Option<Inline<N>> {
        const { assert!(N <= u8::MAX as usize) };
        if s.len() > N {
            return None;
        }
        let mut bytes = [0u8; N];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Some(Inline {
            len: s.len() as u8,
            bytes,
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        // SAFETY: only `new` makes an Inline (the fields are private to this module),
        // copying a whole &str of `len` bytes.
        unsafe { std::str::from_utf8_unchecked(self.bytes.get_unchecked(..self.len as usize)) }
    }
}

/// A string kept inline when short (every meter name, unit, instance or Keystone id),
/// on the heap otherwise.
#[doc(hidden)]
#[repr(C)]
#[derive(StableAbi, Clone)]
pub struct Text(Repr);

#[repr(u8)]
#[derive(StableAbi, Clone)]
enum Repr {
    Inline(Inline<{ Text::INLINE }>),
    Heap(RString),
}

impl Text {
    /// Longest string kept inline: a `<uuid>-<disk>` resource id fits (48 bytes in all).
    pub const INLINE: usize = 46;

    pub fn new(s: &str) -> Text {
        match Inline::new(s) {
            Some(i) => Text(Repr::Inline(i)),
            None => Text(Repr::Heap(RString::from(s))),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(i) => i.as_str(),
            Repr::Heap(s) => s.as_str(),
        }
    }
}

/// `Deref<Target = str>`, equality, `From<&str>`-like construction and `Debug`, all
/// through the type's `new` and `as_str`.
macro_rules! str_like {
    ($t:ident) => {
        impl std::ops::Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq for $t {
            fn eq(&self, other: &$t) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl<S: AsRef<str>> From<S> for $t {
            fn from(s: S) -> $t {
                $t::new(s.as_ref())
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }
    };
}

str_like!(Text);
str_like!(Key);

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A metadata key: kept inline up to [`Key::INLINE`] bytes (every key Ceilometer
/// uses), on the heap otherwise, in 24 bytes: resources keep a few dozen entries each.
#[doc(hidden)]
#[repr(C)]
#[derive(StableAbi, Clone)]
pub struct Key(KeyRepr);

#[repr(u8)]
#[derive(StableAbi, Clone)]
enum KeyRepr {
    Inline(Inline<{ Key::INLINE }>),
    Heap(RBox<RString>),
}

impl Key {
    /// Longest key kept inline (`instance_flavor_id`, `image_ref_url`... all fit).
    pub const INLINE: usize = 22;

    pub fn new(s: &str) -> Key {
        match Inline::new(s) {
            Some(i) => Key(KeyRepr::Inline(i)),
            None => Key(KeyRepr::Heap(RBox::new(RString::from(s)))),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            KeyRepr::Inline(i) => i.as_str(),
            KeyRepr::Heap(s) => s.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_are_inline_and_long_ones_on_the_heap() {
        for s in [
            "",
            "cpu",
            "é",
            "6a4b4a1c-7a76-4d7a-9f4e-0d1b6b7c8e9f-vda",
            &"x".repeat(Text::INLINE),
        ] {
            let t = Text::from(s);
            assert!(matches!(t.0, Repr::Inline(_)), "{s}");
            assert_eq!(t.as_str(), s);
        }
        let long = "instance-00000001-6a4b4a1c-7a76-4d7a-9f4e-0d1b6b7c8e9f-tap1234";
        let t = Text::from(long.to_string());
        assert!(matches!(t.0, Repr::Heap(_)));
        assert_eq!(&*t, long);
        assert_eq!(t.clone(), t);
        assert_eq!(std::mem::size_of::<Text>(), 48);
    }

    #[test]
    fn keys_are_inline_up_to_22_bytes_in_24() {
        for s in [
            "",
            "vcpus",
            "é",
            "instance_flavor_id",
            &"k".repeat(Key::INLINE),
        ] {
            let k = Key::from(s);
            assert!(matches!(k.0, KeyRepr::Inline(_)), "{s}");
            assert_eq!(k.as_str(), s);
        }
        let long = "a_metadata_key_longer_than_22_bytes";
        let k = Key::from(long);
        assert!(matches!(k.0, KeyRepr::Heap(_)));
        assert_eq!(&*k, long);
        assert_eq!(k.clone(), k);
        assert_eq!(std::mem::size_of::<Key>(), 24);
    }
}
