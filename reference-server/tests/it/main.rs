//! squall-server's integration tests, in one binary (one build and one link): a module a
//! former test file.

mod autobahn;
mod binary;
mod hostile;
mod kite;
mod procs;
mod strict_doc;
