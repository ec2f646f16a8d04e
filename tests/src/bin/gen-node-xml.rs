//! Write a libvirt test-driver node file with N Nova-like domains:
//!
//! ```text
//! cargo run -p longshore-tests --bin gen-node-xml -- N [-o FILE] [--seed S]
//!     [--shutoff K] [--image-meta] [--no-flavor-id] [--non-nova M]
//! ```
//!
//! Use the result as `[compute] libvirt_uri = test:///ABS/PATH/FILE`.

use std::process::ExitCode;

use longshore_tests::node_xml::{generate, NodeSpec};

const USAGE: &str = "usage: gen-node-xml N [-o FILE] [--seed S] [--shutoff K] [--image-meta] [--no-flavor-id] [--non-nova M]";

fn parse(args: &[String]) -> Result<(NodeSpec, Option<String>), String> {
    let mut spec = NodeSpec::default();
    let mut out = None;
    let mut n = None;
    let mut it = args.iter();
    let num = |v: Option<&String>, flag: &str| -> Result<u64, String> {
        v.ok_or(format!("{flag} needs a value"))?
            .parse()
            .map_err(|_| format!("{flag}: not a number"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" | "--output" => out = Some(it.next().ok_or("-o needs a file")?.clone()),
            "--seed" => spec.seed = num(it.next(), "--seed")?,
            "--shutoff" => spec.shutoff = num(it.next(), "--shutoff")? as usize,
            "--non-nova" => spec.non_nova = num(it.next(), "--non-nova")? as usize,
            "--image-meta" => spec.image_meta = true,
            "--no-flavor-id" => spec.flavor_id = false,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other if n.is_none() => {
                n = Some(
                    other
                        .parse()
                        .map_err(|_| format!("N: {other:?} is not a number\n{USAGE}"))?,
                )
            }
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
        }
    }
    spec.n = n.ok_or(USAGE)?;
    Ok((spec, out))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok((spec, out)) => {
            let text = generate(&spec);
            match out.as_deref() {
                None | Some("-") => print!("{text}"),
                Some(path) => {
                    if let Err(e) = std::fs::write(path, text) {
                        eprintln!("cannot write {path}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
