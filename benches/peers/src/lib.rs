//! Holds nothing: the comparison of cachelayer with other tower HTTP caches is the `peers`
//! benchmark (`benches/peers.rs`). This crate is outside the cachelayer workspace, with its own
//! lock file, so the other caches' dependencies never enter the workspace build.
