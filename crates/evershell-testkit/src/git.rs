//! Git smart-HTTP server (filled in by the runtime work).
