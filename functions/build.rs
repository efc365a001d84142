//! The route list is the files in `src/routes/`: one module per file, and the `ENDPOINTS`
//! (metadata) and `ROUTES` (with handlers) statics over them, written to
//! `$OUT_DIR/routes.rs` for `src/lib.rs` to include. Adding a route is adding a file; there is
//! no list to keep by hand.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/routes");
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("src/routes");
    let mut names: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| (path.file_stem().unwrap().to_string_lossy().into_owned(), path))
        .collect();
    // Sorted, so the build is the same whatever order the directory lists in.
    names.sort();
    let mut out = String::new();
    for (name, path) in &names {
        assert!(
            name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "src/routes/{name}.rs: a route file is named in snake_case after its binary"
        );
        writeln!(out, "#[path = {:?}]\npub mod {name};", path.display().to_string()).unwrap();
    }
    writeln!(out, "/// Every routed endpoint (metadata only: reading it links no handler).").unwrap();
    writeln!(out, "pub static ENDPOINTS: &[&Endpoint] = &[").unwrap();
    for (name, _) in &names {
        writeln!(out, "    &{name}::ENDPOINT,").unwrap();
    }
    writeln!(out, "];\n/// The same list with handlers, for the local API.\npub static ROUTES: &[Route] = &[").unwrap();
    for (name, _) in &names {
        writeln!(
            out,
            "    Route {{ endpoint: &{name}::ENDPOINT, handle: |app, req| Box::pin({name}::handle(app, req)) }},"
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();
    let target = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("routes.rs");
    std::fs::write(&target, out).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
}
