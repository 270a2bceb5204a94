//! Work spread over every core, with results kept in input order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The cores this process may run on, asked once: the standard library reads
/// the cgroup's quota files each time it is asked, several times a package.
pub(crate) fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Run `work` over `items` on every core, keeping the input order in the output.
///
/// Workers take consecutive items in batches: fewer turns of the shared
/// counter for tens of thousands of small items, and a worker stays in one
/// stretch of a sorted listing (one folder at a time). Batches are small
/// enough that the last of them still spread over every core, and a single
/// item each when there are few (eight large files).
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = cores().min(items.len().max(1));
    let batch = (items.len() / (threads * 32)).clamp(1, 64);
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, Vec<R>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let start = next.fetch_add(batch, Ordering::Relaxed);
                        let Some(slice) = items.get(start..(start + batch).min(items.len())) else {
                            break;
                        };
                        if slice.is_empty() {
                            break;
                        }
                        mine.push((start, slice.iter().map(&work).collect::<Vec<R>>()));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    done.sort_unstable_by_key(|(start, _)| *start);
    done.into_iter().flat_map(|(_, results)| results).collect()
}

/// Results that workers on several threads leave in any order, one slot per
/// input, each behind a lock of its own (never contended: each slot is
/// filled by one worker).
pub(crate) struct Slots<R>(Vec<Mutex<Option<R>>>);

impl<R> Slots<R> {
    pub(crate) fn new(count: usize) -> Slots<R> {
        Slots((0..count).map(|_| Mutex::new(None)).collect())
    }

    /// Fill slot `i` (a second result for the same slot is dropped). A lock
    /// poisoned by another worker's panic still takes the result; the panic
    /// itself reaches the caller.
    pub(crate) fn put(&self, i: usize, result: R) {
        if let Some(slot) = self.0.get(i) {
            let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(result);
            }
        }
    }

    /// The results in input order. Every slot is filled (a worker's panic
    /// reaches the caller through `std::thread::scope`).
    pub(crate) fn in_order(self) -> Vec<R> {
        self.0
            .into_iter()
            .filter_map(|slot| slot.into_inner().unwrap_or_else(|p| p.into_inner()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_input_order_whatever_the_count() {
        for n in [0, 1, 2, 7, 63, 64, 65, 1000, 20_001] {
            let items: Vec<usize> = (0..n).collect();
            let out = parallel_map(&items, |i| i * 3);
            assert_eq!(out, items.iter().map(|i| i * 3).collect::<Vec<_>>(), "{n}");
        }
    }

    #[test]
    fn slots_keep_their_order_and_the_first_result() {
        let slots = Slots::new(3);
        slots.put(2, "c");
        slots.put(0, "a");
        slots.put(1, "b");
        slots.put(1, "late");
        slots.put(9, "out of range");
        assert_eq!(slots.in_order(), ["a", "b", "c"]);
    }
}
