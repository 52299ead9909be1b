//! Plan file format.
