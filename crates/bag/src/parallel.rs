//! Work spread over every core, with results kept in input order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Run `work` over `items` on every core, keeping the input order in the output.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let results = Slots::new(items.len());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                results.put(i, work(item));
            });
        }
    });
    results.in_order()
}

/// Results that workers on several threads leave in any order, one slot per
/// input.
pub(crate) struct Slots<R>(Mutex<Vec<Option<R>>>);

impl<R> Slots<R> {
    pub(crate) fn new(count: usize) -> Slots<R> {
        Slots(Mutex::new((0..count).map(|_| None).collect()))
    }

    /// Fill slot `i`. A lock poisoned by another worker's panic still takes
    /// the result; the panic itself reaches the caller.
    pub(crate) fn put(&self, i: usize, result: R) {
        let mut slots = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slots[i] = Some(result);
    }

    /// The results in input order. Every slot is filled (a worker's panic
    /// reaches the caller through `std::thread::scope`); a poisoned lock
    /// still yields its slots.
    pub(crate) fn in_order(self) -> Vec<R> {
        self.0
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .flatten()
            .collect()
    }
}
