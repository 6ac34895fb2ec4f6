pub mod dataplane;
