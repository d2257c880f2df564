//! Scripted model server (filled in by the agent work).
