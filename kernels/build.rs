//! Builds the CUDA sources (`src/<family>/*.cu`) two ways, each behind a feature:
//! * `cuda`: nvcc → PTX (virtual arch `compute_80` unless `CUDA_COMPUTE_CAP` says otherwise, so the
//!   driver JIT-compiles for the card it runs on), embedded through `$OUT_DIR/ptx.rs`. nvcc is taken
//!   from `$NVCC`, then the project's `.cuda-toolchain/` (scripts/install-cuda-toolchain.sh), then PATH.
//! * `emu`: the host C++ compiler, against `cuda/emu/emu.h`, into a static library that the kernel
//!   tests launch through `kernels::emu`.
//!
//! Without either feature nothing is compiled and no CUDA or C++ tool is needed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cu_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).expect("read src/").flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            cu_sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "cu") {
            out.push(p);
        }
    }
}

fn find_nvcc(manifest: &Path) -> PathBuf {
    if let Ok(p) = std::env::var("NVCC") {
        return PathBuf::from(p);
    }
    let local = manifest.join("../.cuda-toolchain/nvidia/cu13/bin/nvcc");
    if local.exists() {
        return local;
    }
    PathBuf::from("nvcc")
}

fn build_ptx(manifest: &Path, out_dir: &Path, sources: &[PathBuf]) {
    let nvcc = find_nvcc(manifest);
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "80".to_string());
    let cap = cap.trim().replace('.', "");
    if cap.is_empty() || !cap.chars().all(|c| c.is_ascii_digit()) {
        panic!("CUDA_COMPUTE_CAP={cap:?}: expected a compute capability such as 80 or 90");
    }
    let mut table = String::from("/// Every CUDA module as (name, PTX source), built from `src/**/*.cu`.\n");
    table.push_str("pub const MODULES: &[(&str, &str)] = &[\n");
    for src in sources {
        let stem = src.file_stem().unwrap().to_string_lossy().to_string();
        let ptx = out_dir.join(format!("{stem}.ptx"));
        let output = Command::new(&nvcc)
            .arg("-ptx")
            .arg(format!("-arch=compute_{cap}"))
            .args(["-std=c++17", "-O3", "-lineinfo"])
            .arg("-I")
            .arg(manifest.join("cuda"))
            .arg("-o")
            .arg(&ptx)
            .arg(src)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run nvcc ({}): {e}. Install the pinned CUDA 13.0 compiler with \
                     scripts/install-cuda-toolchain.sh, or set NVCC to an nvcc binary",
                    nvcc.display()
                )
            });
        if !output.status.success() {
            panic!(
                "nvcc failed on {}:\n{}{}",
                src.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        table.push_str(&format!("    ({stem:?}, include_str!({:?})),\n", ptx.display().to_string()));
    }
    table.push_str("];\n");
    std::fs::write(out_dir.join("ptx.rs"), table).expect("write ptx.rs");
    println!("cargo:rerun-if-env-changed=NVCC");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
}

#[cfg(feature = "emu")]
fn build_emu(manifest: &Path, sources: &[PathBuf]) {
    let mut b = cc::Build::new();
    b.cpp(true)
        .std("c++20")
        .opt_level(2)
        .include(manifest.join("cuda"))
        .flag("-pthread")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-unused-function")
        .file(manifest.join("cuda/emu/emu.cpp"));
    // `.cu` files are plain C++ to the host compiler once emu.h is included.
    for src in sources {
        b.file(src);
    }
    b.flag("-xc++");
    b.compile("mt_cuda_emu");
    println!("cargo:rustc-link-lib=pthread");
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut sources = Vec::new();
    cu_sources(&manifest.join("src"), &mut sources);
    println!("cargo:rerun-if-changed=cuda");
    for s in &sources {
        println!("cargo:rerun-if-changed={}", s.display());
    }
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        build_ptx(&manifest, &out_dir, &sources);
    }
    #[cfg(feature = "emu")]
    build_emu(&manifest, &sources);
}
