//! Release links of the `berth` executable on x86-64 Linux lay it out for a small idle RSS (see
//! the release profile in the workspace Cargo.toml):
//!
//! - the functions a just-started server runs (startup-functions.txt, made by
//!   scripts/startup-order.py) come first in its code, and their read-only data (jump tables)
//!   first in .rodata, so that start-up maps few pages of either;
//! - relative relocations are packed (DT_RELR, glibc 2.36+): the dynamic loader reads a few KiB
//!   instead of a 0.7 MiB table at every start.
//!
//! The default linker there, LLD, and GNU ld take both; BERTH_PLAIN_LINK=1 leaves them out (for
//! a linker that does not, such as mold).

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("startup-functions.txt");
    println!("cargo:rerun-if-changed={}", list.display());
    println!("cargo:rerun-if-env-changed=BERTH_PLAIN_LINK");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = std::env::var("TARGET").unwrap_or_default();
    let plain = std::env::var_os("BERTH_PLAIN_LINK").is_some_and(|v| !v.is_empty() && v != "0");
    if !release || target != "x86_64-unknown-linux-gnu" || plain {
        return;
    }
    let names = std::fs::read_to_string(&list).unwrap_or_else(|e| {
        panic!("{}: {e}", list.display());
    });
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("startup.ld");
    std::fs::write(&out, linker_script(&names))
        .unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    println!("cargo:rustc-link-arg-bin=berth=-Wl,-T,{}", out.display());
    println!("cargo:rustc-link-arg-bin=berth=-Wl,-z,pack-relative-relocs");
}

/// A script that only adds two output sections to the linker's default layout (INSERT): one
/// before .text for the listed functions' code and one before .rodata for their data. LLVM
/// names a function's sections .text.SYMBOL and .rodata.SYMBOL, with `unlikely.` after the dot
/// for a cold function; GCC puts C constructors in .text.startup.SYMBOL.
fn linker_script(names: &str) -> String {
    let globs: Vec<&str> = names
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        // A glob with a space or a parenthesis would end the pattern list early.
        .filter(|l| !l.contains(|c: char| c.is_whitespace() || "()\"".contains(c)))
        .collect();
    let mut s = String::from("/* Made by crates/berth/build.rs from startup-functions.txt. */\n");
    for (output, input) in [(".text.startup", ".text"), (".rodata.startup", ".rodata")] {
        let _ = writeln!(s, "SECTIONS\n{{\n  {output} :\n  {{");
        for g in &globs {
            let _ = writeln!(
                s,
                "    *({input}.{g} {input}.unlikely.{g} {input}.startup.{g})"
            );
        }
        let _ = writeln!(s, "  }}\n}}\nINSERT BEFORE {input};");
    }
    s
}
