//! The `tests` crate holds one integration-test binary, `it` (see `it/main.rs`), that drives
//! whole flows against the simulated world and the real `command-center` binary. The library
//! itself is empty.
