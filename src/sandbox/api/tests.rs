//! In-process tests of the request handling, including a no-panic proptest.
