pub mod suite;
