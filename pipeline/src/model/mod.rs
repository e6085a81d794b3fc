//! The model a run uses: loading it per device ([`loading`]) and describing it with the hash of every file it
//! loads ([`info`]), each file hashed once and remembered ([`hash_cache`]).

pub mod hash_cache;
pub mod info;
pub mod loading;
