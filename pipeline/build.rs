//! Bakes libtorch's folder into the binaries' rpath so they run without LD_LIBRARY_PATH, and keeps
//! libtorch_cuda linked when it exists (its kernels register themselves in static constructors, so an
//! `--as-needed` link that drops it leaves a binary that sees no GPU).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-ltorch_cuda");
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
    }
}
