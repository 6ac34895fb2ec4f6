//! Compiles the vendored Kubernetes .proto files (proto/) into one
//! descriptor set the sandbox embeds to decode protobuf request bodies.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    compile_k8s_protos();
}

fn compile_k8s_protos() {
    use std::path::{Path, PathBuf};

    fn protos(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                protos(&p, root, out);
            } else if p.extension().is_some_and(|e| e == "proto") {
                out.push(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
            }
        }
    }

    let root = Path::new("proto");
    println!("cargo:rerun-if-changed=proto");
    let mut files = Vec::new();
    protos(root, root, &mut files);
    let mut compiler = protox::Compiler::new([root]).expect("proto/ include path");
    compiler.include_imports(true).include_source_info(false);
    for f in &files {
        compiler
            .open_file(f)
            .unwrap_or_else(|e| panic!("compiling {}: {e}", f.display()));
    }
    let set = compiler.encode_file_descriptor_set();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("k8s.pb");
    std::fs::write(&out, set).expect("writing the descriptor set");
}
