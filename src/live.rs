//! A value that a reload replaces whole while other threads keep reading it: the
//! configuration in force, on the server and on the client.

use std::sync::Arc;

use parking_lot::RwLock;

/// The value in force. A reader takes the `Arc` and keeps it for what it is doing (a
/// request, an idle wait, a dial): a reload never changes a value under it, never shows
/// a mix of old and new, and the reader's next use sees the new one.
pub(crate) struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    pub fn new(value: T) -> Self {
        Live(RwLock::new(Arc::new(value)))
    }

    /// The value in force now.
    pub fn get(&self) -> Arc<T> {
        self.0.read().clone()
    }

    /// Puts `value` in force for every use from now on.
    pub fn set(&self, value: T) {
        *self.0.write() = Arc::new(value);
    }
}
