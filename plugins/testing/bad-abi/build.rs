//! abi_stable records the crate that defines each type in its layout, and the layout
//! check compares it before any field. A plugin built against a *changed*
//! longshore-plugin-api has types from package `longshore-plugin-api`, so this crate
//! compiles under that package name: the host's check then gets as far as the field
//! that differs, exactly as it would for a real plugin built against another plugin-api.
fn main() {
    println!("cargo:rustc-env=CARGO_PKG_NAME=longshore-plugin-api");
}
